"""DBSI benchmark: the shipped DBSI variants, their ablations and the saliency baseline against
exact thin-lens ground truth, on the fixed synthetic set of benchmarks/quality.py.

    python benchmarks/dbsi.py                              # all tables -> benchmarks/results/dbsi.md
    python benchmarks/dbsi.py --runs benchmarks/data/dbsi-runs --count 4

Shipped checkpoints come from the package; the ablation and per-phase checkpoints (not shipped)
from --runs, as written by the commands in docs/dbsi.md (missing ones are skipped with a note).
Everything runs on one torch thread; a contact sheet goes to --sheet for looking at.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402  (the fixed scene set)

from lensblur import evaluate  # noqa: E402
from lensblur.renderers import get_renderer, register  # noqa: E402
from lensblur.systems.dbsi.renderer import render_dbsi  # noqa: E402

# (renderer name, checkpoint (shipped variant name or file in --runs), upsample, description)
DBSI_ROWS = [
    ("dbsi", "depth", "weights", "depth-conditioned, shipped (the default of --renderer dbsi)"),
    ("dbsi-image", "image", "weights", "paper's image-only network, shipped"),
    ("dbsi-image/paper-resize", "image", "output", "same, blended at 192×256 and resized back (paper 5.1)"),
    ("dbsi-depth/paper-resize", "depth", "output", "depth-conditioned, blended at 192×256 and resized back"),
    ("depth phase 1", "depth.phase1.pt", "weights", "phase 1 only: 96×128, L1, 600 steps"),
    ("depth phase 2", "depth.phase2.pt", "weights", "phases 1–2: + 192×256, L1, 150 steps"),
    ("image phase 1", "image.phase1.pt", "weights", "image-only, phase 1 only"),
    ("image phase 2", "image.phase2.pt", "weights", "image-only, phases 1–2"),
    ("k 25,45,75 (200 steps)", "k25-45-75.pt", "weights", "three kernels (paper); depth-conditioned, phase 1, 200 steps"),
    ("k 75 (200 steps)", "k75.pt", "weights", "one kernel, 75; depth-conditioned, phase 1, 200 steps"),
    ("k 5,25,45 (200 steps)", "k5-25-45.pt", "weights", "small kernels; depth-conditioned, phase 1, 200 steps"),
]
REFERENCES = ["identity", "naive", "scatter", "saliency-baseline"]

TABLES = [
    ("Main comparison (shape of DBSI's table 5)",
     ["identity", "naive", "scatter", "saliency-baseline", "dbsi-image", "dbsi-image/paper-resize", "dbsi",
      "dbsi-depth/paper-resize"]),
    ("Number of kernels (shape of table 2; short phase-1 runs, 200 steps each, depth-conditioned)",
     ["k 75 (200 steps)", "k 25,45,75 (200 steps)"]),
    ("Small vs large kernels (shape of table 3; short phase-1 runs, 200 steps each, depth-conditioned)",
     ["k 5,25,45 (200 steps)", "k 25,45,75 (200 steps)"]),
    ("Training phases (shape of table 4)",
     ["depth phase 1", "depth phase 2", "dbsi", "image phase 1", "image phase 2", "dbsi-image"]),
]


def register_variants(runs: Path) -> tuple[list[str], list[str]]:
    """Register every DBSI row whose checkpoint exists; returns (names, notes)."""
    names, notes = [], []
    for name, checkpoint, upsample, _ in DBSI_ROWS:
        if checkpoint.endswith(".pt"):
            path = runs / checkpoint
            if not path.is_file():
                notes.append(f"{name}: {path} missing (train it with the commands in docs/dbsi.md)")
                continue
            checkpoint = str(path)
        register(name)(functools.partial(render_dbsi, checkpoint=checkpoint, upsample=upsample))
        names.append(name)
    return names, notes


def time_at_hd(names: list[str], sample, repeats: int = 3) -> dict[str, float]:
    """Median seconds per call of each renderer on ``sample`` upscaled to 1024×1536 (after one
    warm-up call), K scaled with the width."""
    height, width = 1024, 1536
    image = cv2.resize(sample.image, (width, height), interpolation=cv2.INTER_LINEAR)
    disparity = cv2.resize(sample.disparity, (width, height), interpolation=cv2.INTER_LINEAR)
    lens = sample.lens.with_(blur=sample.lens.blur * width / sample.image.shape[1])
    seconds = {}
    for name in names:
        render = get_renderer(name)
        render(image, disparity, lens)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            render(image, disparity, lens)
            runs.append(time.perf_counter() - start)
        seconds[name] = statistics.median(runs)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(HERE / "data" / "dbsi-runs"),
                        help="folder of the ablation / per-phase checkpoints (default benchmarks/data/dbsi-runs)")
    parser.add_argument("--count", type=int, default=16, help="scenes (default 16, the fixed set)")
    parser.add_argument("--out", default=str(HERE / "results" / "dbsi.md"), help="markdown file to write")
    parser.add_argument("--sheet", default="/tmp/dbsi_sheet.png", help="contact sheet PNG (default /tmp/dbsi_sheet.png)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    folder = quality.dataset(16, 2026, 384, 576)
    samples = list(evaluate.iter_samples(folder, "synth", limit=args.count))
    variants, notes = register_variants(Path(args.runs))
    results, sheet = evaluate.evaluate(samples, REFERENCES + variants, sheet_count=4)
    notes += results.notes
    by_name = {entry["renderer"]: entry for entry in results.summary}
    evaluate.write_sheet(args.sheet, sheet)

    hd_names = [n for n in ["scatter", "saliency-baseline", "dbsi", "dbsi-image", "dbsi-image/paper-resize"]
                if n in by_name]
    hd = time_at_hd(hd_names, samples[0])

    descriptions = {name: text for name, _, _, text in DBSI_ROWS}
    descriptions.update({"identity": "the input", "naive": "project reference: per-pixel disc gather",
                         "scatter": "project default: depth-aware scatter",
                         "saliency-baseline": "paper 5.3: soft subject map, 75×75 Gaussian background"})
    parts = [f"# DBSI: depth-aware blending of smoothed images\n\n"
             f"{len(samples)} scenes of the fixed synthetic set (384×576, seed 2026, `benchmarks/quality.py`), "
             f"exact thin-lens ground truth; PSNR/SSIM on 8-bit sRGB, boundary PSNR within the local blur "
             f"radius of depth edges; s/image at 384×576 on one torch thread "
             f"({platform.machine()}, Python {platform.python_version()}). "
             f"Regenerate: `python benchmarks/dbsi.py` (checkpoints: docs/dbsi.md). All DBSI models here are "
             f"the project's narrow CPU-trained ones (hourglass width 0.125, 192×256 training size), not the "
             f"paper's. The kernel ablations are short phase-1 runs (200 steps at 96×128, a third of the "
             f"shipped model's phase 1), compared with each other (same data and seed). The per-phase rows are "
             f"snapshots of the shipped models after phases 1 and 2.\n"]
    for title, names in TABLES:
        rows = [by_name[n] for n in names if n in by_name]
        if not rows:
            continue
        parts.append(f"## {title}\n\n" + evaluate.format_markdown(rows, descriptions) + "\n")
    if hd:
        lines = ["| renderer | s/image at 1024×1536 |", "|---|---:|"]
        lines += [f"| {name} | {seconds:.3f} |" for name, seconds in hd.items()]
        parts.append("## Inference time at 1024×1536 (one thread, median of 3 after a warm-up)\n\n"
                     + "\n".join(lines) + "\n")
    if notes:
        parts.append("Notes:\n\n" + "".join(f"- {note}\n" for note in notes))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    print(evaluate.format_table(results.summary))
    for name, seconds in hd.items():
        print(f"{name}: {seconds:.3f} s at 1024x1536")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

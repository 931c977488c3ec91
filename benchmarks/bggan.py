"""BGGAN benchmark: the paper's Table-1 shape (PSNR, SSIM, LPIPS) against identity, naive,
dbsi-image and scatter, the ablation table (instance norm / none / batch norm; with / without
the critic; pre-training only; a random-VGG stand-in for L_VGG) and CPU time at 1024×1536 in
torch and onnxruntime.

Image-only models cannot know where the focus is, so every renderer is scored on the project's
fixed 16-scene set (384×576, seed 2026) regenerated with the focus on the nearest subject, as
EBB! is (``lensblur synth --focus nearest``); the depth-based renderers get the true disparity and
focus. Writes benchmarks/results/bggan.md.

    python benchmarks/bggan.py                          # all tables, ablation runs from benchmarks/data/bggan-runs
    python benchmarks/bggan.py --lpips alexnet_lpips.pt # adds LPIPS (weights from the user, see docs/metrics)
"""

from __future__ import annotations

import argparse
import functools
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lensblur import evaluate
from lensblur.renderers import register
from lensblur.synth.dataset import generate
from lensblur.systems.bggan.renderer import render_bggan
from lensblur.systems.dbsi.renderer import render_dbsi

HERE = Path(__file__).resolve().parent
REFERENCES = ["identity", "naive", "dbsi-image", "scatter"]

# (row name, checkpoint file in --runs, description)
ABLATION = [
    ("pretrain only (IN)", "pretrain-in.pt", "stage 1 of training: L1 − SSIM only"),
    ("IN + critic", "in-d.pt", "Eq. 3 without L_VGG (no ImageNet weights); the paper's configuration"),
    ("no norm + critic", "none-d.pt", "ablation 3.5.1: no normalisation"),
    ("BN + critic", "bn-d.pt", "ablation 3.5.1: batch norm"),
    ("IN, no critic (shipped)", "in-nod.pt", "ablation 3.5.2: Eq. 7 without L_VGG (L1 + SSIM only); = bggan"),
    ("IN + critic + random VGG", "in-d-rvgg.pt", "Eq. 3 with a random-init VGG19 relu5_4 as L_VGG stand-in"),
]


def nearest_dataset(count: int = 16, seed: int = 2026, height: int = 384, width: int = 576) -> Path:
    """The cached nearest-focus scene folder, generated when missing or incomplete."""
    folder = HERE / "data" / f"synth-nearest-{seed}-{count}-{height}x{width}"
    if not (folder.is_dir() and len(list(folder.glob("*_gt.png"))) == count):
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder, count, seed, height, width, workers=2, focus="nearest")
    return folder


def register_rows(runs: Path) -> tuple[list[str], list[str]]:
    """Register dbsi-image, bggan and every ablation row whose checkpoint exists; (names, notes)."""
    register("dbsi-image")(functools.partial(render_dbsi, checkpoint="image"))
    names, notes = [], []
    for name, file, _ in ABLATION:
        path = runs / file
        if not path.is_file():
            notes.append(f"{name}: {path} missing (docs/bggan.md gives the commands)")
            continue
        register(name)(functools.partial(render_bggan, checkpoint=str(path)))
        names.append(name)
    return names, notes


def median_seconds(call, repeats: int) -> float:
    """Median wall time of ``call()`` over ``repeats`` runs after one warm-up."""
    call()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def cpu_times(checkpoint, threads: int, repeats: int, paper_width: bool) -> list[tuple[str, str, float]]:
    """(network, runtime, s/image) at 1024×1536 for the shipped (or given) checkpoint and, if
    ``paper_width``, an untrained paper-width Glass-Net, in torch and onnxruntime."""
    import onnxruntime
    import torch

    from lensblur.systems.bggan.export import export_onnx
    from lensblur.systems.bggan.model import GlassNet
    from lensblur.systems.bggan.renderer import load_bggan
    from lensblur.training.checkpoint import save_checkpoint

    torch.set_num_threads(threads)
    height, width = 1024, 1536
    image = torch.rand(1, 3, height, width) * 2 - 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        nets = [("shipped (width 0.375)" if checkpoint is None else Path(checkpoint).name, checkpoint)]
        if paper_width:
            path = Path(folder) / "paper.pt"
            save_checkpoint(path, "bggan", {"model": {"width": 1.0, "norm": "instance"}}, GlassNet(1.0).state_dict())
            nets.append(("paper width 1 (untrained)", path))
        for label, path in nets:
            model, _ = load_bggan(path)
            with torch.no_grad():
                rows.append((label, f"torch {torch.__version__}", median_seconds(lambda: model(image), repeats)))
            onnx_path = Path(folder) / "glass.onnx"
            export_onnx(path, onnx_path, height, width)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            feed = {"image": image.numpy()}
            rows.append((label, f"onnxruntime {onnxruntime.__version__}",
                         median_seconds(lambda: session.run(None, feed), repeats)))
    return rows


def table(rows: list[dict], descriptions: dict) -> str:
    """Markdown table of summary rows with a 'what' column."""
    return evaluate.format_markdown(rows, descriptions) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(HERE / "data" / "bggan-runs"),
                        help="folder of the ablation checkpoints (default benchmarks/data/bggan-runs)")
    parser.add_argument("--count", type=int, default=16, help="scenes (default 16, the fixed set)")
    parser.add_argument("--lpips", metavar="WEIGHTS", help="AlexNet+LPIPS weights (lensblur.metrics); else no LPIPS")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the timings (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per network (default 3)")
    parser.add_argument("--no-paper-width", action="store_true", help="skip timing the paper-width network")
    parser.add_argument("--out", default=str(HERE / "results" / "bggan.md"), help="markdown file to write")
    parser.add_argument("--sheet", default=str(HERE / "results" / "bggan_sheet.png"), help="contact sheet PNG")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    folder = nearest_dataset(args.count)
    samples = list(evaluate.iter_samples(folder, "synth"))
    ablation, notes = register_rows(Path(args.runs))
    results, sheet = evaluate.evaluate(samples, REFERENCES + ["bggan"] + ablation, sheet_count=3,
                                       lpips_weights=args.lpips)
    notes += results.notes
    if not args.lpips:
        notes.append("LPIPS absent: no AlexNet/LPIPS weights were given (--lpips WEIGHTS); nothing is downloaded")
    by_name = {entry["renderer"]: entry for entry in results.summary}
    evaluate.write_sheet(args.sheet, [(n, i, [o for o in outs if o[0] in REFERENCES + ["bggan"]], g)
                                      for n, i, outs, g in sheet])
    timings = cpu_times(None, args.threads, args.repeats, not args.no_paper_width)

    descriptions = {"identity": "the input", "naive": "per-pixel disc gather (true depth and focus)",
                    "dbsi-image": "DBSI's image-only network, shipped (no depth)",
                    "scatter": "project default (true depth and focus)",
                    "bggan": "Glass-Net, shipped (image only; fine-tuned without the critic, docs/bggan.md)"}
    descriptions.update({name: text for name, _, text in ABLATION})
    parts = [f"# BGGAN: Glass-Net and its multi-receptive-field WGAN-GP critic\n\n"
             f"{len(samples)} scenes of the fixed synthetic set (384×576, seed 2026) regenerated with the focus on "
             f"the nearest subject, as EBB! is (`lensblur synth --focus nearest`), with exact thin-lens ground "
             f"truth; PSNR/SSIM on 8-bit sRGB; s/image at 384×576 on one thread of a shared 2-core machine with other jobs running (upper bounds, not comparable between rows) "
             f"({platform.machine()}, Python {platform.python_version()}). Regenerate: `python benchmarks/bggan.py` "
             f"(checkpoints: docs/bggan.md). All BGGAN models are width 0.375 of the paper's channels, trained "
             f"for 150 s (pre-training) + 180 s (fine-tuning) on one H200 at 256×256 crops of 256×384 scenes; "
             f"the network runs at that scale and its result is brought back to 384×576.\n",
             "## Table 1 shape: image-only BGGAN against the references\n\n"
             + table([by_name[n] for n in REFERENCES + ["bggan"] if n in by_name], descriptions)]
    rows = [by_name[n] for n in ablation if n in by_name]
    if rows:
        parts.append("## Ablations (sections 3.5.1, 3.5.2; fine-tunes start from the matching pre-training)\n\n"
                     + table(rows, descriptions))
    lines = ["| network | runtime | s/image at 1024×1536 |", "|---|---|---:|"]
    lines += [f"| {label} | {runtime} | {seconds:.2f} |" for label, runtime, seconds in timings]
    parts.append(f"## CPU time at 1024×1536 ({args.threads} threads, median of {args.repeats} after a warm-up; "
                 f"shared machine, so upper bounds)\n\nThe network alone on a 1024×1536 input (the paper's "
                 f"phone setting), no resizing.\n\n" + "\n".join(lines) + "\n")
    if notes:
        parts.append("Notes:\n\n" + "".join(f"- {note}\n" for note in notes))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    print(evaluate.format_table(results.summary))
    for label, runtime, seconds in timings:
        print(f"{label} / {runtime}: {seconds:.2f} s at 1024x1536")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

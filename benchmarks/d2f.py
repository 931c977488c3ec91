"""D2F benchmark: the shipped D2F against the reference renderers and the other image-only systems,
its ablations, the defocus map it learned beside the true blur, and CPU time at 1024×1536.

    python benchmarks/d2f.py                      # -> benchmarks/results/d2f.md, d2f_sheet.png,
                                                  #    d2f_defocus_sheet.png
    python benchmarks/d2f.py --runs benchmarks/data/d2f-runs --lpips alexnet_lpips.pt
    python benchmarks/d2f.py --bggan-src /tmp/bggan-src     # score bggan from another checkout

The scenes are the project's fixed benchmark scenes (16, 384×576, seed 2026) focused on the
nearest subject (``focus="nearest"``): an image-only model cannot know a chosen focus, and D2F is
trained, as on EBB!, on photos focused on the nearest subject. Every renderer is scored on that
same set. Ablation checkpoints (not shipped) come from --runs, as written by the commands in
docs/d2f.md; missing ones are skipped with a note. One torch thread throughout.
"""

from __future__ import annotations

import argparse
import functools
import platform
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402  (the fixed scene set)

from lensblur import evaluate  # noqa: E402
from lensblur.lens import signed_coc  # noqa: E402
from lensblur.renderers import get_renderer, register  # noqa: E402
from lensblur.systems.d2f.model import defocus_radius, working_size  # noqa: E402
from lensblur.systems.d2f.renderer import load_d2f, predict, render_d2f  # noqa: E402

REFERENCES = ["identity", "naive", "scatter", "dbsi-image", "bggan"]
DESCRIPTIONS = {
    "identity": "the input (image-only)",
    "naive": "per-pixel disc gather, given the TRUE disparity and focus (oracle depth)",
    "scatter": "project default, given the TRUE disparity and focus (oracle depth)",
    "dbsi-image": "DBSI paper network, image-only, shipped (trained on random-focus scenes)",
    "bggan": "BGGAN, image-only (built in branch bggan)",
    "d2f": "D2F, shipped: stage 1 + fusion (image-only)",
    "d2f/no-fusion": "D2F stage 1 only, bilinear upsampled (ablation: no fusion stage)",
}
# (row name, checkpoint file in --runs, fusion, description)
ABLATIONS = [
    ("s1: L1 (ours)", "s1-l1.pt", False, "stage 1 only; L1 through the renderer, windows warmed 20→100 "
     "(the shipped choice)"),
    ("s1: L1, a = 100", "s1-a100.pt", False, "stage 1 only; same, window sharpness 100 throughout"),
    ("s1: L1 + grad", "s1-grad.pt", False, "stage 1 only; + image-gradient L1 (weight 1)"),
    ("s1: L1 + D labels", "s1-dsup.pt", False, "stage 1 only; + direct L1 on D vs true blur (weight 1): NOT D2F"),
    ("s2: L1 + grad + prior", "s2-ours.pt", True, "stage 2 on the shipped stage 1: grad 1, M0 prior 0.1 "
     "(our first choice)"),
    ("s2: L1 (ours)", "s2-l1.pt", True, "stage 2: L1 only (the shipped choice, with 100 steps)"),
    ("s2: L1 + grad", "s2-grad.pt", True, "stage 2: grad 1, no M0 prior"),
]
SHEET_SCENES = 4


def register_ablations(runs: Path) -> tuple[list[str], list[str]]:
    """Register DBSI's shipped image-only network, the shipped D2F without fusion and every
    ablation whose checkpoint exists."""
    register("dbsi-image")(functools.partial(get_renderer("dbsi"), checkpoint="image"))
    register("d2f/no-fusion")(functools.partial(render_d2f, fusion=False))
    names, notes = ["d2f/no-fusion"], []
    for name, filename, fusion, _ in ABLATIONS:
        path = runs / filename
        if not path.is_file():
            notes.append(f"{name}: {path} missing (train it with the commands in docs/d2f.md)")
            continue
        register(name)(functools.partial(render_d2f, checkpoint=str(path), fusion=fusion))
        names.append(name)
    return names, notes


def defocus_agreement(checkpoint, samples) -> dict:
    """How well the learned defocus matches the true blur: mean over scenes of the Spearman rank
    correlation between the learned radius and the true |c| (working size), and the mean
    absolute radius error in pixels of the full image."""
    from scipy.stats import spearmanr

    model = load_d2f(checkpoint)
    correlations, errors = [], []
    for sample in samples:
        learned, true = learned_and_true_radius(model, sample)
        correlations.append(spearmanr(learned.ravel(), true.ravel()).statistic)
        errors.append(float(np.abs(learned - true).mean()))
    return {"spearman": float(np.nanmean(correlations)), "radius_error": float(np.mean(errors))}


def learned_and_true_radius(model, sample) -> tuple[np.ndarray, np.ndarray]:
    """(learned, true) blur radius in pixels of the full image, both at the working size."""
    height, width = sample.image.shape[:2]
    work_h, work_w = working_size(height, width)
    _, defocus = predict(model, sample.image_srgb8.astype(np.float32) / 255.0, fusion=False)
    learned = defocus_radius(defocus, work_w) * width / work_w
    true = np.abs(signed_coc(sample.disparity, sample.lens.blur, sample.lens.focus_disparity, sample.lens.focus_range))
    true = cv2.resize(true.astype(np.float32), (work_w, work_h), interpolation=cv2.INTER_AREA)
    return learned, true


def defocus_sheet(path: Path, samples) -> None:
    """Rows: input | true blur |c| | learned D as a radius | D2F output | ground truth; both blur
    maps on one colour scale per row (black 0, brightest = the row's largest true |c|)."""
    model = load_d2f()
    rows = []
    for sample in samples[:SHEET_SCENES]:
        learned, true = learned_and_true_radius(model, sample)
        top = max(float(true.max()), 1e-6)

        def colour(radius):
            grey = np.round(np.clip(radius / top, 0, 1) * 255).astype(np.uint8)
            return cv2.applyColorMap(grey, cv2.COLORMAP_MAGMA)[..., ::-1]

        out, _ = predict(model, sample.image_srgb8.astype(np.float32) / 255.0)
        rows.append((sample.name, sample.image_srgb8,
                     [(f"true |c| (0-{top:.0f} px)", colour(true)), ("learned radius", colour(learned)),
                      ("d2f", np.round(out * 255).astype(np.uint8))], sample.gt))
    evaluate.write_sheet(path, rows)


def time_at_hd(sample, repeats: int = 2) -> float:
    """Median seconds of one shipped-D2F call at 1024×1536 after a warm-up call (one thread)."""
    image = cv2.resize(sample.image, (1536, 1024), interpolation=cv2.INTER_LINEAR)
    disparity = cv2.resize(sample.disparity, (1536, 1024), interpolation=cv2.INTER_LINEAR)
    render_d2f(image, disparity, sample.lens)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        render_d2f(image, disparity, sample.lens)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def score_elsewhere(renderer: str, source: Path, folder: Path, count: int) -> tuple[dict | None, str]:
    """Score ``renderer`` from another lensblur source tree (e.g. branch bggan before the merge)
    on the same scenes with its own ``lensblur eval`` (one thread); (summary row or None, note)."""
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, PYTHONPATH=str(source), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        command = [sys.executable, "-m", "lensblur", "eval", "-q", "--data", str(folder), "--renderer", renderer,
                   "--limit", str(count), "--out", out, "--sheet", "0"]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        results = Path(out) / "results.json"
        if done.returncode != 0 or not results.is_file():
            return None, f"{renderer} from {source} failed: {done.stderr.strip()[-200:]}"
        rows = [r for r in json.loads(results.read_text())["summary"] if r["renderer"] == renderer]
    return (rows[0] if rows else None), f"{renderer} scored with the code and checkpoint in {source}"


def _table(rows, descriptions) -> str:
    return evaluate.format_markdown(rows, descriptions)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(HERE / "data" / "d2f-runs"),
                        help="folder of the ablation checkpoints (default benchmarks/data/d2f-runs)")
    parser.add_argument("--count", type=int, default=16, help="scenes (default 16, the fixed set)")
    parser.add_argument("--lpips", metavar="WEIGHTS", help="LPIPS (AlexNet) weights file; LPIPS is left out without it")
    parser.add_argument("--out", default=str(HERE / "results"), help="results folder (default benchmarks/results)")
    parser.add_argument("--no-timing", action="store_true", help="skip the 1024×1536 timing")
    parser.add_argument("--bggan-src", metavar="DIR",
                        help="a lensblur src/ folder that has --renderer bggan (before the branches merge)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    folder = quality.dataset(16, 2026, 384, 576, focus="nearest")
    samples = list(evaluate.iter_samples(folder, "synth", limit=args.count))
    ablations, notes = register_ablations(Path(args.runs))
    main_names = REFERENCES + ["d2f", "d2f/no-fusion"]
    results, sheet = evaluate.evaluate(samples, main_names + ablations[1:], sheet_count=SHEET_SCENES,
                                       lpips_weights=args.lpips)
    notes += results.notes
    if not args.lpips:
        notes.append("LPIPS not computed: no LPIPS weights on this machine (pass --lpips WEIGHTS)")
    by_name = {entry["renderer"]: entry for entry in results.summary}
    if args.bggan_src and "bggan" not in by_name:
        row, note = score_elsewhere("bggan", Path(args.bggan_src), folder, args.count)
        notes = [n for n in notes if "renderer bggan" not in n] + [note]
        if row:
            by_name["bggan"] = row
    out = Path(args.out)
    evaluate.write_sheet(out / "d2f_sheet.png", [(n, i, [o for o in outs if o[0] in main_names], g)
                                                for n, i, outs, g in sheet])
    defocus_sheet(out / "d2f_defocus_sheet.png", samples)

    agreement = {"d2f (shipped)": defocus_agreement(None, samples)}
    runs = Path(args.runs)
    for name, filename, _, _ in ABLATIONS:
        if name.startswith("s1") and (runs / filename).is_file():
            agreement[name] = defocus_agreement(runs / filename, samples)
    seconds = None if args.no_timing else time_at_hd(samples[0])

    descriptions = dict(DESCRIPTIONS)
    descriptions.update({name: text for name, _, _, text in ABLATIONS})
    parts = [
        "# D2F: defocus to focus\n\n"
        f"{len(samples)} scenes of the project's fixed synthetic set (384×576, seed 2026, `benchmarks/quality.py`) "
        "focused on the NEAREST subject (`focus=\"nearest\"`; same scenes, refocused), exact thin-lens ground "
        "truth; PSNR/SSIM on 8-bit sRGB, boundary PSNR within the local blur radius of depth edges; s/image at "
        f"384×576 on one torch thread on a shared 2-core machine, so times are upper bounds "
        f"({platform.machine()}, Python {platform.python_version()}). Regenerate: `python benchmarks/d2f.py` "
        "(checkpoints: docs/d2f.md). naive and scatter are given the true disparity and focus; identity, "
        "dbsi-image, bggan and d2f see the image only. The D2F model is the project's small CPU-trained one "
        "(docs/d2f.md), not the authors'.\n",
        "## Main comparison\n\n" + _table([by_name[n] for n in main_names if n in by_name], descriptions) + "\n",
    ]
    stage1 = [by_name[n] for n in ["d2f/no-fusion"] + ablations[1:] if n.startswith(("s1", "d2f/")) and n in by_name]
    stage2 = [by_name[n] for n in ["d2f"] + ablations[1:] if n.startswith(("s2", "d2f")) and n != "d2f/no-fusion"
              and n in by_name]
    if len(stage1) > 1:
        parts.append("## Ablation, stage 1 (short runs: 150 steps each, same data and seed; scored without "
                     "fusion)\n\n" + _table(stage1, descriptions) + "\n")
    if len(stage2) > 1:
        parts.append("## Ablation, stage 2 (short runs: 60 steps each on the shipped stage 1)\n\n"
                     + _table(stage2, descriptions) + "\n")
    lines = ["| model | Spearman(learned radius, true abs(c)) | mean abs radius error (px at 384×576) |",
             "|---|---:|---:|"]
    lines += [f"| {name} | {v['spearman']:.3f} | {v['radius_error']:.2f} |" for name, v in agreement.items()]
    parts.append("## Learned defocus vs true blur\n\nPer scene at the working size, then averaged; the learned "
                 "radius is the layer radius that D selects (notes §3.4). Sheet: `d2f_defocus_sheet.png` "
                 "(input | true blur | learned radius, same colour scale | d2f | ground truth).\n\n"
                 + "\n".join(lines) + "\n")
    if seconds is not None:
        parts.append(f"## CPU time at 1024×1536\n\nShipped D2F (working size 512×768, the authors' kernels "
                     f"exactly; FFT for kernels of 31 px and more), one torch thread, median of 2 after a "
                     f"warm-up: **{seconds:.1f} s** per image.\n")
    if notes:
        parts.append("Notes:\n\n" + "".join(f"- {note}\n" for note in notes))
    out.mkdir(parents=True, exist_ok=True)
    (out / "d2f.md").write_text("\n".join(parts))
    print(evaluate.format_table(results.summary))
    print(f"wrote {out / 'd2f.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""DeepLens benchmark: quality on the fixed synthetic set of benchmarks/quality.py (16 scenes,
384×576, seed 2026, exact thin-lens ground truth) next to scatter and the identity/naive
references (the shape of DeepLens's table 2), CPU inference time at 1024×1536 and at
2048 px long side (one-shot render and an interactive re-render with a new focus), and an
aperture sweep on the bundled astronaut photo (how much the background changes and how much
of its fine detail is left as K grows, i.e. as more recurrent upsampling steps are used).

    python benchmarks/deeplens.py                       # writes benchmarks/results/deeplens.md
    python benchmarks/deeplens.py --count 4 --sheet /tmp/deeplens_sheet.png
    python benchmarks/deeplens.py --checkpoint old.pt --out /tmp/deeplens-old.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402  (benchmarks/quality.py: the cached scene set)

from lensblur import evaluate  # noqa: E402
from lensblur.renderers import get_renderer  # noqa: E402

RENDERERS = ["identity", "naive", "scatter", "deeplens"]
TIMING_SIZES = [(1024, 1536), (1365, 2048)]
ROOT = HERE.parent
SWEEP_BLURS = [6, 12, 24, 48, 60, 80]
SWEEP_FOCUS = (250, 150)     # the astronaut's face, pixels (x, y)


def time_call(function, repeats: int) -> float:
    """Median wall-clock seconds of ``function()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def timing_rows(sample, repeats: int) -> list[dict]:
    """Render times at the TIMING_SIZES for a scene scaled up (K scaled with the width)."""
    from lensblur.systems.deeplens.session import DeepLensSession, choose_levels

    scatter = get_renderer("scatter")
    rows = []
    for height, width in TIMING_SIZES:
        image = cv2.resize(sample.image, (width, height), interpolation=cv2.INTER_LINEAR)
        disparity = cv2.resize(sample.disparity, (width, height), interpolation=cv2.INTER_LINEAR)
        lens = sample.lens.with_(blur=sample.lens.blur * width / sample.image.shape[1])
        focus_b = float(np.clip(1.0 - lens.focus_disparity, 0, 1))
        session = {}

        def one_shot():
            session["s"] = DeepLensSession(image, disparity)
            session["s"].render(lens.focus_disparity, lens.blur)

        one = time_call(one_shot, repeats)
        again = time_call(lambda: session["s"].render(focus_b, lens.blur), repeats)
        scatter_seconds = time_call(lambda: scatter(image, disparity, lens), repeats)
        max_coc = lens.blur * float(np.abs(disparity - lens.focus_disparity).max())
        levels = choose_levels(height, width, max_coc, session["s"].model.r_max)
        rows.append({"size": f"{height}×{width}", "K": lens.blur, "levels": levels,
                     "lens_blur_size": f"{-(-height // 2 ** levels)}×{-(-width // 2 ** levels)}",
                     "one_shot": one, "rerender": again, "scatter": scatter_seconds})
    return rows


def fine_detail(image: np.ndarray) -> np.ndarray:
    """|image − 3×3 box blur of it| per pixel and channel: what a blur removes first."""
    return np.abs(image - cv2.blur(image, (3, 3), borderType=cv2.BORDER_REFLECT))


def aperture_sweep() -> list[dict]:
    """examples/astronaut.jpg with its disparity, focus on the face, K = SWEEP_BLURS: mean
    |output − input| and mean fine detail (linear RGB) over the background (|D − d_f| > 0.3)."""
    from lensblur.io.depth import fit_to_image, read_depth
    from lensblur.io.images import read_image
    from lensblur.lens import Lens, focus_disparity_at
    from lensblur.systems.deeplens.session import DeepLensSession, choose_levels

    image = read_image(ROOT / "examples" / "astronaut.jpg").pixels
    height, width = image.shape[:2]
    disparity = fit_to_image(read_depth(ROOT / "examples" / "astronaut_disparity.png"), height, width)
    focus = focus_disparity_at(disparity, *SWEEP_FOCUS)
    background = np.abs(disparity - focus) > 0.3
    session = DeepLensSession(image, disparity)
    scatter = get_renderer("scatter")
    rows = [{"K": 0, "levels": "", "input_detail": float(fine_detail(image)[background].mean())}]
    for blur in SWEEP_BLURS:
        extent = float(np.abs(disparity - focus).max())
        row = {"K": blur, "levels": choose_levels(height, width, blur * extent, session.model.r_max)}
        for name, out in (("deeplens", session.render(focus, blur)),
                          ("scatter", scatter(image, disparity, Lens(blur=blur, focus_disparity=focus)))):
            row[f"{name}_change"] = float(np.abs(out - image)[background].mean())
            row[f"{name}_detail"] = float(fine_detail(out)[background].mean())
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=16, help="scenes (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats, median (default 3)")
    parser.add_argument("--sheet", help="also write a contact sheet PNG here")
    parser.add_argument("--out", default=str(HERE / "results" / "deeplens.md"), help="markdown file to write")
    parser.add_argument("--checkpoint", help="DeepLens checkpoint to measure instead of the shipped one")
    args = parser.parse_args(argv)
    if args.checkpoint:
        # every DeepLens figure (quality, speed, sweep) loads the default checkpoint: redirect it
        from lensblur.systems.deeplens import session as deeplens_session

        chosen = Path(args.checkpoint).resolve()
        deeplens_session.shipped_checkpoint = lambda name: chosen

    import torch

    torch.set_num_threads(args.threads)
    folder = quality.dataset(args.count, 2026, 384, 576)
    samples = list(evaluate.iter_samples(folder, "synth"))
    results, sheet = evaluate.evaluate(samples, RENDERERS, sheet_count=4)
    if args.sheet:
        evaluate.write_sheet(args.sheet, sheet)
    timings = timing_rows(samples[0], args.repeats)
    sweep = aperture_sweep()

    from lensblur.systems.deeplens.session import load_renderer

    model = load_renderer()
    config = model.config
    lines = [
        "# DeepLens: quality and speed",
        "",
        f"Quality: the {args.count} synthetic scenes of `benchmarks/quality.py` (384×576, seed 2026, exact",
        "thin-lens ground truth), every renderer given the true disparity, focus and K (the shape of",
        "DeepLens's table 2). PSNR/SSIM on 8-bit sRGB; boundary PSNR over the band within the local blur",
        "radius of depth edges; s/image is the render call alone after a warm-up, with "
        f"{args.threads} torch thread(s).",
        "`python benchmarks/deeplens.py`",
        "",
        evaluate.format_markdown(results.summary),
        "",
        f"Checkpoint: `{Path(args.checkpoint).name if args.checkpoint else 'deeplens.pt'}`, trained on"
        f" {config.get('trained_on', '?')} (`lensblur synth` scenes, never the benchmark's seed 2026; docs/deeplens.md), r_max = {config['r_max']} px at the"
        " lens-blur resolution.",
        "",
        "Speed on this CPU (Python " + platform.python_version() + ", " + platform.machine() +
        f", {args.threads} thread(s), median of {args.repeats}): scene 0 scaled up, K scaled with the width.",
        "One-shot = new session (features) + render; re-render = same session, new focus (lens blur",
        "and upsampling only). The thread count limits torch only; scatter runs its numba kernels with",
        "numba's default threads. The paper reports 0.7 s on a GPU.",
        "",
        "| size | K (px) | lens blur at | deeplens one-shot s | deeplens re-render s | scatter s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in timings:
        lines.append(f"| {row['size']} | {row['K']:.1f} | {row['lens_blur_size']} | {row['one_shot']:.2f} | "
                     f"{row['rerender']:.2f} | {row['scatter']:.2f} |")
    lines += [
        "",
        "Aperture sweep on `examples/astronaut.jpg` (512×512, its disparity, focus on the face at",
        f"{SWEEP_FOCUS}): over the background (|D − d_f| > 0.3), the mean change from the input and the",
        "mean fine detail left (|x − 3×3 box of x|, linear RGB; the input has "
        f"{sweep[0]['input_detail']:.4f}). `levels` = ×2 halvings before",
        "the lens blur, i.e. recurrent guided upsampling steps. A larger K must change the background",
        "more and leave less detail.",
        "",
        "| K (px) | levels | deeplens change | scatter change | deeplens detail | scatter detail |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sweep[1:]:
        lines.append(f"| {row['K']} | {row['levels']} | {row['deeplens_change']:.4f} | {row['scatter_change']:.4f} | "
                     f"{row['deeplens_detail']:.4f} | {row['scatter_detail']:.4f} |")
    if results.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in results.notes]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(evaluate.format_table(results.summary))
    for row in timings + sweep:
        print(row)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

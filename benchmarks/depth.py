"""Benchmark of the "auto" depth estimator; writes benchmarks/results/depth.md.

1. Ordinal error (WHDR-style) on scikit-image's Middlebury motorcycle: over 20,000 random pixel
   pairs whose ground-truth disparities differ by more than 10 % of the range, the fraction whose
   order the estimate gets wrong (ties count as half wrong), for auto, a flat map and the
   lower-rows-nearer layout prior.
2. IoU of the astronaut's subject matte (> 0.5) with tests/data/astronaut_subject_mask.png.
3. Time of estimate_auto on a 12 MP photo (the astronaut upscaled to 4000×3000), median of 5,
   wall and process CPU seconds.

    python benchmarks/depth.py
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from lensblur.color import srgb_to_linear
from lensblur.depth import people
from lensblur.depth.auto import estimate_auto, layout_prior
from lensblur.metrics import ordinal_error

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    lines = ["# Depth: the \"auto\" estimator", "",
             f"Machine: {platform.processor() or platform.machine()}, people models "
             f"{'installed' if people.models_available() else 'absent'}.", ""]
    left, _, truth = skimage.data.stereo_motorcycle()
    image = srgb_to_linear(left.astype(np.float32) / 255)
    auto = estimate_auto(image)
    h, w = truth.shape
    rows = [("auto", auto.disparity), ("flat 0.5", np.full((h, w), 0.5, np.float32)),
            ("lower rows nearer", np.ascontiguousarray(layout_prior(h, w)))]
    lines += ["## Ordinal error, Middlebury motorcycle (20,000 pairs, lower is better)", "",
              "| estimate | ordinal error |", "|---|---|"]
    for name, disparity in rows:
        lines.append(f"| {name} | {ordinal_error(disparity, truth):.3f} |")
    lines += ["", f"auto notes: {'; '.join(auto.notes)}", ""]

    astronaut = srgb_to_linear(skimage.data.astronaut().astype(np.float32) / 255)
    mask = cv2.imread(str(ROOT / "tests/data/astronaut_subject_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    lines += ["## Subject matte IoU, astronaut (hand-annotated mask)", "", "| setting | IoU |", "|---|---|"]
    for label, use_people in (("auto (people models)", True), ("auto, saliency only", False)):
        if use_people and not people.models_available():
            lines.append(f"| {label} | skipped (models absent) |")
            continue
        matte = estimate_auto(astronaut, people=use_people).matte
        predicted = matte > 0.5 if matte is not None else np.zeros_like(mask)
        lines.append(f"| {label} | {(predicted & mask).sum() / (predicted | mask).sum():.3f} |")

    big = cv2.resize(astronaut, (4000, 3000), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    lines += ["", "## Time for a 12 MP photo (4000×3000), median of 5 after one warm-up", "",
              "Wall seconds are inflated on a shared machine; CPU seconds (all threads of the process) are the "
              "steadier comparison between rows.", "",
              "| setting | wall s | CPU s |", "|---|---|---|"]
    for label, kwargs in (("auto", {}), ("auto, cues off (before issue 20)", {"cues": False}),
                          ("auto, saliency only", {"people": False}), ("auto, no matte", {"matte": False})):
        estimate_auto(big, **kwargs)
        wall, cpu = [], []
        for _ in range(5):
            start, start_cpu = time.perf_counter(), time.process_time()
            estimate_auto(big, **kwargs)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        lines.append(f"| {label} | {np.median(wall):.2f} | {np.median(cpu):.2f} |")
    out = ROOT / "benchmarks/results/depth.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""CPU seconds of the disc kernel (kernels.scatter_spans) inside whole renders, against a baseline tree.

Cases: the continuous-depth cases of benchmarks/speed_photos.py (the 1536×1024 ramp and the tilted
plane with a subject, BokehMe 13/21 when ../shared/samples is present) and the web app's 1024 px
preview of the 12 MP iPhone portrait (`image-with-depth.jpg`, photo and map shrunk to 1024 px on
the long side, the phone's blur scaled with them). For each tree (this one and ``--baseline SRC``,
each in its own child process, alternating ``--rounds`` times): the process CPU time of one
render and of the scatter_spans calls inside it, median of 3 renders after a warm-up; the table
keeps each tree's fastest round. Run with one numba thread so CPU time is not inflated by threads
waiting for each other. Writes benchmarks/results/disc_kernel.md.

    NUMBA_NUM_THREADS=1 LENSBLUR_KERNELS=jit python benchmarks/disc_kernel.py --baseline /tmp/old/src
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PREVIEW = HERE.parent.parent / "shared" / "samples" / "apple" / "image-with-depth.jpg"
PREVIEW_LONG_SIDE = 1024


def child() -> list[dict]:
    """In a fresh process: render CPU and disc-kernel CPU seconds of each case."""
    import cv2

    import lensblur.renderers.discs as discs
    from lensblur.cli import build_parser
    from lensblur.commands.render import lens_from_args, load_depth
    from lensblur.io.images import read_image
    from lensblur.renderers import render_with
    from speed_photos import make_synthetic, phone_cases

    kernel = discs.scatter_spans
    spent = [0.0]

    def timed(*args):
        start = time.process_time()
        out = kernel(*args)
        spent[0] += time.process_time() - start
        return out

    discs.scatter_spans = timed
    scratch = tempfile.mkdtemp()
    cases = make_synthetic(Path(scratch)) + [c for c in phone_cases() if "BokehMe" in c["name"]]
    if PREVIEW.exists():
        cases.append({"name": f"web preview {PREVIEW_LONG_SIDE} px of {PREVIEW.name}", "input": PREVIEW,
                      "options": [], "shrink": True})
    rows = []
    for case in cases:
        args = build_parser().parse_args(["render", str(case["input"]), "-o", str(Path(scratch) / "out.jpg"), "-q",
                                          "--overwrite", *case["options"]])
        photo = read_image(args.input, max_pixels=args.max_pixels)
        depth = load_depth(args, photo)
        lens = lens_from_args(args, photo, depth.disparity, depth)
        pixels, disparity, matte = depth.pixels, depth.disparity, depth.matte
        if case.get("shrink"):
            height, width = disparity.shape
            factor = PREVIEW_LONG_SIDE / max(height, width)
            size = (round(width * factor), round(height * factor))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
            disparity = cv2.resize(disparity, size, interpolation=cv2.INTER_AREA)
            matte = None if matte is None else cv2.resize(matte, size, interpolation=cv2.INTER_AREA)
            lens = dataclasses.replace(lens, blur=lens.blur * factor)
        render_with(args.renderer, pixels, disparity, lens, matte=matte)
        renders, kernels = [], []
        for _ in range(3):
            spent[0] = 0.0
            start = time.process_time()
            render_with(args.renderer, pixels, disparity, lens, matte=matte)
            renders.append(time.process_time() - start)
            kernels.append(spent[0])
        height, width = disparity.shape
        rows.append({"case": case["name"], "size": f"{width}×{height}", "render_s": statistics.median(renders),
                     "kernel_s": statistics.median(kernels)})
    return rows


def run_tree(src: str) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, str(HERE)]))
    done = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", help="another src/ folder to time the same way (e.g. an older commit's)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per tree (default 2)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "disc_kernel.md")
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(HERE))
        print(json.dumps(child()))
        return 0
    trees = {"this tree": str(HERE.parent / "src")}
    if args.baseline:
        trees["baseline"] = args.baseline
    best: dict[str, dict[str, dict]] = {name: {} for name in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():
            for row in run_tree(src):
                kept = best[name].get(row["case"])
                if kept is None or row["kernel_s"] < kept["kernel_s"]:
                    best[name][row["case"]] = row
    mine = best["this tree"]
    lines = ["# Disc kernel CPU seconds inside whole renders", "",
             f"`NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '?')} "
             f"LENSBLUR_KERNELS={os.environ.get('LENSBLUR_KERNELS', 'auto')} python benchmarks/disc_kernel.py"
             f"{' --baseline SRC' if args.baseline else ''}` on {platform.machine()}, {os.cpu_count()} logical CPUs; "
             f"load average {os.getloadavg()[0]:.1f} when it finished (a shared machine: upper bounds). Process CPU "
             "seconds, median of 3 renders after a warm-up, fastest of the alternating rounds.", "",
             "| case | size | render, this tree | disc kernel, this tree |"
             + (" render, baseline | disc kernel, baseline | kernel change |" if args.baseline else ""),
             "|---|---|---:|---:|" + ("---:|---:|---:|" if args.baseline else "")]
    for case, row in mine.items():
        line = f"| {case} | {row['size']} | {row['render_s']:.3f} | {row['kernel_s']:.3f} |"
        if args.baseline:
            base = best["baseline"][case]
            change = (row["kernel_s"] / base["kernel_s"] - 1) * 100
            line += f" {base['render_s']:.3f} | {base['kernel_s']:.3f} | {change:+.0f} % |"
        lines.append(line)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Renderer against gegl in process CPU seconds, for a shared machine where wall clocks mean little.

The continuous-depth cases of benchmarks/speed_photos.py (the 1536×1024 ramp and tilted plane with
a subject, and BokehMe 13/21 when ../shared/samples is present). For each: the renderer's CPU
time (all its threads summed; median of 3 renders after a warm-up, each source tree in its own
child process) and gegl lens-blur's CPU time on the same encoded image and radius map (its child
process's user + system time, minus that of a 16×16 run), in the same run. ``--baseline SRC``
also times another source tree (e.g. an export of an older commit's src/) the same way, so a
change is measured against what it changes in one run. Writes benchmarks/results/speed_cpu.md.

    NUMBA_NUM_THREADS=2 python benchmarks/speed_cpu.py [--baseline /tmp/old/src] [--no-gegl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(case: dict, scratch: str) -> dict:
    """In a fresh process: the renderer's CPU seconds on ``case``; saves gegl's inputs."""
    from lensblur.cli import build_parser
    from lensblur.commands.render import lens_from_args, load_depth
    from lensblur.io.images import read_image
    from lensblur.renderers import render_with
    from speed_photos import save_gegl_inputs

    args = build_parser().parse_args(["render", case["input"], "-o", str(Path(scratch) / "out.jpg"), "-q",
                                      "--overwrite", *case["options"]])
    photo = read_image(args.input, max_pixels=args.max_pixels)
    depth = load_depth(args, photo)
    lens = lens_from_args(args, photo, depth.disparity, depth)

    def render():
        return render_with(args.renderer, depth.pixels, depth.disparity, lens, matte=depth.matte)

    render()
    times = []
    for _ in range(3):
        start = time.process_time()
        render()
        times.append(time.process_time() - start)
    largest = save_gegl_inputs(depth.pixels, depth.disparity, lens, scratch)
    height, width = depth.disparity.shape
    return {"size": f"{width}×{height}", "largest_radius": largest, "cpu_s": statistics.median(times)}


def gegl_cpu_seconds(encoded: np.ndarray, mask: np.ndarray, radius: float) -> float:
    """gegl lens-blur's child CPU seconds on the image minus those of a 16×16 crop (median of 3)."""
    from lensblur.renderers.gegl import run_gegl_lens_blur

    def cpu(image, weights):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_gegl_lens_blur(image, weights, radius)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    startup = statistics.median(cpu(encoded[:16, :16], mask[:16, :16]) for _ in range(3))
    return statistics.median(cpu(encoded, mask) for _ in range(3)) - startup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", help="another src/ folder to time the same way (e.g. an older commit's)")
    parser.add_argument("--no-gegl", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "speed_cpu.md")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child[0]), args.child[1])))
        return 0
    sys.path.insert(0, str(HERE))
    import speed_photos

    trees = [("this tree", str(ROOT / "src"))] + ([("baseline", args.baseline)] if args.baseline else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="lensblur-speed-cpu-") as folder:
        cases = speed_photos.make_synthetic(Path(folder)) + [
            case for case in speed_photos.phone_cases() if case["name"].startswith("BokehMe")]
        for case in cases:
            row = {"case": case["name"]}
            for label, source in trees:
                scratch = Path(folder) / "case"
                scratch.mkdir(exist_ok=True)
                done = subprocess.run([sys.executable, __file__, "--child", json.dumps(case), str(scratch)],
                                      capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=source))
                if done.returncode != 0:
                    raise SystemExit(f"{case['name']} ({label}): {done.stderr.strip()[-400:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                row.update(size=result["size"], largest_radius=result["largest_radius"])
                row[label] = result["cpu_s"]
            if not args.no_gegl:
                row["gegl"] = gegl_cpu_seconds(np.load(scratch / "encoded.npy"), np.load(scratch / "mask.npy"),
                                               row["largest_radius"])
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    threads = os.environ.get("NUMBA_NUM_THREADS", "all")
    load = os.getloadavg()[0]
    header = "| case | size | largest radius px | " + " | ".join(f"{label} CPU s" for label, _ in trees)
    header += " | gegl CPU s | gegl ÷ this tree |" if not args.no_gegl else " |"
    lines = ["# Renderer and gegl in process CPU seconds", "",
             f"`NUMBA_NUM_THREADS={threads} python benchmarks/speed_cpu.py"
             + (" --baseline SRC" if args.baseline else "") + f"` on {platform.machine()}, {os.cpu_count()} "
             f"logical CPUs; load average {load:.1f} when it finished. CPU seconds sum all threads, so other "
             "load on a shared machine inflates them far less than wall clocks; renderer: median of 3 renders "
             "after a warm-up in a fresh process; gegl: its process's user + system time minus a 16×16 run's.",
             "", header, "|---|---|---:|" + "---:|" * (len(trees) + (0 if args.no_gegl else 2))]
    for row in rows:
        cells = [row["case"], row["size"], f"{row['largest_radius']:.1f}"] + [f"{row[label]:.3f}" for label, _ in trees]
        if not args.no_gegl:
            cells += [f"{row['gegl']:.3f}", f"{row['gegl'] / row['this tree']:.1f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

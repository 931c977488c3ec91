"""Speed of the scatter renderer alone on continuous depth (real phone maps, ramps, a tilted floor).

The layered scenes of benchmarks/speed.py have a few fronto-parallel planes; real photos have
floors, walls and faces, where every depth slab of the renderer is a band across the frame. Cases:
- the phone photos in ../shared/samples with their own depth, set up as ``lensblur render IN``
  does by default (embedded depth, the phone's focus and blur): the 12 MP iPhone portrait,
  pug.heic, BokehMe 13 and 21 (their disparity PNGs), the depthy hut (its depth JPEG);
- 1024×1536 (H×W), the bundled astronaut photo with a vertical disparity ramp 0.2 → 1.0, focus
  0.6, largest blur radius 30 px;
- the same photo on a tilted floor (disparity rising towards the bottom) with a subject (an
  ellipse of constant disparity) standing on it, focus on the subject, largest radius 30 px.
Samples missing on this machine are skipped. Each case and code version runs in a fresh child
process with NUMBA_NUM_THREADS as set (default 2): one warm-up render, then the median of
--repeats renders (wall time, and the process CPU time of the same renders). gegl lens-blur runs
on the same photo and radius map, its time minus its run on a 16×16 image (process start-up).
With --baseline SRC (a ``src`` folder of another checkout) each case also runs with that code,
in the same run, so the two are measured under the same load. Writes
benchmarks/results/continuous.{md,json}.

    python benchmarks/continuous.py [--repeats 3] [--baseline /tmp/base/src] [--no-gegl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"
RESULTS = ROOT / "benchmarks" / "results"
PHOTOS = [  # (name, photo, depth option of lensblur render)
    ("iPhone portrait 12 MP", "apple/image-with-depth.jpg", "auto"),
    ("pug.heic", "apple/pug.heic", "auto"),
    ("BokehMe 13", "bokehme/13.jpg", "bokehme/13.png"),
    ("BokehMe 21", "bokehme/21.jpg", "bokehme/21.png"),
    ("depthy hut", "google/depthy_hut-image.jpg", "google/depthy_hut-depth.jpg"),
]


def photo_case(photo: Path, depth: str):
    """(linear pixels, disparity, lens) as ``lensblur render PHOTO [--depth DEPTH]`` sets them up."""
    from lensblur.commands import render
    from lensblur.io.images import read_image

    parser = argparse.ArgumentParser()
    render.add_arguments(parser)
    depth_arg = depth if depth == "auto" else str(SAMPLES / depth)
    args = parser.parse_args([str(photo), "-o", "unused.jpg", "--depth", depth_arg])
    image = read_image(photo)
    choice = render.load_depth(args, image)
    lens = render.lens_from_args(args, image, choice.disparity, choice)
    return choice.pixels, choice.disparity, lens


def synthetic_cases():
    """The ramp and the tilted floor with a subject on the astronaut photo, 1024×1536."""
    import cv2

    from lensblur.color import srgb_to_linear
    from lensblur.lens import Lens

    height, width = 1024, 1536
    encoded = cv2.imread(str(ROOT / "examples" / "astronaut.jpg"))[..., ::-1]
    pixels = srgb_to_linear(cv2.resize(encoded, (width, height), interpolation=cv2.INTER_AREA) / np.float32(255))
    rows = np.linspace(0.2, 1.0, height, dtype=np.float32)[:, None]
    ramp = np.repeat(rows, width, axis=1)
    yield "ramp 0.2→1.0, focus 0.6, 30 px", pixels, ramp, Lens(blur=30 / 0.4, focus_disparity=0.6)
    floor = np.repeat(np.linspace(0.1, 0.9, height, dtype=np.float32)[:, None], width, axis=1)
    yy, xx = np.mgrid[:height, :width]
    subject = ((yy - 0.55 * height) / (0.3 * height)) ** 2 + ((xx - 0.5 * width) / (0.12 * width)) ** 2 <= 1
    floor[subject] = 0.6  # stands where the floor is at 0.6 (its feet)
    yield "tilted floor + subject, 30 px", pixels, floor, Lens(blur=30 / 0.5, focus_disparity=0.6)


def save_case(folder: Path, index: int, name: str, pixels, disparity, lens) -> Path:
    path = folder / f"case{index}"
    path.mkdir()
    np.save(path / "pixels.npy", np.ascontiguousarray(pixels, np.float32))
    np.save(path / "disparity.npy", np.ascontiguousarray(disparity, np.float32))
    highlights = lens.highlights
    (path / "case.json").write_text(json.dumps({
        "name": name, "blur": lens.blur, "focus": lens.focus_disparity, "focus_range": lens.focus_range,
        "aperture": [lens.aperture.blades, lens.aperture.rotation, lens.aperture.curvature],
        "highlights": None if highlights is None else [highlights.threshold, highlights.strength, highlights.lamps]}))
    return path


def load_case(path: Path):
    from lensblur.aperture import Aperture
    from lensblur.lens import Highlights, Lens

    data = json.loads((path / "case.json").read_text())
    highlights = None if data["highlights"] is None else Highlights(*data["highlights"])
    lens = Lens(blur=data["blur"], focus_disparity=data["focus"], focus_range=data["focus_range"],
                aperture=Aperture(*data["aperture"]), highlights=highlights)
    return np.load(path / "pixels.npy"), np.load(path / "disparity.npy"), lens


def child(path: str, repeats: int) -> dict:
    """Time the scatter renderer on one case in this process (printed as JSON by --child)."""
    from lensblur.renderers import get_renderer

    pixels, disparity, lens = load_case(Path(path))
    render = get_renderer("scatter")
    render(pixels, disparity, lens)  # warm-up: compile or cache load, first touch of memory
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        render(pixels, disparity, lens)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"render_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def run_child(path: Path, repeats: int, src: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), NUMBA_NUM_THREADS=os.environ.get("NUMBA_NUM_THREADS", "2"))
    done = subprocess.run([sys.executable, __file__, "--child", str(path), "--repeats", str(repeats)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def gegl_seconds(path: Path) -> float:
    """gegl lens-blur on the case's photo and radius map, minus its start-up on 16×16."""
    from lensblur.renderers.gegl import render_gegl

    pixels, disparity, lens = load_case(path)
    start = time.perf_counter()
    render_gegl(pixels[:16, :16], disparity[:16, :16], lens.with_(blur=max(lens.blur, 1.0)))
    startup = time.perf_counter() - start
    start = time.perf_counter()
    render_gegl(pixels, disparity, lens)
    return time.perf_counter() - start - startup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="src folder of the code to compare with, measured alongside")
    parser.add_argument("--no-gegl", action="store_true")
    parser.add_argument("--only", help="run only cases whose name contains this")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return 0
    from lensblur.lens import largest_radius

    src = ROOT / "src"
    rows = []
    with tempfile.TemporaryDirectory(prefix="lensblur-continuous-") as folder:
        cases = [(name, *photo_case(SAMPLES / photo, depth)) for name, photo, depth in PHOTOS
                 if (SAMPLES / photo).exists() and (depth == "auto" or (SAMPLES / depth).exists())]
        cases += list(synthetic_cases())
        for index, (name, pixels, disparity, lens) in enumerate(cases):
            if args.only and args.only not in name:
                continue
            path = save_case(Path(folder), index, name, pixels, disparity, lens)
            row = {"case": name, "size": f"{pixels.shape[1]}×{pixels.shape[0]}",
                   "radius": round(largest_radius(disparity, lens), 1)}
            row.update(run_child(path, args.repeats, src))
            if args.baseline:
                before = run_child(path, args.repeats, args.baseline)
                row["baseline_render_s"], row["baseline_cpu_s"] = before["render_s"], before["cpu_s"]
            if not args.no_gegl:
                row["gegl_s"] = gegl_seconds(path)
            print(json.dumps(row), flush=True)
            rows.append(row)
    write_results(args, rows)
    return 0


def write_results(args, rows) -> None:
    load = os.getloadavg()[0]
    threads = os.environ.get("NUMBA_NUM_THREADS", "2")
    lines = ["# Scatter renderer on continuous depth", "",
             f"`python benchmarks/continuous.py --repeats {args.repeats}"
             + (f" --baseline {args.baseline}" if args.baseline else "") + f"` on {platform.machine()}, "
             f"{os.cpu_count()} logical CPUs, NUMBA_NUM_THREADS={threads}, Python {platform.python_version()}; "
             f"load average {load:.1f} when it finished (a shared machine inflates every wall time: compare "
             "columns of one run, and read the CPU seconds too).", "",
             "Renderer alone (highlight recovery included, no decoding or encoding), median of the repeats; "
             "CPU = process CPU seconds of one render (all threads). gegl: lens-blur on the same photo and "
             "radius map minus its 16×16 start-up.", ""]
    header = "| case | size | largest radius px | render s | CPU s |"
    rule = "|---|---|---:|---:|---:|"
    if args.baseline:
        header += " before s | before CPU s | speed-up |"
        rule += "---:|---:|---:|"
    if not args.no_gegl:
        header += " gegl s | gegl / render |"
        rule += "---:|---:|"
    lines += [header, rule]
    for row in rows:
        line = f"| {row['case']} | {row['size']} | {row['radius']} | {row['render_s']:.2f} | {row['cpu_s']:.2f} |"
        if args.baseline:
            line += (f" {row['baseline_render_s']:.2f} | {row['baseline_cpu_s']:.2f} | "
                     f"{row['baseline_render_s'] / row['render_s']:.1f}× |")
        if not args.no_gegl:
            line += f" {row['gegl_s']:.2f} | {row['gegl_s'] / row['render_s']:.1f}× |"
        lines.append(line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "continuous.md").write_text("\n".join(lines) + "\n")
    (args.out / "continuous.json").write_text(json.dumps({"threads": threads, "load": load, "rows": rows}, indent=1))
    print(f"wrote {args.out / 'continuous.md'}")


if __name__ == "__main__":
    sys.exit(main())

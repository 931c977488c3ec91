"""The kernel routes side by side: ahead-of-time compiled (no numba import) on one thread and
on ``--threads`` threads, and numba's parallel JIT kernels.

Routes: ``aot-serial`` (``LENSBLUR_KERNELS=aot``, ``NUMBA_NUM_THREADS=1``: the compiled kernels
as one call each), ``aot`` (``LENSBLUR_KERNELS=aot``: their loops split into chunks on threads,
lensblur.threads) and ``jit`` (``LENSBLUR_KERNELS=jit``); needs ``python -m lensblur.compile`` to
have built the compiled module. Cases: the start-up command of benchmarks/speed.py (``lensblur
render tiny.png -o tiny.jpg --blur 1`` on 16×16, automatic depth), the same with a depth file,
the whole command on the 12 MP iPhone portrait and on pug.heic, and on speed_photos.py's ramp
(1536×1024, focus 0.6, blur 75); each as median wall time and median CPU time (user + system) of
fresh processes, alternating the routes so all see the same machine load, and whether their
outputs are identical files. Also the renderer alone on that photo (its embedded map, blur
20 px, focus at disparity 0.8) and on the photo and map upscaled to 24 MP, in one process per
route: the first call (with the JIT route's import and cache load) and a second.
Writes benchmarks/results/aot_routes.md.

    python benchmarks/aot_routes.py [--repeats 5] [--big-repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "apple"
PHOTO = SAMPLES / "image-with-depth.jpg"
PUG = SAMPLES / "pug.heic"
ROUTES = ("aot-serial", "aot", "jit")

_RENDERER_ALONE = """
import json, sys, time
import cv2
import lensblur
from lensblur.io.embedded import find_embedded_depth
photo = lensblur.read_image(sys.argv[1]).pixels
disparity = find_embedded_depth(sys.argv[1]).disparity
if float(sys.argv[2]) != 1:  # the photo and its map enlarged by that factor per side
    size = (round(photo.shape[1] * float(sys.argv[2])), round(photo.shape[0] * float(sys.argv[2])))
    photo = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    disparity = cv2.resize(disparity, size, interpolation=cv2.INTER_LINEAR)
times = []
for _ in range(2):
    start = time.perf_counter()
    lensblur.render(photo, disparity, blur=20, focus_disparity=0.8)
    times.append(time.perf_counter() - start)
print(json.dumps({"first_s": times[0], "second_s": times[1], "numba": "numba" in sys.modules,
                  "megapixels": photo.shape[0] * photo.shape[1] / 1e6}))
"""


def _env(route: str, threads: int) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"), LENSBLUR_KERNELS=route.split("-")[0],
                NUMBA_NUM_THREADS=str(1 if route.endswith("-serial") else threads))


def _timed(command: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system of the child) of one run, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()[-400:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def _cli(case: list[str], output: str) -> list[str]:
    return [sys.executable, "-m", "lensblur", "render", *case, "-o", output, "-q", "--overwrite"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def measure(repeats: int, big_repeats: int, threads: int, photos: bool = True) -> dict:
    from PIL import Image

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from speed_photos import RAMP, make_synthetic

    folder = Path(tempfile.mkdtemp(prefix="aot-routes-"))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / "tiny.png")
    Image.fromarray(np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[:, None], 16, axis=1)).save(folder / "d.png")
    ramp = next(case for case in make_synthetic(folder) if case["name"] == RAMP)
    cases = {"16×16, automatic depth (speed.py's start-up row)": (["tiny.png", "--blur", "1"], repeats),
             "16×16, depth file": (["tiny.png", "--depth", "d.png", "--blur", "1"], repeats),
             f"{RAMP}, vertical ramp 0.2→1.0, focus 0.6, blur 75": ([ramp["input"], *ramp["options"]], big_repeats)}
    if photos and PHOTO.exists():
        cases["12 MP iPhone portrait, embedded depth"] = ([str(PHOTO)], big_repeats)
    if photos and PUG.exists():
        cases["12 MP iPhone pug.heic, embedded depth"] = ([str(PUG)], big_repeats)
    rows = []
    for name, (case, count) in cases.items():
        samples = {route: [] for route in ROUTES}
        _timed(_cli(case, "warm.jpg"), _env("jit", threads), folder)  # numba's cache and the OS file cache warm
        for _ in range(count):
            for route in ROUTES:
                samples[route].append(_timed(_cli(case, f"{route}.jpg"), _env(route, threads), folder)[:2])
        digests = {route: _digest(folder / f"{route}.jpg") for route in ROUTES}
        for route in ROUTES:
            walls, cpus = zip(*samples[route])
            rows.append({"case": name, "route": route, "wall_s": statistics.median(walls),
                         "cpu_s": statistics.median(cpus), "runs": count,
                         "same_as": "/".join(other for other in ROUTES if digests[other] == digests[route])})
        print(json.dumps(rows[-len(ROUTES):]), file=sys.stderr)
    alone = []
    if photos and PHOTO.exists():
        script = folder / "alone.py"
        script.write_text(_RENDERER_ALONE)
        for factor in (1.0, 2 ** 0.5):
            for route in ROUTES:
                row = json.loads(_timed([sys.executable, str(script), str(PHOTO), str(factor)], _env(route, threads),
                                        folder)[2].strip().splitlines()[-1])
                alone.append({"route": route, **row})
                print(json.dumps(alone[-1]), file=sys.stderr)
    return {"rows": rows, "alone": alone, "threads": threads, "load": os.getloadavg(), "cores": os.cpu_count(),
            "bytecode": "off (PYTHONDONTWRITEBYTECODE: every import compiles the sources)"
            if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"}


def markdown(result: dict) -> list[str]:
    lines = ["# Kernel routes: ahead-of-time compiled (serial, threaded) vs numba JIT", "",
             f"`python benchmarks/aot_routes.py`; threads {result['threads']} (aot-serial: 1), {result['cores']} cores, "
             f"load average at the end {result['load'][0]:.1f} (a shared machine: wall times are upper bounds; "
             f"CPU time is steadier). Routes alternate run by run. Python's bytecode cache: {result['bytecode']}. "
             "'same output as': the routes whose output file is byte-identical to this one's.", "",
             "| case | route | median wall s | median CPU s | runs | same output as |", "|---|---|---:|---:|---:|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['case']} | {row['route']} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['runs']} "
                     f"| {row['same_as']} |")
    if result["alone"]:
        lines += ["", "Renderer alone (`lensblur.render` on the 12 MP photo, blur 20, focus 0.8; then the photo and "
                  "its map enlarged √2 per side; one process per route and size):", "",
                  "| MP | route | first call s | second call s | numba imported |", "|---:|---|---:|---:|---|"]
        for row in result["alone"]:
            lines.append(f"| {row['megapixels']:.1f} | {row['route']} | {row['first_s']:.2f} | {row['second_s']:.2f} "
                         f"| {row['numba']} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-photos", action="store_true", help="only the 16×16 and ramp cases")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "aot_routes.md")
    args = parser.parse_args()
    result = measure(args.repeats, args.big_repeats, args.threads, photos=not args.no_photos)
    args.out.write_text("\n".join(markdown(result)) + "\n")
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

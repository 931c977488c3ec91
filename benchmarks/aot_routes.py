"""The two kernel routes side by side: ahead-of-time compiled (no numba import) and numba's JIT.

For each route (``LENSBLUR_KERNELS=aot`` / ``jit``; needs ``python -m lensblur.compile`` to have
built the compiled module): the start-up command of benchmarks/speed.py (``lensblur render
tiny.png -o tiny.jpg --blur 1`` on 16×16, automatic depth), the same with a depth file, and the
whole command on the 12 MP iPhone portrait; each as median wall time and median CPU time
(user + system) of fresh processes, alternating the routes so both see the same machine load.
Also the renderer alone on that photo (its embedded map, blur 20 px, focus at disparity 0.8) in
one process per route: the first call (with the JIT route's import and cache load) and a second.
Writes benchmarks/results/aot_routes.md.

    python benchmarks/aot_routes.py [--repeats 5] [--big-repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
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
PHOTO = ROOT.parent / "shared" / "samples" / "apple" / "image-with-depth.jpg"
ROUTES = ("aot", "jit")

_RENDERER_ALONE = """
import json, sys, time
import lensblur
from lensblur.io.embedded import find_embedded_depth
photo = lensblur.read_image(sys.argv[1])
disparity = find_embedded_depth(sys.argv[1]).disparity
times = []
for _ in range(2):
    start = time.perf_counter()
    lensblur.render(photo, disparity, blur=20, focus_disparity=0.8)
    times.append(time.perf_counter() - start)
print(json.dumps({"first_s": times[0], "second_s": times[1], "numba": "numba" in sys.modules}))
"""


def _env(route: str, threads: int) -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"), LENSBLUR_KERNELS=route, NUMBA_NUM_THREADS=str(threads))


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


def _cli(case: list[str]) -> list[str]:
    return [sys.executable, "-m", "lensblur", "render", *case, "-q", "--overwrite"]


def measure(repeats: int, big_repeats: int, threads: int) -> dict:
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="aot-routes-"))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / "tiny.png")
    Image.fromarray(np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[:, None], 16, axis=1)).save(folder / "d.png")
    cases = {"16×16, automatic depth (speed.py's start-up row)": (_cli(["tiny.png", "-o", "tiny.jpg", "--blur", "1"]),
                                                                  repeats),
             "16×16, depth file": (_cli(["tiny.png", "--depth", "d.png", "-o", "tiny.jpg", "--blur", "1"]), repeats)}
    if PHOTO.exists():
        cases["12 MP iPhone portrait, embedded depth"] = (_cli([str(PHOTO), "-o", "big.jpg"]), big_repeats)
    rows = []
    for name, (command, count) in cases.items():
        samples = {route: [] for route in ROUTES}
        _timed(command, _env("jit", threads), folder)  # numba's cache and the OS file cache warm
        for _ in range(count):
            for route in ROUTES:
                samples[route].append(_timed(command, _env(route, threads), folder)[:2])
        for route in ROUTES:
            walls, cpus = zip(*samples[route])
            rows.append({"case": name, "route": route, "wall_s": statistics.median(walls),
                         "cpu_s": statistics.median(cpus), "runs": count})
        print(json.dumps(rows[-2:]), file=sys.stderr)
    alone = {}
    if PHOTO.exists():
        script = folder / "alone.py"
        script.write_text(_RENDERER_ALONE)
        for route in ROUTES:
            alone[route] = json.loads(_timed([sys.executable, str(script), str(PHOTO)], _env(route, threads),
                                             folder)[2].strip().splitlines()[-1])
    return {"rows": rows, "alone": alone, "threads": threads, "load": os.getloadavg(), "cores": os.cpu_count(),
            "bytecode": "off (PYTHONDONTWRITEBYTECODE: every import compiles the sources)"
            if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"}


def markdown(result: dict) -> list[str]:
    lines = ["# Kernel routes: ahead-of-time compiled vs numba JIT", "",
             f"`python benchmarks/aot_routes.py`; NUMBA_NUM_THREADS={result['threads']}, {result['cores']} cores, "
             f"load average at the end {result['load'][0]:.1f} (a shared machine: wall times are upper bounds; "
             f"CPU time is steadier). Routes alternate run by run. Python's bytecode cache: {result['bytecode']}.", "",
             "| case | route | median wall s | median CPU s | runs |", "|---|---|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['case']} | {row['route']} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['runs']} |")
    if result["alone"]:
        lines += ["", "Renderer alone (`lensblur.render` on the 12 MP photo, one process per route):", "",
                  "| route | first call s | second call s | numba imported |", "|---|---:|---:|---|"]
        for route, row in result["alone"].items():
            lines.append(f"| {route} | {row['first_s']:.2f} | {row['second_s']:.2f} | {row['numba']} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "aot_routes.md")
    args = parser.parse_args()
    result = measure(args.repeats, args.big_repeats, args.threads)
    args.out.write_text("\n".join(markdown(result)) + "\n")
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

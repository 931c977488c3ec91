"""Start-up and the ramp through the command line, this tree against another, alternating (issue 14).

The two rows of issue 14 that time the whole ``lensblur render`` process, measured for this
tree's ``src/`` and a baseline ``src/`` (e.g. ``git archive 6a64e51 src | tar -x -C /tmp/base``,
its kernels built with ``PYTHONPATH=/tmp/base/src python -m lensblur.compile``) in one run,
old and new alternating run by run (the order swapped every round), so that a shared machine's
load falls on both alike:

- start-up: ``lensblur render tiny.png -o OUT.jpg -q --overwrite --blur 1`` on a 16×16 image
  (automatic depth), as benchmarks/speed_photos.py times it;
- the ramp: ``lensblur render scene.png -o OUT.jpg -q --overwrite --depth ramp.png
  --focus-disparity 0.6 --blur 75`` (1536×1024, 16-bit map; speed_photos.make_synthetic), and
  its time minus the 16×16 run's (the issue's definition).

Wall-clock and process CPU seconds (user + system of the child), medians over the rounds; both
outputs of each case must be the same file, byte for byte. Writes
benchmarks/results/speed_startup.md.

    python benchmarks/speed_startup.py --baseline /tmp/base/src --rounds 10
"""

from __future__ import annotations

import argparse
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


def _run(src: str, args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one ``python -m lensblur render ARGS`` process using sources ``src``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "OPENBLAS_NUM_THREADS")}
    env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lensblur", "render", *args, "-q", "--overwrite"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{src}: {done.stderr.strip()[-300:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(trees: dict[str, str], rounds: int) -> dict:
    """{tree: {case: [(wall, cpu), ...]}} for the 16×16 and ramp commands, alternating trees."""
    sys.path.insert(0, str(HERE))
    from PIL import Image

    from speed_photos import make_synthetic

    with tempfile.TemporaryDirectory(prefix="lensblur-speed-startup-") as folder:
        folder = Path(folder)
        tiny = folder / "tiny.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tiny)
        ramp = make_synthetic(folder)[0]
        cases = {"16×16": [str(tiny), "--blur", "1"], "ramp": [ramp["input"], *ramp["options"]]}
        times = {tree: {case: [] for case in cases} for tree in trees}
        names = list(trees)
        for tree in names:  # one untimed run each: bytecode and page cache
            for case, args in cases.items():
                _run(trees[tree], [args[0], "-o", str(folder / f"{tree}-{case}.jpg"), *args[1:]])
        for index in range(rounds):
            for case, args in cases.items():
                for tree in names if index % 2 == 0 else names[::-1]:
                    out = folder / f"{tree}-{case}.jpg"
                    times[tree][case].append(_run(trees[tree], [args[0], "-o", str(out), *args[1:]]))
        same = {case: len({(folder / f"{tree}-{case}.jpg").read_bytes() for tree in names}) == 1 for case in cases}
    return {"times": times, "same_output": same, "load": os.getloadavg()}


def markdown(result: dict, trees: dict[str, str], rounds: int) -> str:
    """The results table."""
    lines = ["# Start-up and the ramp through the CLI, old and new trees alternating", "",
             f"`python benchmarks/speed_startup.py --baseline {trees.get('before', '?')} --rounds {rounds}`; "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average at the end "
             f"{result['load'][0]:.1f} / {result['load'][1]:.1f} / {result['load'][2]:.1f}. Medians of {rounds} "
             "runs each; wall-clock seconds of the whole process, and its CPU seconds (user + system).", "",
             "| tree | 16×16 wall | 16×16 CPU | ramp wall | ramp CPU | ramp minus 16×16 (wall) |",
             "|---|---:|---:|---:|---:|---:|"]
    for tree, cases in result["times"].items():
        tiny_wall = statistics.median(w for w, _ in cases["16×16"])
        ramp_wall = statistics.median(w for w, _ in cases["ramp"])
        lines.append(f"| {tree} | {tiny_wall:.3f} | {statistics.median(c for _, c in cases['16×16']):.3f} | "
                     f"{ramp_wall:.3f} | {statistics.median(c for _, c in cases['ramp']):.3f} | "
                     f"{ramp_wall - tiny_wall:.3f} |")
    lines += ["", "Fastest run of each (wall s): " + "; ".join(
        f"{tree}: 16×16 {min(w for w, _ in cases['16×16']):.3f}, ramp {min(w for w, _ in cases['ramp']):.3f}"
        for tree, cases in result["times"].items()),
        "", "Outputs byte-identical between the trees: " + ", ".join(
            f"{case} {'yes' if same else '**no**'}" for case, same in result["same_output"].items()), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the other tree's src/ folder")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default=str(HERE / "results" / "speed_startup.md"))
    args = parser.parse_args(argv)
    trees = {"before": args.baseline, "after": str(ROOT / "src")}
    result = measure(trees, args.rounds)
    text = markdown(result, trees, args.rounds)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the whole ``lensblur render IN -o OUT`` process costs the machine: wall clock, user and
system CPU seconds, peak resident memory and minor page faults, this tree against another.

Each run is a fresh ``lensblur render`` process (the compiled-kernel route the command uses) and
its resource usage is read from ``wait4``. ``--baseline SRC`` (an export of an older commit's
src/, with its kernels compiled: ``PYTHONPATH=SRC python -m lensblur.compile``) runs alternately
with this tree, ``--runs`` times each, and the table gives the medians side by side; the two
trees' last outputs are compared pixel by pixel. System time is mostly the kernel zeroing fresh
pages on first touch, which is slow and variable on a virtual machine, so only same-run medians
say anything, and on a shared machine every figure is an upper bound. Writes
benchmarks/results/process_cost.md (or ``--out``).

    python benchmarks/process_cost.py --baseline /tmp/old/src [--runs 8] [--photo PATH] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PHOTO = ROOT.parent / "shared" / "samples" / "apple" / "image-with-depth.jpg"
RESULTS = HERE / "results" / "process_cost.md"
COLUMNS = ["wall s", "user s", "system s", "peak RSS MB", "minor faults"]


def run_once(src: Path, photo: Path, output: Path, options: list[str]) -> dict[str, float]:
    """One ``lensblur render`` process with ``src`` first on the path: its costs."""
    env = dict(os.environ, PYTHONPATH=str(src))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # else every import compiles bytecode again
    command = [sys.executable, "-m", "lensblur", "render", str(photo), "-o", str(output), "-q", "--overwrite",
               *options]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{src}: lensblur render failed: {error.strip()}")
    return {"wall s": wall, "user s": usage.ru_utime, "system s": usage.ru_stime,
            "peak RSS MB": usage.ru_maxrss / 1024, "minor faults": usage.ru_minflt}


def max_level_difference(first: Path, second: Path) -> tuple[int, int]:
    """Largest difference (levels) of two images and how many pixels differ at all."""
    import cv2

    a = cv2.imread(str(first), cv2.IMREAD_UNCHANGED).astype(np.int64)
    b = cv2.imread(str(second), cv2.IMREAD_UNCHANGED).astype(np.int64)
    difference = np.abs(a - b).reshape(a.shape[0], a.shape[1], -1).max(axis=2)
    return int(difference.max()), int((difference > 0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another src/ folder, run alternately with this tree")
    parser.add_argument("--runs", type=int, default=8, help="runs per tree (median reported; default 8)")
    parser.add_argument("--photo", type=Path, default=PHOTO, help="photo to render (default: the 12 MP portrait)")
    parser.add_argument("--option", action="append", default=[], help="extra option for lensblur render")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    trees = [("this tree", ROOT / "src")] + ([("baseline", args.baseline)] if args.baseline else [])
    load = os.getloadavg()[0]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as folder:
        outputs = {name: Path(folder) / f"out{index}.jpg" for index, (name, _) in enumerate(trees)}
        for run in range(args.runs):
            # alternate which tree goes first, so a trend in the machine's load hits both alike
            for name, src in (trees if run % 2 == 0 else trees[::-1]):
                results[name].append(run_once(src, args.photo, outputs[name], args.option))
                print(f"{name} run {run + 1}: " + ", ".join(f"{key} {value:.2f}"
                                                             for key, value in results[name][-1].items()),
                      flush=True)
        compared = max_level_difference(outputs["this tree"], outputs["baseline"]) if args.baseline else None
    lines = ["# Whole `lensblur render` process: wall clock, CPU, memory", "",
             f"`python benchmarks/process_cost.py --runs {args.runs}"
             + (" --baseline SRC" if args.baseline else "") + f"` on {platform.machine()}, {os.cpu_count()} CPUs, "
             f"load average {load:.1f} at the start; photo `{args.photo.name}`"
             + (f" with {' '.join(args.option)}" if args.option else "")
             + f"; median of {args.runs} fresh processes per tree, run alternately (JPEG output, as `-o OUT.jpg`). "
             "On a shared machine these are upper bounds.", "",
             "| | " + " | ".join(name for name, _ in trees) + " |", "|---|" + "---:|" * len(trees)]
    for column in COLUMNS:
        medians = [statistics.median(r[column] for r in results[name]) for name, _ in trees]
        digits = 0 if column in ("peak RSS MB", "minor faults") else 2
        lines.append(f"| {column} | " + " | ".join(f"{m:.{digits}f}" for m in medians) + " |")
    walls = {name: [r["wall s"] for r in results[name]] for name, _ in trees}
    spread = [f"{name}: wall {min(walls[name]):.2f}–{max(walls[name]):.2f} s" for name, _ in trees]
    lines += ["", "Range of wall clock: " + "; ".join(spread) + "."]
    if compared is not None:
        lines += ["", f"Output against the baseline's: max {compared[0]} levels, {compared[1]} pixels differ."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

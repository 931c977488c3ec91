"""Cost of what issue 13 bounds: decompression bombs refused from their headers, and render cost
against the largest blur radius up to (and past) the cap of 10% of the image diagonal.

Each case runs ``lensblur`` in a fresh process and reports its wall time and peak resident memory
(ru_maxrss of the child). Writes benchmarks/results/hardening.md. Timings on a shared machine are
upper bounds.

    python benchmarks/hardening.py            # about two minutes on 2 cores
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "adversarial"))

from conftest import bomb_png  # noqa: E402
from test_embedded_depth import gdepth_file  # noqa: E402


# The child reports its own memory high-water mark (VmHWM): ru_maxrss would include the pages of
# the parent it was forked from.
_CHILD = ("import sys\nfrom lensblur.cli import main\ncode = main(sys.argv[1:])\n"
          "hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
          "print(f'peak-kb {hwm.split()[1]}', file=sys.stderr)\nsys.exit(code)")


def run(*args) -> tuple[float, float, int, str]:
    """(seconds, peak MB, exit code, its one stderr line) of ``lensblur ARGS`` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="2", NUMBA_NUM_THREADS="2")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True,
                            env=env)
    seconds = time.perf_counter() - start
    lines = result.stderr.strip().splitlines()
    peak = int(lines[-1].split()[-1]) / 1024
    return seconds, peak, result.returncode, (lines[-2] if len(lines) > 1 else "")


def main() -> None:
    lines = ["# Hardening figures (issue 13)", "",
             "`python benchmarks/hardening.py`; wall time and peak memory of one `lensblur` process each "
             "(2 numba/OpenMP threads, shared 2-core machine: upper bounds).", ""]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        bomb = bomb_png(12000, 9000)
        (folder / "bomb.png").write_bytes(bomb)
        jpeg = folder / "lens_blur_bomb.jpg"
        jpeg.write_bytes(gdepth_file(depth_data=base64.b64encode(bomb).decode(), ext_kwargs={"chunk": 60000}))
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (1024, 1536, 3), dtype=np.uint8)).save(folder / "photo.png")
        ramp = np.tile(np.linspace(0, 65535, 1536), (1024, 1)).astype(np.uint16)
        Image.fromarray(ramp).save(folder / "depth.png")
        Image.fromarray(rng.integers(0, 255, (9, 12, 3), dtype=np.uint8)).save(folder / "tiny.png")

        lines += ["## Decompression bombs (12000×9000 8-bit PNG, "
                  f"{len(bomb) / 1024:.0f} KB on disk, 108 MB decoded)", "",
                  "| case | exit | seconds | peak MB | message |", "|---|---:|---:|---:|---|"]
        for label, args in [("`info` on a Lens Blur JPEG with it as GDepth", ["info", jpeg]),
                            ("`render --depth bomb.png` (12×9 photo)",
                             ["render", "-q", folder / "tiny.png", "--depth", folder / "bomb.png", "-o",
                              folder / "out.png"])]:
            seconds, peak, code, message = run(*args)
            lines.append(f"| {label} | {code} | {seconds:.1f} | {peak:.0f} | {message.replace(str(folder) + '/', '')} |")

        diagonal = float(np.hypot(1024, 1536))
        lines += ["", f"## Render cost against the largest blur radius (1536×1024, diagonal {diagonal:.0f} px, "
                  "focus on the far end of a linear ramp)", "",
                  "| largest radius px | % of diagonal | exit | seconds | peak MB |", "|---:|---:|---:|---:|---:|"]
        for fraction in (0.01, 0.025, 0.05, 0.1, 0.2):
            radius = fraction * diagonal
            seconds, peak, code, _ = run("render", "-q", folder / "photo.png", "--depth", folder / "depth.png",
                                         "--focus-disparity", "0", "--blur", f"{radius:.1f}", "-o",
                                         folder / f"out{fraction}.png")
            lines.append(f"| {radius:.0f} | {fraction:.1%} | {code} | {seconds:.1f} | {peak:.0f} |")
    lines += ["", "Past the cap (10% of the diagonal) render exits 1 with one line before any work. Seconds "
              "include starting the process, imports and reading the files (what the refused row costs) and "
              "loading numba's cached kernels."]
    out = ROOT / "benchmarks" / "results" / "hardening.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()

"""CPU time of each kernel on one render, ahead-of-time compiled export against numba's JIT kernel.

Renders the 12 MP iPhone portrait (its embedded map, blur 20 px, focus at disparity 0.8) and
encodes it to 8-bit sRGB, with
every kernel call made twice on the same arguments: once through the compiled export (whole
range, one thread) and once through numba's JIT kernel (on a copy, with ``NUMBA_NUM_THREADS=1``),
alternating call by call which goes first (the second finds the data in the caches); the
process CPU time of each call is summed per kernel. Both routes run on copies of the arguments,
so neither pays for the first touch of the render's fresh arrays (the kernel zeroing their
pages: that cost belongs to the allocation, not to the kernel). A first render warms numba's kernels and is
not counted. CPU time, not wall time, so it holds on a loaded
machine; it says what the compiled route costs against the JIT route before either is split over
threads. Needs ``python -m lensblur.compile``. Writes benchmarks/results/kernel_cpu.md.

    NUMBA_NUM_THREADS=1 python benchmarks/kernel_cpu.py
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "samples" / "apple" / "image-with-depth.jpg"


def wrap_kernels(exports: dict, make_wrapper) -> None:
    """Replace every compiled kernel named in ``exports`` by ``make_wrapper(qualified name,
    kernel)`` wherever a lensblur module holds it (the modules that bind kernels by name must be
    imported first)."""
    from lensblur import aot

    for qualified in exports:
        module_name, attribute = qualified.split(":")
        kernel = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(kernel, aot.Kernel):
            continue
        wrapper = make_wrapper(qualified, kernel)
        for name, module in list(sys.modules.items()):
            if name.startswith("lensblur") and module is not None:
                for key, held in list(vars(module).items()):
                    if held is kernel:
                        setattr(module, key, wrapper)


def measure(photo_path: Path) -> dict:
    """{"aot": {kernel: CPU s}, "jit": {...}} over one render's kernel calls."""
    os.environ["LENSBLUR_KERNELS"] = "aot"
    from lensblur import aot

    found = aot.find(aot.source_key())
    if found is None:
        raise SystemExit("no fresh compiled module: run `python -m lensblur.compile` first")
    exports = found[1]
    import lensblur
    from lensblur.io.embedded import find_embedded_depth

    photo = lensblur.read_image(photo_path).pixels
    disparity = find_embedded_depth(photo_path).disparity
    totals: dict[str, dict[str, float]] = {"aot": {}, "jit": {}}
    calls = [0]
    import lensblur.renderers.scatter  # noqa: F401 - binds the kernels by name before they are wrapped

    def timed(route, name, function, args):
        start = time.process_time()
        result = function(*args)
        totals[route][name] = totals[route].get(name, 0.0) + time.process_time() - start
        return result

    def wrap(qualified, jit):
        name = qualified.split(":")[1]

        def call(*args):
            compiled = next(fn for fn, kinds in exports[qualified]
                            if len(kinds) == len(args) and all(aot.accepts(k, a) for k, a in zip(kinds, args)))
            # Both routes work on copies (memory already touched): a fresh array's first touch
            # costs the kernel zeroing its pages, which would be charged to whichever route
            # wrote the render's own arrays first. The compiled route's results are copied back.
            mine = {id(a): np.copy(a) for a in args if isinstance(a, np.ndarray)}
            theirs = {id(a): np.copy(a) for a in args if isinstance(a, np.ndarray)}
            runs = [("aot", compiled, [mine.get(id(a), a) for a in args]),
                    ("jit", jit, [theirs.get(id(a), a) for a in args])]
            calls[0] += 1
            results = {}
            for route, function, arguments in runs if calls[0] % 2 else runs[::-1]:  # second runs on warm caches
                results[route] = timed(route, name, function, arguments)
            for a in args:
                if isinstance(a, np.ndarray) and a.flags.writeable:
                    np.copyto(a, mine[id(a)])
            return results["aot"]

        return call

    wrap_kernels(exports, lambda qualified, kernel: wrap(qualified, kernel.jit()))
    from lensblur.io.icc import encode_levels

    encode_levels(lensblur.render(photo, disparity, blur=20, focus_disparity=0.8), None, 255)  # JIT kernels made
    for route in totals.values():
        route.clear()
    out = lensblur.render(photo, disparity, blur=20, focus_disparity=0.8)
    encode_levels(out, None, 255)  # the 8-bit tone encode of the written file
    return totals


def markdown(totals: dict) -> list[str]:
    names = sorted(totals["aot"], key=lambda name: -totals["aot"][name])
    lines = ["# Kernel CPU time per render: compiled export vs numba JIT, one thread", "",
             "`NUMBA_NUM_THREADS=1 python benchmarks/kernel_cpu.py`: the 12 MP iPhone portrait, blur 20, focus 0.8; "
             "every kernel call made through both routes on the same arguments, process CPU seconds summed per "
             f"kernel (threads: {os.environ.get('NUMBA_NUM_THREADS', 'default')}; load average "
             f"{os.getloadavg()[0]:.1f}).", "",
             "| kernel | compiled CPU s | JIT CPU s |", "|---|---:|---:|"]
    for name in names:
        lines.append(f"| {name} | {totals['aot'][name]:.3f} | {totals['jit'].get(name, 0.0):.3f} |")
    lines.append(f"| **all** | **{sum(totals['aot'].values()):.2f}** | **{sum(totals['jit'].values()):.2f}** |")
    return lines


def main() -> int:
    if not PHOTO.exists():
        print(f"{PHOTO} not found", file=sys.stderr)
        return 1
    lines = markdown(measure(PHOTO))
    (ROOT / "benchmarks" / "results" / "kernel_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU time of each compiled kernel on one 12 MP render: this tree's export against an older tree's.

``benchmarks/kernel_cpu.py`` compares the two kernel routes of one tree. This compares one route
(the ahead-of-time compiled module, what ``lensblur render`` runs) across two trees, in one
process, so that the machine's load hits both alike: the render runs with this tree's kernels,
and every kernel call is also made through the baseline tree's compiled export of the same
kernel (found in its manifest by name and argument types) on the same arguments. Each side runs
on its own fresh copies (memory already touched, so neither pays the kernel's page zeroing of a
new array), ``--repeats`` times, alternating which goes first; the smallest process CPU time of
each call is summed per kernel. The 8-bit tone encode of the result is timed too; a kernel that
only one tree has (``quantize_steps`` here) is paired with what the other tree runs in its place
(``quantize_channels`` on the same values). One thread (run the kernels' whole range in one call).

Needs both trees' compiled modules (``python -m lensblur.compile`` with each on ``PYTHONPATH``).
Writes benchmarks/results/kernel_pairs.md.

    PYTHONPATH=src python benchmarks/kernel_pairs.py --baseline /tmp/base/src [--repeats 3]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "samples" / "apple" / "image-with-depth.jpg"
RESULTS = ROOT / "benchmarks" / "results" / "kernel_pairs.md"
STAND_INS = {"lensblur.io.tone_lookup:quantize_steps": "lensblur.io.tone_lookup:quantize_channels"}


def load_compiled(src: Path):
    """(module, manifest kernels) of the compiled module built for the tree at ``src``."""
    found = sorted(glob.glob(str(Path(src) / "lensblur" / "__pycache__" / "lensblur_aot_*.so")))
    if not found:
        raise SystemExit(f"no compiled module under {src}: run `python -m lensblur.compile` with it first")
    path = Path(found[-1])
    name = path.name.split(".")[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manifest = json.loads(path.with_name(name + ".json").read_text())
    return module, manifest["kernels"]


def measure(photo_path: Path, baseline: Path, repeats: int) -> dict:
    """{"this": {kernel: CPU s}, "baseline": {...}} over one render's kernel calls."""
    os.environ["LENSBLUR_KERNELS"] = "aot"
    from lensblur import aot
    from lensblur.threads import run_chunks  # noqa: F401 - imported before timing

    found = aot.find(aot.source_key())
    if found is None:
        raise SystemExit("no fresh compiled module for this tree: run `python -m lensblur.compile` first")
    exports = found[1]
    old_module, old_manifest = load_compiled(baseline)
    import lensblur
    import lensblur.renderers.scatter  # noqa: F401 - binds the kernels by name before they are wrapped
    from lensblur.io import icc
    from lensblur.io.embedded import find_embedded_depth

    photo = lensblur.read_image(photo_path).pixels
    disparity = find_embedded_depth(photo_path).disparity
    totals: dict[str, dict[str, float]] = {"this": {}, "baseline": {}}
    counter = [0]

    def old_export(qualified, args):
        for export, kinds in old_manifest.get(qualified, []):
            if len(kinds) == len(args) and all(aot.accepts(aot._parse(k) if isinstance(k, str) else k, a)
                                               for k, a in zip(kinds, args)):
                return getattr(old_module, export)
        return None

    def cpu(function, args):
        copies = {id(a): np.copy(a) for a in args if isinstance(a, np.ndarray)}
        arguments = [copies.get(id(a), a) for a in args]
        start = time.process_time()
        function(*arguments)
        return time.process_time() - start

    def wrap(qualified):
        name = qualified.split(":")[1]

        def call(*args):
            compiled = next(fn for fn, kinds in exports[qualified]
                            if len(kinds) == len(args) and all(aot.accepts(k, a) for k, a in zip(kinds, args)))
            if qualified in STAND_INS:  # the baseline's kernel in its place, on the same values
                linear, _, _, _, out, lo, hi = args
                tables = np.stack([icc._encode_table(curve) for curve in icc.tone_curves(None)])
                old, old_args = old_export(STAND_INS[qualified], (linear, tables, 255, out, lo, hi)), \
                    (linear, tables, 255, out, lo, hi)
            else:
                old, old_args = old_export(qualified, args), args
            counter[0] += 1
            best = {"this": np.inf, "baseline": np.inf}
            for repeat in range(repeats):
                sides = [("this", compiled, args), ("baseline", old, old_args)]
                for side, function, arguments in sides if (counter[0] + repeat) % 2 else sides[::-1]:
                    if function is not None:
                        best[side] = min(best[side], cpu(function, arguments))
            for side, value in best.items():
                if np.isfinite(value):
                    totals[side][name] = totals[side].get(name, 0.0) + value
            return compiled(*args)  # the render goes on with this tree's result

        return call

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kernel_cpu import wrap_kernels

    wrap_kernels(exports, lambda qualified, kernel: wrap(qualified))
    out = lensblur.render(photo, disparity, blur=20, focus_disparity=0.8)
    icc.encode_levels(out, None, 255)  # the 8-bit tone encode of the written file
    return totals


def markdown(totals: dict, repeats: int, baseline: str) -> list[str]:
    names = sorted(set(totals["this"]) | set(totals["baseline"]), key=lambda n: -totals["this"].get(n, 0.0))
    lines = ["# Compiled kernels' CPU time per 12 MP render: this tree against a baseline tree, one thread", "",
             f"`python benchmarks/kernel_pairs.py --baseline {baseline} --repeats {repeats}`: the 12 MP iPhone "
             "portrait (blur 20, focus 0.8) and its 8-bit encode; every call of this tree's compiled kernels "
             "also made through the baseline's compiled export, both on fresh copies of the same arguments, "
             f"alternating; the smallest of {repeats} process CPU times per call, summed per kernel (load average "
             f"{os.getloadavg()[0]:.1f}). `quantize_steps` is paired with the baseline's `quantize_channels` on "
             "the same values.", "",
             "| kernel | this tree CPU s | baseline CPU s |", "|---|---:|---:|"]
    for name in names:
        cells = [f"{totals[side][name]:.3f}" if name in totals[side] else "—" for side in ("this", "baseline")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"| **all** | **{sum(totals['this'].values()):.2f}** | **{sum(totals['baseline'].values()):.2f}** |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, type=Path, help="the older tree's src/ (compiled)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per kernel call and side (default 3)")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    args = parser.parse_args()
    if not args.photo.exists():
        print(f"{args.photo} not found", file=sys.stderr)
        return 1
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    lines = markdown(measure(args.photo, args.baseline, args.repeats), args.repeats, args.baseline)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

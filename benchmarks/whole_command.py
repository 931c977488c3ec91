"""Where the whole ``lensblur render IN -o OUT.jpg`` process spends its CPU time, stage by stage.

Each run is a fresh child process running the real command (``lensblur.cli.main``) with the
stage functions wrapped to add up process CPU seconds (user + system, all threads): imports,
decode, depth (embedded map read and fitted to the photo, of which the guided fit), the lens
(signed circle of confusion), highlight recovery, the scatter, the tone encode and the JPEG
encode, and the whole process (its rusage). ``--baseline SRC`` times another source tree (an
export of an older commit's src/) the same way, alternating runs, and compares the two outputs
pixel by pixel, so a change is measured, and checked, against what it changes in one run.

The machine this runs on may be shared, so CPU seconds are upper bounds; system time (page
faults on fresh full-size arrays) is counted too. Stages are timed with the whole process's CPU
clock, except the clipped-highlight analysis, which runs in a thread of its own beside the depth
stage and is timed on that thread (so the depth stage's figure also holds the part of it that
overlapped). The last row is wall-clock time. Writes benchmarks/results/whole_command.md.

``--inline`` also times this tree with the clipped-highlight analysis in the main thread, which
shows what running it beside the depth stage saves in wall-clock time.

``--ramp`` adds the 1536×1024 disparity ramp of benchmarks/speed_photos.py, rendered with its
16-bit map and settings (focus 0.6, blur 75).

The child's own resource usage gives its system time (page faults on fresh arrays), peak
resident memory and minor page faults; each row is the median over the runs.

    python benchmarks/whole_command.py [--baseline /tmp/old/src] [--inline] [--runs 3] [--photo PATH ...] [--ramp]
        [--results benchmarks/results/NAME.md]
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT.parent / "shared" / "samples" / "apple"
PHOTOS = [SAMPLES / "image-with-depth.jpg", SAMPLES / "pug.heic"]
RESULTS = HERE / "results" / "whole_command.md"

# stage name -> (module, attribute): the function whose calls are timed, at the place it is
# looked up from (a name imported into another module is wrapped there)
STAGES = {
    "decode": ("lensblur.commands.render", "read_image"),
    "depth (read + fit)": ("lensblur.commands.render", "load_depth"),
    "  of which guide": ("lensblur.depth.refine", "photo_guide"),
    "  of which guided fit": ("lensblur.depth.refine", "upsample_where_explained"),
    "lens (signed CoC)": ("lensblur.renderers.scatter", "signed_coc"),
    "highlight analysis (own thread)": ("lensblur.highlights", "analyse_clipped"),
    "highlight recovery": ("lensblur.renderers.scatter", "recover_highlights"),
    "scatter (kernels' stage)": ("lensblur.renderers.scatter", "scatter_layers"),
    "write": ("lensblur.commands.render", "write_image"),
    "  of which tone encode": ("lensblur.io.icc", "encode_levels"),
    "  of which JPEG encode": ("lensblur.io.images", "_save"),
}


def _cpu(who=resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# stages that run in a thread of their own beside others: timed on that thread alone
OWN_THREAD = {"highlight analysis (own thread)"}


def child(photo: str, output: str, options: list[str] | None = None) -> None:
    """In a fresh process: run the command with its stages timed; print one JSON line."""
    start = _cpu()
    import importlib

    import lensblur.cli
    import lensblur.commands.render  # noqa: F401 - imported by the command anyway: counted as import
    imports = _cpu() - start
    times = {}
    for name, (module_name, attribute) in STAGES.items():
        module = importlib.import_module(module_name)
        function = getattr(module, attribute, None)
        if function is None:
            continue

        def timed(*args, _function=function, _name=name, **kwargs):
            who = resource.RUSAGE_THREAD if _name in OWN_THREAD else resource.RUSAGE_SELF
            begin = _cpu(who)
            try:
                return _function(*args, **kwargs)
            finally:
                times[_name] = times.get(_name, 0.0) + _cpu(who) - begin
        setattr(module, attribute, timed)
    if os.environ.get("WHOLE_COMMAND_INLINE"):  # --inline: the highlight analysis in the main thread
        import lensblur.commands.render as render_command

        class Inline(render_command._ClippedInBackground):
            def __init__(self, pixels, settings):
                super().__init__(pixels, None)  # no thread: the renderer analyses the photo itself
        render_command._ClippedInBackground = Inline
    lensblur.cli.main(["render", photo, "-o", output, "-q", "--overwrite", *(options or [])])
    times["imports"] = imports
    times["whole process"] = _cpu()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    times["of which system time"] = usage.ru_stime
    times["peak RSS, MB"] = usage.ru_maxrss / 1024
    times["minor page faults, thousands"] = usage.ru_minflt / 1000
    print(json.dumps(times))


def run_child(tree: str, photo: Path, output: Path, inline: bool = False, options: list[str] | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, WHOLE_COMMAND_INLINE="1" if inline else "",
               WHOLE_COMMAND_OPTIONS=json.dumps(options or []))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(photo), str(output)], env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{tree} on {photo.name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "whole process, wall clock": wall}


def compare(first: Path, second: Path) -> str:
    """Largest and mean absolute difference in 8-bit levels between two outputs, and how many differ."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(first).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(second).convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        return f"sizes differ: {a.shape} vs {b.shape}"
    diff = np.abs(a - b)
    same = "the files are byte-identical" if first.read_bytes() == second.read_bytes() else "the files differ"
    return (f"{same}; decoded: max {int(diff.max())} levels, mean {diff.mean():.2g}, "
            f"{np.count_nonzero(diff.max(axis=2))} of {diff.shape[0] * diff.shape[1]} pixels differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="another src/ folder to time the same way (e.g. an older commit's)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tree and photo (median reported)")
    parser.add_argument("--photo", action="append", type=Path, help="photos to render (default: the phone samples)")
    parser.add_argument("--inline", action="store_true",
                        help="also time this tree with the highlight analysis in the main thread (no overlap)")
    parser.add_argument("--ramp", action="store_true",
                        help="also the 1536×1024 ramp of benchmarks/speed_photos.py (its 16-bit map and settings)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where to write the table (default {RESULTS})")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, json.loads(os.environ.get("WHOLE_COMMAND_OPTIONS") or "[]"))
        return
    cases = [(p.name, p, []) for p in (args.photo or ([] if args.ramp else PHOTOS)) if p.exists()]
    synthetic = tempfile.TemporaryDirectory() if args.ramp else None
    if synthetic is not None:
        sys.path.insert(0, str(HERE))
        from speed_photos import RAMP, make_synthetic

        ramp = next(case for case in make_synthetic(Path(synthetic.name)) if case["name"] == RAMP)
        cases.append((RAMP, Path(ramp["input"]), ramp["options"]))
    if not cases:
        raise SystemExit("no photos: ../shared/samples is missing; give --photo")
    trees = [("this tree", str(ROOT / "src"))] + ([("analysis inline", str(ROOT / "src"))] if args.inline else []) \
        + ([("baseline", args.baseline)] if args.baseline else [])
    lines = ["# Whole `lensblur render IN -o OUT.jpg` process, CPU seconds per stage", "",
             f"`python benchmarks/whole_command.py --runs {args.runs}" + (" --inline" if args.inline else "")
             + (" --ramp" if args.ramp else "") + (" --baseline SRC" if args.baseline else "") + f"` on {platform.machine()}, {os.cpu_count()} "
             f"CPUs, load average {os.getloadavg()[0]:.1f} at the start; process CPU seconds (user + system, "
             f"all threads summed), median of {args.runs} fresh processes per tree, run alternately. "
             "On a shared machine these are upper bounds.", ""]
    with tempfile.TemporaryDirectory() as scratch:
        for label, photo, options in cases:
            results = {name: [] for name, _ in trees}
            for run in range(args.runs):
                for name, tree in trees:
                    output = Path(scratch) / f"{name.replace(' ', '_')}_{photo.stem}.jpg"
                    results[name].append(run_child(tree, photo, output, inline=name == "analysis inline",
                                                   options=options))
                    print(f"{label} {name} run {run + 1}: {results[name][-1]['whole process']:.2f} s",
                          file=sys.stderr)
            stages = ["imports"] + list(STAGES) + ["whole process", "of which system time", "whole process, wall clock",
                                                   "peak RSS, MB", "minor page faults, thousands"]
            header = "| stage | " + " | ".join(name for name, _ in trees) + " |"
            lines += [f"## {label}", "", header, "|---|" + "---:|" * len(trees)]
            for stage in stages:
                cells = []
                for name, _ in trees:
                    values = [r.get(stage) for r in results[name] if r.get(stage) is not None]
                    cells.append(f"{statistics.median(values):.3f}" if values else "—")
                lines.append(f"| {stage} | " + " | ".join(cells) + " |")
            if args.baseline:
                lines += ["", "Output against the baseline's: " + compare(
                    Path(scratch) / f"this_tree_{photo.stem}.jpg", Path(scratch) / f"baseline_{photo.stem}.jpg")]
            lines.append("")
    args.results.parent.mkdir(exist_ok=True)
    args.results.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

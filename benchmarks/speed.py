"""Speed benchmark: render time and peak memory of a renderer, and GIMP's lens blur for scale.

Cases: 1024×1536 with largest blur radius 30 px, and 4000×3000 with radius 80 px (inputs are
synthetic scenes' all-in-focus images and disparity). Each case runs in a fresh child process:
a first call on a 64×64 crop (reported as start-up: JIT compile or cache load), one full-size
warm-up call, then the median of 3 calls. Peak memory is the child's peak-RSS growth (VmHWM after
resetting it) during the full-size calls, relative to the float32 H×W×3 image size. gegl's time is its run on the 1024×1536 input minus
its run on a 16×16 image (process start-up, reported too). Writes benchmarks/results/speed.md.

    python benchmarks/speed.py                 # scatter
    python benchmarks/speed.py --sweep         # plus cost against blur radius and pixel count
    python benchmarks/speed.py naive --skip-large --skip-photos

Then continuous depth and the whole command (benchmarks/speed_photos.py: a ramp, a tilted plane
with a subject, the phone photos in ../shared/samples, each against gegl in the same run; start-up,
a cold numba cache, the web app's preview), unless --skip-photos.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CASES = [(1024, 1536, 30.0), (3000, 4000, 80.0)]
SWEEP_RADII = [8.0, 16.0, 30.0, 60.0, 120.0]        # at 1024×1536
SWEEP_SIZES = [(512, 768), (1024, 1536), (2048, 3072)]  # at radius 30


def _inputs(height: int, width: int, radius: float):
    from lensblur.lens import Lens
    from lensblur.synth.dataset import srgb8_to_linear
    from lensblur.synth.scene import make_scene
    from lensblur.synth.thinlens import camera_image, visible_disparity

    scene = make_scene(np.random.default_rng([2026, height, width]), height, width, max_coc=radius)
    image = srgb8_to_linear(camera_image(scene))
    disparity = visible_disparity(scene)
    lens = Lens(blur=scene.blur, focus_disparity=scene.focus_disparity, aperture=scene.aperture)
    return image, disparity, lens


def save_inputs(folder: Path, height: int, width: int, radius: float) -> Path:
    """Write a case's image, disparity and lens to ``folder`` (so the child starts light)."""
    image, disparity, lens = _inputs(height, width, radius)
    path = folder / f"case-{width}x{height}"
    path.mkdir()
    # Plain .npy files load straight into their arrays (an .npz would pass through a second buffer
    # and inflate the baseline max RSS).
    np.save(path / "image.npy", image)
    np.save(path / "disparity.npy", disparity)
    (path / "lens.json").write_text(json.dumps({"blur": lens.blur, "focus": lens.focus_disparity,
                                                "blades": lens.aperture.blades, "rotation": lens.aperture.rotation,
                                                "curvature": lens.aperture.curvature}))
    return path


def child(renderer: str, path: str) -> dict:
    """Measure one case in this (fresh) process; returns a dict (printed as JSON by --child).
    The renderer's throughput: numba's JIT kernels, as in a process that renders many times."""
    from lensblur.aot import prefer_jit

    prefer_jit()
    from lensblur.aperture import Aperture
    from lensblur.lens import Lens
    from lensblur.renderers import get_renderer

    image = np.load(Path(path) / "image.npy")
    disparity = np.load(Path(path) / "disparity.npy")
    data = json.loads((Path(path) / "lens.json").read_text())
    lens = Lens(blur=float(data["blur"]), focus_disparity=float(data["focus"]),
                aperture=Aperture(int(data["blades"]), float(data["rotation"]), float(data["curvature"])))
    render = get_renderer(renderer)
    start = time.perf_counter()
    render(image[:64, :64], disparity[:64, :64], lens)  # JIT compile or cache load
    startup = time.perf_counter() - start
    before = _reset_peak_rss()
    render(image, disparity, lens)  # warm-up at full size
    times = []
    for _ in range(3):
        start = time.perf_counter()
        render(image, disparity, lens)
        times.append(time.perf_counter() - start)
    peak = _peak_rss()
    height, width = disparity.shape
    return {"renderer": renderer, "height": height, "width": width, "radius": float(np.abs(
        lens.blur * (disparity - lens.focus_disparity)).max()), "startup_s": startup,
        "median_s": statistics.median(times), "times_s": times, "peak_rss_bytes": peak,
        "rss_before_bytes": before, "peak_over_image": (peak - before) / image.nbytes}


def sweep(renderer: str) -> list[dict]:
    """Median render time (of 3, warm) over blur radii at 1024×1536 and over sizes at radius 30,
    to show how the cost scales; run in this process (numba's JIT kernels, as :func:`child`)."""
    from lensblur.aot import prefer_jit
    from lensblur.renderers import get_renderer

    prefer_jit()

    render = get_renderer(renderer)
    rows = []
    cases = [(1024, 1536, r) for r in SWEEP_RADII] + [(h, w, 30.0) for h, w in SWEEP_SIZES if (h, w) != (1024, 1536)]
    for height, width, radius in cases:
        image, disparity, lens = _inputs(height, width, radius)
        render(image[:64, :64], disparity[:64, :64], lens)
        render(image, disparity, lens)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            render(image, disparity, lens)
            times.append(time.perf_counter() - start)
        rows.append({"height": height, "width": width, "radius": radius, "median_s": statistics.median(times),
                     "ns_per_pixel": statistics.median(times) / (height * width) * 1e9})
    return rows


def _reset_peak_rss() -> int:
    """Reset the peak-RSS mark (Linux /proc/self/clear_refs) and return the current RSS in bytes.

    ru_maxrss is no good here: Linux carries it over from the parent across fork and exec.
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return _proc_status("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss() -> int:
    try:
        return _proc_status("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{key} not in /proc/self/status")


def gegl_case(height: int, width: int, radius: float) -> dict:
    """gegl's lens blur on the same input: its time minus its 16×16 start-up time (median of 3)."""
    from lensblur.color import linear_to_srgb
    from lensblur.lens import signed_coc
    from lensblur.renderers.gegl import run_gegl_lens_blur

    image, disparity, lens = _inputs(height, width, radius)
    mask = np.abs(signed_coc(disparity, lens.blur, lens.focus_disparity))
    mask16 = np.round(mask / mask.max() * 65535).astype(np.uint16)
    encoded = np.round(linear_to_srgb(image) * 65535).astype(np.uint16)

    def timed(img, msk):
        start = time.perf_counter()
        run_gegl_lens_blur(img, msk, radius)
        return time.perf_counter() - start

    startup = statistics.median(timed(encoded[:16, :16], mask16[:16, :16]) for _ in range(3))
    total = statistics.median(timed(encoded, mask16) for _ in range(3))
    return {"renderer": "gegl (command)", "height": height, "width": width, "radius": radius,
            "startup_s": startup, "total_s": total, "median_s": total - startup}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("renderer", nargs="?", default="scatter", help="renderer name (default scatter)")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 4000×3000 case")
    parser.add_argument("--no-gegl", action="store_true", help="leave out the gegl comparison")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "INPUTS"), help=argparse.SUPPRESS)
    parser.add_argument("--sweep", action="store_true",
                        help="also time radii 8-120 px at 1024×1536 and sizes 0.4-6.3 MP at radius 30")
    parser.add_argument("--skip-photos", action="store_true",
                        help="leave out continuous depth, the whole command, start-up and the web preview")
    parser.add_argument("--out", default=str(HERE / "results"), help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    rows, notes = [], []
    scratch = Path(tempfile.mkdtemp(prefix="lensblur-speed-"))
    for height, width, radius in CASES[:1] if args.skip_large else CASES:
        inputs = save_inputs(scratch, height, width, radius)
        done = subprocess.run([sys.executable, __file__, "--child", args.renderer, str(inputs)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            notes.append(f"{args.renderer} {width}x{height} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    shutil.rmtree(scratch, ignore_errors=True)
    if not args.no_gegl:
        try:
            rows.append(gegl_case(*CASES[0]))
        except Exception as error:  # noqa: BLE001 - gegl is optional; say why it is missing
            notes.append(f"gegl skipped: {error}")

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = ["# Speed", "", f"{platform.processor() or platform.machine()}, {_cpu_count()} cores, "
             f"Python {platform.python_version()} (`python benchmarks/speed.py {args.renderer}`); load average "
             f"when the layered cases were done {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min: "
             "above about 1 the machine was shared and every time here is an upper bound).", "",
             "| renderer | size (W×H) | max radius px | median s | start-up s | peak memory / image |",
             "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        startup = row["startup_s"]
        memory = f"{row['peak_over_image']:.1f}×" if "peak_over_image" in row else "n/a"
        lines.append(f"| {row['renderer']} | {row['width']}×{row['height']} | {row['radius']:g} | "
                     f"{row['median_s']:.3f} | {startup:.3f} | {memory} |")
    lines += ["", "median: of 3 calls after a full-size warm-up call, in a fresh process per case. start-up:",
              "the first call there, on a 64×64 crop (JIT compile or cache load); for gegl, a 16×16 run,",
              "subtracted from its median. Peak memory: growth of the process's peak RSS (VmHWM, reset after",
              "the start-up call) during the full-size calls, divided by the float32 H×W×3 image size."]
    lines += [f"- note: {note}" for note in notes]
    sweep_rows = sweep(args.renderer) if args.sweep else []
    if sweep_rows:
        lines += ["", "## Scaling (warm, median of 3)", "", "| size (W×H) | max radius px | median s | ns / pixel |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {r['width']}×{r['height']} | {r['radius']:g} | {r['median_s']:.3f} | {r['ns_per_pixel']:.0f} |"
                  for r in sweep_rows]
    continuous = {}
    if not args.skip_photos:
        import speed_photos

        continuous = speed_photos.run_cases(gegl=not args.no_gegl)
        lines += speed_photos.markdown(continuous)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text("\n".join(lines) + "\n")
    (out / "speed.json").write_text(json.dumps({"rows": rows, "sweep": sweep_rows, "notes": notes,
                                                "continuous": continuous}, indent=2))
    print("\n".join(lines))
    return 0


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())

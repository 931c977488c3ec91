"""Continuous depth and the whole command: the cases of issue 14, used by benchmarks/speed.py.

Each case is a photo and a depth (a ramp, a tilted plane with a subject, the phone maps in
../shared/samples) rendered three ways, all in the same run:

- the renderer alone (``render_with``, in a fresh process, median of 2 calls after the first) and
  the other stages of ``lensblur render`` in that process: decode, depth (read, upsample), lens,
  first render, encode + save;
- GIMP's ``gegl:lens-blur`` on the same encoded image and the same radius map (|CoC| of the
  lensblur lens, normalised, with the largest radius), minus gegl's own 16×16 run (median of
  GEGL_REPEATS = 3 runs; for the ramp, one run in each of the rounds below);
- the whole command, ``lensblur render IN -o OUT.jpg [options]``, wall time of the process
  (median of CLI_REPEATS = 5 runs: this machine's first touch of fresh memory is slow at some
  moments and fast at others, and a median of 2 is the mean of one of each); for the ramp also
  minus the command's own 16×16 run (the issue's definition): the ramp command, its 16×16 run
  and gegl alternate in CLI_REPEATS rounds, so the ratio is not skewed by the machine's drift
  between the measurements.

Plus: start-up (the command on a 16×16 image, median of 5; gegl's 16×16 run; the floor of any
numba program: numpy + numba imported and one cached kernel loaded), the first render
with a cold numba cache (NUMBA_CACHE_DIR = an empty folder) with and without
``python -m lensblur.compile`` first, and the web app's 1024 px preview of the iPhone photo
(benchmarks/web_preview.py).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT.parent / "shared" / "samples"
RAMP = "ramp 1536×1024"
CLI_REPEATS = 5  # runs of each whole command; the median is reported
GEGL_REPEATS = 3  # runs of gegl on each full-size case; the median is reported
PREVIEW_PHOTO = SAMPLES / "apple" / "image-with-depth.jpg"  # the web row: the 12 MP photo with its own depth


def _env(**extra) -> dict:
    # LENSBLUR_BENCH_SRC: measure other sources (e.g. an older commit's src/) with this script
    return dict(os.environ, PYTHONPATH=os.environ.get("LENSBLUR_BENCH_SRC", str(ROOT / "src")), **extra)


def make_synthetic(folder: Path) -> list[dict]:
    """The ramp and the tilted plane with a subject: a 1536×1024 scene image with two 16-bit maps."""
    from PIL import Image

    from lensblur.io.images import write_image
    from speed import _inputs  # the layered scene's all-in-focus image, as texture

    image = _inputs(1024, 1536, 30.0)[0]
    photo = folder / "scene.png"
    write_image(photo, image)
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    ramp = 0.2 + 0.8 * rows / (height - 1)                      # 0.2 at the top → 1.0 at the bottom
    tilted = 0.1 + 0.3 * rows / (height - 1) + 0.3 * cols / (width - 1)
    subject = ((cols - 0.5 * width) / (0.15 * width)) ** 2 + ((rows - 0.6 * height) / (0.3 * height)) ** 2 <= 1
    tilted[subject] = 0.85
    cases = []
    for name, values, focus, blur in [(RAMP, ramp, 0.6, 75.0), ("tilted plane + subject 1536×1024", tilted, 0.85, 40.0)]:
        depth = folder / f"{name.split()[0]}.png"
        Image.fromarray(np.round(values * 65535).astype(np.uint16)).save(depth)
        cases.append({"name": name, "input": str(photo),
                      "options": ["--depth", str(depth), "--focus-disparity", str(focus), "--blur", str(blur)]})
    return cases


def phone_cases() -> list[dict]:
    """The real photos with depth that are present in ../shared/samples."""
    cases = [{"name": "iPhone portrait 12 MP (embedded disparity)", "input": SAMPLES / "apple" / "image-with-depth.jpg",
              "options": []},
             {"name": "iPhone pug.heic (embedded disparity)", "input": SAMPLES / "apple" / "pug.heic", "options": []}]
    for number in ("13", "21"):
        cases.append({"name": f"BokehMe {number} (depth file)", "input": SAMPLES / "bokehme" / f"{number}.jpg",
                      "options": ["--depth", str(SAMPLES / "bokehme" / f"{number}.png")]})
    return [{**case, "input": str(case["input"])} for case in cases if Path(case["input"]).exists()]


def stage_child(case: dict, scratch: str) -> dict:
    """In a fresh process: the stages of ``lensblur render`` timed one by one, then the renderer
    alone twice more (numba's JIT kernels, warmed up first); saves the gegl inputs (encoded image, radius mask) to ``scratch``."""
    started = time.perf_counter()
    from lensblur.aot import prefer_jit
    from lensblur.cli import build_parser
    from lensblur.commands.render import lens_from_args, load_depth
    from lensblur.io.images import read_image, write_image
    from lensblur.renderers import render_with

    times = {"imports": time.perf_counter() - started}
    args = build_parser().parse_args(["render", case["input"], "-o", str(Path(scratch) / "out.jpg"), "-q",
                                      "--overwrite", *case["options"]])

    def stage(name, call):
        start = time.perf_counter()
        value = call()
        times[name] = time.perf_counter() - start
        return value

    photo = stage("decode", lambda: read_image(args.input, max_pixels=args.max_pixels))
    depth = stage("depth", lambda: load_depth(args, photo))
    lens = stage("lens", lambda: lens_from_args(args, photo, depth.disparity, depth))
    result = stage("render", lambda: render_with(args.renderer, depth.pixels, depth.disparity, lens, matte=depth.matte))
    stage("encode+save", lambda: write_image(args.output, result, like=photo, quality=args.quality, overwrite=True))
    # the renderer alone, as a process that renders many times runs it (lensblur.aot.prefer_jit)
    prefer_jit()
    render_with(args.renderer, depth.pixels, depth.disparity, lens, matte=depth.matte)
    again = []
    for _ in range(2):
        start = time.perf_counter()
        render_with(args.renderer, depth.pixels, depth.disparity, lens, matte=depth.matte)
        again.append(time.perf_counter() - start)
    largest = save_gegl_inputs(depth.pixels, depth.disparity, lens, scratch)
    height, width = depth.disparity.shape
    return {"size": f"{width}×{height}", "largest_radius": largest, "blur": lens.blur,
            "focus": lens.focus_disparity, "stages_s": times, "renderer_s": statistics.median(again),
            "source": depth.source}


def save_gegl_inputs(pixels: np.ndarray, disparity: np.ndarray, lens, scratch: str) -> float:
    """Write gegl's inputs for this render to ``scratch`` (encoded.npy: 16-bit sRGB image;
    mask.npy: 16-bit radius map scaled to the largest radius); returns that radius in pixels."""
    from lensblur.color import linear_to_srgb
    from lensblur.lens import signed_coc

    radius = np.abs(signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range))
    largest = float(radius.max())
    np.save(Path(scratch) / "encoded.npy", np.round(linear_to_srgb(pixels) * 65535).astype(np.uint16))
    np.save(Path(scratch) / "mask.npy", np.round(radius / max(largest, 1e-6) * 65535).astype(np.uint16))
    return largest


def _wall(command: list[str], env: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[2:5])}…: {done.stderr.strip()[-300:]}")
    return statistics.median(times)


def cli_command(case: dict, output: Path) -> list[str]:
    """``python -m lensblur render IN -o OUT.jpg [options]``."""
    return [sys.executable, "-m", "lensblur", "render", case["input"], "-o", str(output), "-q", "--overwrite",
            *case["options"]]


_FLOOR = """import numpy as np
from numba import njit


@njit(cache=True)
def total(values):
    s = 0.0
    for v in values:
        s += v
    return s


total(np.ones(3))
"""


def numba_floor(folder: Path) -> float:
    """Wall time of a Python process that only imports numpy and numba and loads one trivial
    kernel from numba's cache (median of 5 after a first, compiling run): what any numba program
    pays before doing anything, the floor under the command's start-up."""
    script = folder / "floor.py"
    script.write_text(_FLOOR)
    env = _env(NUMBA_CACHE_DIR=str(folder / "floor-cache"))
    _wall([sys.executable, str(script)], env, 1)
    return _wall([sys.executable, str(script)], env, 5)


def gegl_seconds(encoded: np.ndarray, mask: np.ndarray, radius: float, repeats: int = 1) -> tuple[float, float]:
    """(gegl's time minus its 16×16 run, that 16×16 run), medians."""
    from lensblur.renderers.gegl import run_gegl_lens_blur

    def timed(image, weights):
        start = time.perf_counter()
        run_gegl_lens_blur(image, weights, radius)
        return time.perf_counter() - start

    startup = statistics.median(timed(encoded[:16, :16], mask[:16, :16]) for _ in range(3))
    total = statistics.median(timed(encoded, mask) for _ in range(repeats))
    return total - startup, startup


def _gegl_or_note(result: dict, case: dict, scratch: Path, row: dict, repeats: int = 1) -> float | None:
    """gegl's time on the case (:func:`gegl_seconds`), or None with a note saying why it is missing."""
    try:
        seconds, result["startup"]["gegl_16x16_s"] = gegl_seconds(
            np.load(scratch / "encoded.npy"), np.load(scratch / "mask.npy"), row["largest_radius"], repeats)
        return seconds
    except Exception as error:  # noqa: BLE001 - gegl is optional; say why it is missing
        result["notes"].append(f"gegl skipped on {case['name']}: {error}")
        return None


def _route() -> str:
    """Which kernels the commands measured here run: the ahead-of-time compiled ones when
    ``python -m lensblur.compile`` built them for these sources, else numba's JIT."""
    code = "from lensblur import aot; print('aot' if aot.load() else 'jit')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    return "ahead-of-time compiled (lensblur.aot)" if done.stdout.strip() == "aot" else "numba JIT"


def run_cases(gegl: bool = True, web: bool = True) -> dict:
    """Every measurement above; returns {"rows": [...], "startup": {...}, "cold": {...}, "web": {...}}."""
    sys.path.insert(0, str(HERE))
    result = {"rows": [], "notes": []}
    with tempfile.TemporaryDirectory(prefix="lensblur-speed-photos-") as folder:
        folder = Path(folder)
        tiny = folder / "tiny.png"
        from PIL import Image

        Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tiny)
        tiny_case = {"name": "16×16", "input": str(tiny), "options": ["--blur", "1"]}
        cli_tiny = _wall(cli_command(tiny_case, folder / "tiny.jpg"), _env(), 5)
        result["startup"] = {"cli_16x16_s": cli_tiny, "numba_floor_s": numba_floor(folder), "kernels": _route()}
        print(json.dumps({"startup": result["startup"]}), file=sys.stderr)
        synthetic = make_synthetic(folder)
        for case in synthetic + phone_cases():
            scratch = folder / "case"
            scratch.mkdir(exist_ok=True)
            done = subprocess.run([sys.executable, __file__, json.dumps(case), str(scratch)], capture_output=True,
                                  text=True, env=_env())
            if done.returncode != 0:
                result["notes"].append(f"{case['name']}: {done.stderr.strip()[-300:]}")
                continue
            row = {"case": case["name"], "command": "lensblur render " + " ".join(
                [Path(case["input"]).name, "-o", "OUT.jpg", *[Path(o).name if "/" in o else o for o in case["options"]]]),
                **json.loads(done.stdout.strip().splitlines()[-1])}
            measure_gegl = gegl
            if case["name"] == RAMP:
                # The ratio for this row: the command less its 16×16 run against gegl less its
                # own. All four runs alternate, so they see the machine in the same state.
                tiny_command = cli_command(tiny_case, folder / "tiny.jpg")
                rounds = []
                for _ in range(CLI_REPEATS):
                    ramp_s = _wall(cli_command(case, folder / "out.jpg"), _env(), 1)
                    tiny_s = _wall(tiny_command, _env(), 1)
                    gegl_s = _gegl_or_note(result, case, scratch, row) if gegl else None
                    rounds.append((ramp_s, tiny_s, gegl_s))
                row["cli_s"] = statistics.median(ramp for ramp, _, _ in rounds)
                row["cli_16x16_s"] = statistics.median(tiny for _, tiny, _ in rounds)
                row["cli_minus_16x16_s"] = row["cli_s"] - row["cli_16x16_s"]
                if gegl and all(gegl_s is not None for _, _, gegl_s in rounds):
                    row["gegl_s"] = statistics.median(gegl_s for _, _, gegl_s in rounds)
                    row["cli_ratios"] = [gegl_s / (ramp_s - tiny_s) for ramp_s, tiny_s, gegl_s in rounds]
                measure_gegl = False
            else:
                row["cli_s"] = _wall(cli_command(case, folder / "out.jpg"), _env(), CLI_REPEATS)
            if measure_gegl:
                row["gegl_s"] = _gegl_or_note(result, case, scratch, row, GEGL_REPEATS)
                if row["gegl_s"] is None:
                    del row["gegl_s"]
            result["rows"].append(row)
            print(json.dumps(row), file=sys.stderr)
        for key, call in [("cold", lambda: cold_cache(synthetic[0], folder)), ("web", web_preview if web else dict)]:
            try:
                result[key] = call()
            except Exception as error:  # noqa: BLE001 - one failed part must not lose the others
                result["notes"].append(f"{key} failed: {error}")
            print(json.dumps({key: result.get(key)}), file=sys.stderr)
    return result


def cold_cache(case: dict, folder: Path) -> dict:
    """The first render of the ramp with an empty numba cache, without and with the set-up's
    ``python -m lensblur.compile`` (timed too; it also builds the ahead-of-time compiled kernels),
    each in its own empty NUMBA_CACHE_DIR and LENSBLUR_AOT_DIR."""
    cold = {}
    for label in ("without compile step", "after compile step"):
        cache = Path(tempfile.mkdtemp(dir=folder, prefix="numba-"))
        # a fresh machine: no numba cache and no ahead-of-time compiled module (the compile step builds both)
        env = _env(NUMBA_CACHE_DIR=str(cache), LENSBLUR_AOT_DIR=str(cache / "aot"))
        if label == "after compile step":
            cold["compile_step_s"] = _wall([sys.executable, "-m", "lensblur.compile", "-q"], env, 1)
        cold[label] = _wall(cli_command(case, folder / "cold.jpg"), env, 1)
    return cold


def web_preview() -> dict:
    """Median whole-request time of the web app's 1024 px preview of the 12 MP iPhone photo."""
    from starlette.testclient import TestClient

    import web_preview as web
    from lensblur.web.app import create_app

    if not PREVIEW_PHOTO.exists():
        return {}
    with tempfile.TemporaryDirectory() as scratch, \
            TestClient(create_app(temp_root=scratch), base_url="http://127.0.0.1:8000") as client:  # the Host guard
        row = web.measure(client, PREVIEW_PHOTO, 1)
    return {"photo": row["photo"], "preview_median_s": statistics.median(row["previews"]),
            "server_median_s": statistics.median(row["renders"])}


def markdown(result: dict) -> list[str]:
    """The section of benchmarks/results/speed.md for these cases."""
    lines = ["", "## Continuous depth and the whole command (issue 14)", "",
             f"| case | size | largest radius px | renderer s | gegl s | gegl ÷ renderer | whole command s (median of {CLI_REPEATS}) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        gegl = row.get("gegl_s")
        ratio = "n/a" if gegl is None else f"{gegl / row['renderer_s']:.1f}×"
        command = f"{row['cli_s']:.2f}"
        if "cli_minus_16x16_s" in row:
            command += (f" ({row['cli_minus_16x16_s']:.2f} minus the 16×16 run, {row['cli_16x16_s']:.2f} s when run "
                        "alternately with it")
            if row.get("cli_ratios"):
                ratios = ", ".join(f"{ratio:.1f}" for ratio in row["cli_ratios"])
                command += (f"; gegl ÷ that: {row['gegl_s'] / row['cli_minus_16x16_s']:.1f}× of the medians, "
                            f"{ratios}× in the {len(row['cli_ratios'])} alternating rounds")
            command += ")"
        lines.append(f"| {row['case']} | {row['size']} | {row['largest_radius']:.1f} | {row['renderer_s']:.2f} | "
                     f"{'n/a' if gegl is None else f'{gegl:.2f}'} | "
                     f"{ratio} | {command} |")
    lines += ["", "Stages of `lensblur render` in one process (seconds; render = the first call):", "",
              "| case | imports | decode | depth | lens | render | encode + save |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        s = row["stages_s"]
        lines.append(f"| {row['case']} | {s['imports']:.2f} | {s['decode']:.2f} | {s['depth']:.2f} | {s['lens']:.2f} | "
                     f"{s['render']:.2f} | {s['encode+save']:.2f} |")
    startup, cold, web = result.get("startup", {}), result.get("cold", {}), result.get("web", {})
    lines += ["", f"- start-up, `lensblur render tiny.png -o tiny.jpg --blur 1` on 16×16 (median of 5): "
              f"{startup.get('cli_16x16_s', float('nan')):.2f} s (kernels: {startup.get('kernels', '?')}); "
              f"gegl on 16×16: "
              f"{startup.get('gegl_16x16_s', float('nan')):.2f} s; a Python process that only imports numpy and "
              f"numba and loads one cached kernel: {startup.get('numba_floor_s', float('nan')):.2f} s",
              f"- first render of the ramp with an empty numba cache: {cold.get('without compile step', float('nan')):.1f} s; "
              f"after `python -m lensblur.compile` ({cold.get('compile_step_s', float('nan')):.1f} s, in the README set-up): "
              f"{cold.get('after compile step', float('nan')):.1f} s"]
    if web:
        lines.append(f"- web app, 1024 px preview of {web['photo']}: median whole request "
                     f"{web['preview_median_s'] * 1000:.0f} ms (server {web['server_median_s'] * 1000:.0f} ms), "
                     "benchmarks/web_preview.py's edits replayed once")
    lines += [f"- commands: {row['case']}: `{row['command']}`" for row in result["rows"]]
    lines += [f"- note: {note}" for note in result["notes"]]
    return lines


if __name__ == "__main__":
    print(json.dumps(stage_child(json.loads(sys.argv[1]), sys.argv[2])))

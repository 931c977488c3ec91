"""How fast the web app (`lensblur serve`) follows the user: upload, preview per change, save.

Runs the real app in-process through Starlette's test client (the HTTP layer, JPEG encoding and
the render lock included; no browser or network). For each photo: the upload (decode + depth +
the preview copies), then a sequence of edits — clicks that move the focus and aperture changes —
each answered first with the 512 px draft and then with the 1024 px preview, as the page asks for
them, and finally one full-resolution save polled until its file is ready.

Photos: the 12 MP iPhone portrait with its embedded depth and subject matte from
../shared/samples/apple (when present; it is not part of the repository), and the bundled
astronaut example scaled up to 4000×3000 (automatic depth estimate). Writes
benchmarks/results/web_preview.md.

The kernels run as under ``lensblur serve``: numba's parallel JIT kernels
(lensblur.aot.prefer_jit); ``LENSBLUR_KERNELS=aot`` measures the compiled route instead.

``--baseline OTHER/src`` measures another tree's code (e.g. ``git archive COMMIT src | tar -x -C
OTHER``) in the same run: each round runs the whole measurement once in a fresh process with that
tree first on the path and once with this one, alternating (``--rounds``), and the table gives
both side by side; on a shared machine only such a same-run comparison says anything.

    python benchmarks/web_preview.py [--repeats 3] [--photo PATH ...] [--baseline OTHER/src [--rounds 3]]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from starlette.testclient import TestClient

from lensblur.aot import prefer_jit

prefer_jit()  # the kernel route `lensblur serve` takes, set before any kernel is made

from lensblur.web.app import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "samples" / "apple" / "image-with-matte.jpg"
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
RESULTS = ROOT / "benchmarks" / "results" / "web_preview.md"

# (x, y) clicks in [0, 1] of the frame and blur as a fraction of the width, one per edit.
EDITS = [((0.5, 0.3), 0.015), ((0.2, 0.8), 0.015), ((0.5, 0.3), 0.03), ((0.8, 0.2), 0.03),
         ((0.5, 0.5), 0.01), ((0.5, 0.3), 0.02)]


def upscaled_example(folder: Path) -> Path:
    """The astronaut example resized to 4000×3000 (12 MP), saved as a JPEG in ``folder``."""
    path = folder / "astronaut-12mp.jpg"
    Image.open(EXAMPLE).convert("RGB").resize((4000, 3000), Image.LANCZOS).save(path, quality=92)
    return path


def timed(call):
    start = time.perf_counter()
    response = call()
    return response, time.perf_counter() - start


def measure(client: TestClient, path: Path, repeats: int) -> dict:
    """Seconds for the upload, each draft and preview request, and the save of one photo."""
    data = path.read_bytes()
    response, upload_s = timed(lambda: client.post(f"/api/sessions?name={path.name}", content=data))
    if response.status_code != 201:
        raise SystemExit(f"upload of {path} failed: {response.status_code} {response.text}")
    info = response.json()
    sid = info["id"]
    width = info["width"]
    drafts, previews, renders = [], [], []
    for _ in range(repeats):
        for (x, y), blur_fraction in EDITS:
            client.post(f"/api/sessions/{sid}/focus", json={"x": x, "y": y})
            query = f"blur={blur_fraction * width:.1f}&highlights=6"
            response, seconds = timed(lambda: client.get(f"/api/sessions/{sid}/preview?{query}&draft=on"))
            assert response.status_code == 200, response.text
            drafts.append(seconds)
            response, seconds = timed(lambda: client.get(f"/api/sessions/{sid}/preview?{query}"))
            assert response.status_code == 200, response.text
            previews.append(seconds)
            renders.append(float(response.headers["X-Render-Ms"]) / 1000)
    stages = stage_breakdown(client.app.state.store.get(sid))
    start = time.perf_counter()
    job = client.post(f"/api/sessions/{sid}/save", json={"blur": 0.02 * width}).json()["job"]
    while (state := client.get(f"/api/sessions/{sid}/jobs/{job}").json())["state"] not in ("done", "failed"):
        time.sleep(0.05)
    if state["state"] != "done":
        raise SystemExit(f"save failed: {state['error']}")
    saved = client.get(f"/api/sessions/{sid}/jobs/{job}/file")
    save_s = time.perf_counter() - start
    assert Image.open(io.BytesIO(saved.content)).size == (info["width"], info["height"])
    client.delete(f"/api/sessions/{sid}")
    return {"photo": path.name, "size": f"{info['width']}×{info['height']}", "depth": info["depth_source"],
            "matte": info["has_matte"], "preview": f"{info['preview_width']}×{info['preview_height']}",
            "upload": upload_s, "drafts": drafts, "previews": previews, "renders": renders, "save": save_s,
            "stages": stages}


# (label, function names whose cumulative time is the stage) for stage_breakdown
STAGES = [("settings (parse_settings)", ["parse_settings"]),
          ("kept per photo: subject split, highlight analysis (lookups)", ["subject_layers", "clipped_analysis"]),
          ("highlight recovery, lens part", ["sparse_recovery"]),
          ("background slabs (scatter_layers)", ["scatter_layers"]),
          ("subject layer (scatter_premultiplied)", ["scatter_premultiplied"]),
          ("tone encode to 8 bits", ["encode_levels", "encode", "linear_to_srgb"]),
          ("JPEG compression", ["jpeg_bytes", "save"])]


def _timing_hidden_areas(cpu: list):
    """A context that adds the CPU seconds of the hidden-area stage of the background slabs
    (HiddenAreaOwners and each slab's hidden part) to ``cpu[0]``: that stage runs on a second
    thread (lensblur.threads.ahead), which the profiler does not follow, so its own thread's CPU
    clock is read around it."""
    import contextlib

    from lensblur.renderers import scatter

    def timed(function):
        def call(*args, **kwargs):
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                cpu[0] += time.thread_time() - start
        return call

    @contextlib.contextmanager
    def patched():
        originals = scatter.HiddenAreaOwners, scatter._hidden_part
        scatter.HiddenAreaOwners, scatter._hidden_part = timed(originals[0]), timed(originals[1])
        try:
            yield
        finally:
            scatter.HiddenAreaOwners, scatter._hidden_part = originals

    return patched()


def stage_breakdown(session) -> dict:
    """Process CPU milliseconds per 1024 px preview, by stage, over the EDITS (cProfile with a
    CPU clock, so other load on the machine does not count; kernels' threads are summed)."""
    import cProfile
    import pstats

    from lensblur.lens import focus_disparity_at
    from lensblur.web.app import encode_jpeg, parse_settings, render_preview

    width = session.full_size[0]
    profile = cProfile.Profile(time.process_time)
    disparity = session.depth.disparity
    total = 0.0
    hidden_cpu = [0.0]
    with _timing_hidden_areas(hidden_cpu):
        for (x, y), blur_fraction in EDITS:
            session.focus_disparity = focus_disparity_at(disparity, x * (disparity.shape[1] - 1),
                                                         y * (disparity.shape[0] - 1))
            start = time.process_time()
            profile.enable()
            lens, renderer = parse_settings({"blur": f"{blur_fraction * width:.1f}", "highlights": "6"}, session)
            encode_jpeg(render_preview(session, lens, renderer), session.photo.icc_profile)
            profile.disable()
            total += time.process_time() - start
    by_name: dict[str, float] = {}
    for key, (_, _, _, cumulative, _) in pstats.Stats(profile).stats.items():
        by_name[key[2]] = max(by_name.get(key[2], 0.0), cumulative)  # an outer call holds inner ones
    hidden = hidden_cpu[0]
    stages = {}
    for label, names in STAGES:
        stages[label] = sum(by_name.get(name, 0.0) for name in names) * 1000 / len(EDITS)
        if names == ["scatter_layers"]:
            stages["of which hidden areas (HiddenAreaOwners, hidden parts; second thread)"] = hidden * 1000 / len(EDITS)
    render = by_name.get("render_scatter", 0.0) * 1000 / len(EDITS)
    stages["rest of the render (blur map, compositing)"] = render - sum(
        stages[label] for label, _ in STAGES[2:5])
    stages["whole preview (render + encode)"] = total * 1000 / len(EDITS)
    return stages


def spread(values: list[float]) -> str:
    """'median (min–max)' in milliseconds."""
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.0f} ({min(ms):.0f}–{max(ms):.0f})"


def measure_photos(photos: list[Path], repeats: int) -> list[dict]:
    """measure() of each photo through one app and test client."""
    with tempfile.TemporaryDirectory() as scratch:
        photos = photos or ([SAMPLE] if SAMPLE.exists() else []) + [upscaled_example(Path(scratch))]
        app = create_app(temp_root=scratch)
        rows = []
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # the Host guard
            for path in photos:
                rows.append(measure(client, path, repeats))
                print(rows[-1]["photo"], "draft", spread(rows[-1]["drafts"]), "preview", spread(rows[-1]["previews"]),
                      file=sys.stderr)
    return rows


def same_run(baseline: Path, photos: list[Path], repeats: int, rounds: int) -> dict[str, list[dict]]:
    """The measurement of ``baseline`` (another tree's src folder) and of this tree, each in its
    own process, alternating ``rounds`` times; per tree the rows with every round's requests
    pooled and the CPU stages averaged."""
    trees = {"baseline": baseline.resolve(), "this tree": ROOT / "src"}
    runs: dict[str, list[list[dict]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, src in trees.items():
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--repeats", str(repeats)]
            for photo in photos:
                command += ["--photo", str(photo)]
            env = {**os.environ, "PYTHONPATH": str(src)}
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} ({src}) failed:\n{done.stderr[-2000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(name, "round", len(runs[name]), [spread(row["previews"]) for row in runs[name][-1]], file=sys.stderr)
    pooled = {}
    for name, results in runs.items():
        rows = []
        for i, first in enumerate(results[0]):
            row = dict(first)
            for key in ("drafts", "previews", "renders"):
                row[key] = [value for result in results for value in result[i][key]]
            for key in ("upload", "save"):
                row[key] = statistics.median(result[i][key] for result in results)
            row["stages"] = {label: statistics.mean(result[i]["stages"][label] for result in results)
                             for label in first["stages"]}
            rows.append(row)
        pooled[name] = rows
    return pooled


def header(args, load: float) -> list[str]:
    return [
        f"`{' '.join(['python', 'benchmarks/web_preview.py'] + (args.command or []))}` on {platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, Python {platform.python_version()}; kernels: "
        f"{os.environ.get('LENSBLUR_KERNELS', 'auto')} (as `lensblur serve`: numba's JIT kernels unless "
        f"LENSBLUR_KERNELS=aot), NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'all')}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} (create_app sets passive where unset); "
        f"load average {load:.1f} when it finished.",
        f"Each photo: {len(EDITS)} edits (a click that moves the focus, and the aperture) replayed "
        f"{args.repeats} times; per edit the page's two requests, the 512 px draft and then the 1024 px "
        "preview. Times are the whole HTTP request in milliseconds, median (min–max): render, JPEG "
        "encoding and transfer through Starlette's test client; 'server' is the app's own "
        "X-Render-Ms for the 1024 px preview (render and JPEG encoding). Save: full resolution, from the "
        "request until the file is downloaded.",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="times the edit sequence is replayed (default 3)")
    parser.add_argument("--photo", type=Path, action="append", help="photo to measure (default: see above)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--baseline", type=Path, help="another tree's src folder, measured in the same run")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --baseline (default 3)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one process of --baseline
    args = parser.parse_args(argv)
    args.command = list(sys.argv[1:] if argv is None else argv)
    photos = list(args.photo or [])
    if args.worker:
        print(json.dumps(measure_photos(photos, args.repeats)))
        return 0
    if args.baseline is not None:
        return write_same_run(args, same_run(args.baseline, photos, args.repeats, args.rounds))
    rows = measure_photos(photos, args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["# Web app: time to follow an edit", "", *header(args, load), "",
             "| photo | size | depth | matte | upload s | draft ms | 1024 px preview ms | server ms | save s |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['photo']} | {row['size']} | {row['depth']} | {'yes' if row['matte'] else 'no'} | "
                     f"{row['upload']:.2f} | {spread(row['drafts'])} | {spread(row['previews'])} | "
                     f"{spread(row['renders'])} | {row['save']:.1f} |")
    lines += ["", f"Where a 1024 px preview's time goes: process CPU ms per preview over the {len(EDITS)} edits "
              f"(cProfile with a CPU clock; threads summed). The HTTP row is the median whole request minus the "
              "median server time.", "",
              "| stage | " + " | ".join(row["photo"] for row in rows) + " |", "|---|" + "---:|" * len(rows)]
    for label in rows[0]["stages"]:
        lines.append(f"| {label} | " + " | ".join(f"{row['stages'][label]:.0f}" for row in rows) + " |")
    lines.append("| HTTP and test client (wall) | " + " | ".join(
        f"{(statistics.median(row['previews']) - statistics.median(row['renders'])) * 1000:.0f}" for row in rows) + " |")
    return write(args.out, lines)


def write_same_run(args, pooled: dict[str, list[dict]]) -> int:
    """The --baseline table: both trees side by side, requests pooled over the rounds."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["# Web app: time to follow an edit, this tree against a baseline in the same run", "",
             *header(args, load),
             f"Baseline: `{args.baseline}`. {args.rounds} rounds, each a fresh process per tree, alternating "
             "baseline first; requests pooled over the rounds, CPU stages averaged, upload and save the median "
             "of the rounds.", "",
             "| photo | tree | upload s | draft ms | 1024 px preview ms | server ms | CPU ms per preview | save s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    names = list(pooled)
    for i, row in enumerate(pooled[names[0]]):
        for name in names:
            other = pooled[name][i]
            lines.append(f"| {row['photo']} | {name} | {other['upload']:.2f} | {spread(other['drafts'])} | "
                         f"{spread(other['previews'])} | {spread(other['renders'])} | "
                         f"{other['stages']['whole preview (render + encode)']:.0f} | {other['save']:.1f} |")
    lines += ["", "Process CPU ms per 1024 px preview by stage (cProfile with a CPU clock; threads summed):", "",
              "| photo | stage | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    for i, row in enumerate(pooled[names[0]]):
        for label in row["stages"]:
            lines.append(f"| {row['photo']} | {label} | " + " | ".join(
                f"{pooled[name][i]['stages'][label]:.0f}" for name in names) + " |")
    return write(args.out, lines)


def write(out: Path, lines: list[str]) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

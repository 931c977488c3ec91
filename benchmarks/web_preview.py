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

    python benchmarks/web_preview.py [--repeats 3] [--photo PATH ...]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from starlette.testclient import TestClient

from lensblur.web.app import create_app

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
    for (_, _, name), (_, _, _, cumulative, _) in pstats.Stats(profile).stats.items():
        by_name[name] = max(by_name.get(name, 0.0), cumulative)  # an outer call holds inner ones
    stages = {label: sum(by_name.get(name, 0.0) for name in names) * 1000 / len(EDITS) for label, names in STAGES}
    render = by_name.get("render_scatter", 0.0) * 1000 / len(EDITS)
    stages["rest of the render (blur map, compositing)"] = render - sum(
        stages[label] for label, _ in STAGES[2:5])
    stages["whole preview (render + encode)"] = total * 1000 / len(EDITS)
    return stages


def spread(values: list[float]) -> str:
    """'median (min–max)' in milliseconds."""
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.0f} ({min(ms):.0f}–{max(ms):.0f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="times the edit sequence is replayed (default 3)")
    parser.add_argument("--photo", type=Path, action="append", help="photo to measure (default: see above)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        photos = args.photo or ([SAMPLE] if SAMPLE.exists() else []) + [upscaled_example(Path(scratch))]
        app = create_app(temp_root=scratch)
        rows = []
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # the Host guard
            for path in photos:
                rows.append(measure(client, path, args.repeats))
                print(rows[-1]["photo"], "draft", spread(rows[-1]["drafts"]), "preview", spread(rows[-1]["previews"]),
                      file=sys.stderr)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Web app: time to follow an edit",
        "",
        f"`python benchmarks/web_preview.py --repeats {args.repeats}` on {platform.machine()}, {os.cpu_count()} "
        f"logical CPUs, Python {platform.python_version()}; load average {load:.1f} when it finished.",
        f"Each photo: {len(EDITS)} edits (a click that moves the focus, and the aperture) replayed "
        f"{args.repeats} times; per edit the page's two requests, the 512 px draft and then the 1024 px "
        "preview. Times are the whole HTTP request in milliseconds, median (min–max): render, JPEG "
        "encoding and transfer through Starlette's test client; 'server' is the app's own "
        "X-Render-Ms for the 1024 px preview (render and JPEG encoding). Save: full resolution, from the request until the "
        "file is downloaded.",
        "",
        "| photo | size | depth | matte | upload s | draft ms | 1024 px preview ms | server ms | save s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['photo']} | {row['size']} | {row['depth']} | {'yes' if row['matte'] else 'no'} | "
                     f"{row['upload']:.2f} | {spread(row['drafts'])} | {spread(row['previews'])} | "
                     f"{spread(row['renders'])} | {row['save']:.1f} |")
    lines += ["", f"Where a 1024 px preview's time goes: process CPU ms per preview over the {len(EDITS)} edits "
              f"(cProfile with a CPU clock; NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'all')}, "
              "threads summed). The HTTP row is the median whole request minus the median server time.", "",
              "| stage | " + " | ".join(row["photo"] for row in rows) + " |", "|---|" + "---:|" * len(rows)]
    for label in rows[0]["stages"]:
        lines.append(f"| {label} | " + " | ".join(f"{row['stages'][label]:.0f}" for row in rows) + " |")
    lines.append("| HTTP and test client (wall) | " + " | ".join(
        f"{(statistics.median(row['previews']) - statistics.median(row['renders'])) * 1000:.0f}" for row in rows) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

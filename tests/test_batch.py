"""``lensblur batch`` and the Dask engine: discovery, naming, manifest, resumption, exit codes,
the pixel budget, a remote cluster, and a worker killed in the middle of a batch."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lensblur.batch import open_client, render_options, run_batch
from lensblur.batch.cluster import QUIET_SCHEDULER, RESOURCE, map_tasks, pixel_budget, pixel_request
from lensblur.batch.discovery import find_depth, find_photos, plan_jobs
from lensblur.batch.manifest import Manifest, is_done
from lensblur.errors import InputError, UsageError

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")


def make_photos(folder, names, size=(48, 64), seed=0, depth_dir=None):
    """Random-texture photos with a near square in the middle; their depth maps into depth_dir."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    height, width = size
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        if depth_dir is not None:
            depth_dir.mkdir(parents=True, exist_ok=True)
            depth = np.zeros((height, width), np.uint16)
            depth[height // 4:3 * height // 4, width // 4:3 * width // 4] = 60000
            cv2.imwrite(str(depth_dir / f"{Path(name).stem}.png"), depth)
    return folder


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300)


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each (shared by the module's cluster tests)."""
    with open_client(workers=2) as dask_client:
        yield dask_client


# ------------------------------------------------------------------------------- discovery, naming

def test_files_folders_recursion_globs_and_hidden_files(tmp_path):
    make_photos(tmp_path / "in", ["a.png", "b.jpg", ".hidden.png"])
    make_photos(tmp_path / "in" / "sub", ["c.png"])
    (tmp_path / "in" / "notes.txt").write_text("not a photo")
    flat = [(p.name, rel) for p, rel in find_photos([str(tmp_path / "in")])]
    assert flat == [("a.png", ""), ("b.jpg", "")]
    deep = [(p.name, rel) for p, rel in find_photos([str(tmp_path / "in")], recursive=True)]
    assert deep == [("a.png", ""), ("b.jpg", ""), ("c.png", "sub")]
    globbed = [p.name for p, _ in find_photos([str(tmp_path / "in" / "**" / "*.png")], recursive=True)]
    assert globbed == ["a.png", "c.png"]
    twice = find_photos([str(tmp_path / "in" / "a.png"), str(tmp_path / "in")])
    assert [p.name for p, _ in twice] == ["a.png", "b.jpg"]  # each photo once
    assert find_photos([str(tmp_path / "in")], recursive=True, exclude=tmp_path / "in" / "sub")[-1][0].name == "b.jpg"


def test_output_names_mirror_subfolders_and_refuse_collisions(tmp_path):
    make_photos(tmp_path / "in", ["a.png", "a.jpg"])
    make_photos(tmp_path / "in" / "sub", ["c.png"])
    jobs = plan_jobs([str(tmp_path / "in")], tmp_path / "out", pattern="{stem}_{ext}.tif", recursive=True)
    outputs = [Path(job.output).relative_to((tmp_path / "out").resolve()).as_posix() for job in jobs]
    assert outputs == ["a_jpg.tif", "a_png.tif", "sub/c_png.tif"]
    with pytest.raises(UsageError, match="both be written"):
        plan_jobs([str(tmp_path / "in")], tmp_path / "out", pattern="{stem}.png")
    for bad in ("{stem}_{size}.png", "x/{stem}.png", "fixed.png", "{stem"):
        with pytest.raises(UsageError):
            plan_jobs([str(tmp_path / "in")], tmp_path / "out", pattern=bad)


def test_depth_maps_are_matched_by_stem(tmp_path):
    make_photos(tmp_path / "in", ["a.png", "b.png", "c.png"])
    depth = tmp_path / "depth"
    (depth / "sub").mkdir(parents=True)
    np.save(depth / "a.npy", np.zeros((4, 4), np.float32))
    cv2.imwrite(str(depth / "b_disparity.png"), np.zeros((4, 4), np.uint8))
    assert find_depth(depth, Path("a.png")).name == "a.npy"
    assert find_depth(depth, Path("b.png")).name == "b_disparity.png"
    np.save(depth / "sub" / "a.npy", np.zeros((4, 4), np.float32))
    assert find_depth(depth, Path("a.png"), "sub") == depth / "sub" / "a.npy"
    jobs = plan_jobs([str(tmp_path / "in")], tmp_path / "out", depth_dir=depth)
    assert [job.error for job in jobs] == [None, None, f"no depth map for c in {depth}"]
    with pytest.raises(InputError, match="not a folder"):
        plan_jobs([str(tmp_path / "in")], tmp_path / "out", depth_dir=tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------ manifest

@pytest.mark.parametrize("name", ["m.jsonl", "m.csv"])
def test_manifest_keeps_the_last_row_of_each_input(tmp_path, name):
    book = Manifest(tmp_path / name)
    book.append({"input": "/a", "output": "/o/a", "status": "failed", "error": "boom"})
    book.append({"input": "/b", "output": "/o/b", "status": "done", "focus": 0.5, "K": 12.0})
    book.append({"input": "/a", "output": "/o/a", "status": "done"})
    rows = book.read()
    assert rows["/a"]["status"] == "done" and rows["/b"]["status"] == "done"
    assert float(rows["/b"]["K"]) == 12.0 and rows["/b"]["finished"]
    if name.endswith(".jsonl"):
        with open(tmp_path / name, "a") as handle:
            handle.write('{"input": "/c", "outp')  # a batch killed while writing
        assert set(book.read()) == {"/a", "/b"}


# ------------------------------------------------------------------------------ batches in-process

def test_batch_renders_records_and_resumes(tmp_path):
    make_photos(tmp_path / "in", ["a.png", "b.png", "c.jpg"], depth_dir=tmp_path / "depth")
    (tmp_path / "in" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "depth" / "corrupt.png").write_bytes((tmp_path / "depth" / "a.png").read_bytes())
    options = render_options(["--blur", "6", "--focus-disparity", "1"])
    out = tmp_path / "out"
    summary = run_batch([str(tmp_path / "in")], out, options, depth_dir=tmp_path / "depth", workers=0)
    assert len(summary.done) == 3 and len(summary.failed) == 1
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {row["status"] for row in rows if row["input"].endswith("corrupt.jpg")} == {"failed"}
    failed = next(row for row in rows if row["status"] == "failed")
    assert "corrupt.jpg" in failed["error"] and "\n" not in failed["error"]
    assert not (out / "corrupt_bokeh.jpg").exists()
    for row in rows:
        if row["status"] == "done":
            assert row["depth_source"].startswith("file ") and row["focus"] == 1.0 and row["K"] == 6.0
            assert row["seconds"] >= 0
            image = cv2.imread(row["output"])
            assert image is not None and image.shape == (48, 64, 3)
    # the subject (disparity 1, in focus) stays as it was; the background is blurred
    source = cv2.imread(str(tmp_path / "in" / "a.png")).astype(np.float32)
    result = cv2.imread(str(out / "a_bokeh.png")).astype(np.float32)
    assert np.abs(result[16:32, 20:44] - source[16:32, 20:44]).mean() < 3
    assert result[:8].std() < 0.7 * source[:8].std()

    before = (out / "a_bokeh.png").stat().st_mtime_ns
    (out / "b_bokeh.png").unlink()
    again = run_batch([str(tmp_path / "in")], out, options, depth_dir=tmp_path / "depth", workers=0)
    assert sorted(Path(j.input).name for j in again.skipped) == ["a.png", "c.jpg"]
    assert [Path(r["input"]).name for r in again.done] == ["b.png"] and len(again.failed) == 1
    assert (out / "a_bokeh.png").stat().st_mtime_ns == before

    forced = run_batch([str(tmp_path / "in")], out, options, depth_dir=tmp_path / "depth", workers=0,
                       overwrite=True)
    assert len(forced.done) == 3 and not forced.skipped


def test_an_existing_file_that_the_batch_did_not_make_is_kept(tmp_path):
    make_photos(tmp_path / "in", ["a.png"], depth_dir=tmp_path / "depth")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_bokeh.png").write_bytes(b"keep me")
    summary = run_batch([str(tmp_path / "in")], tmp_path / "out", ["--blur", "4"], depth_dir=tmp_path / "depth",
                        workers=0)
    assert "already exists" in summary.failed[0]["error"]
    assert (tmp_path / "out" / "a_bokeh.png").read_bytes() == b"keep me"


def test_cli_exit_codes_and_csv_manifest(tmp_path):
    make_photos(tmp_path / "in", ["a.png", "b.png"], depth_dir=tmp_path / "depth")
    common = ["--depth-dir", tmp_path / "depth", "--blur", "5", "--workers", "0", "-q",
              "--manifest", tmp_path / "m.csv"]
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", *common)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0].startswith("input,output,depth_source,focus,K,seconds,status,error")
    assert len(lines) == 3 and all(",done," in line for line in lines[1:])

    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    (tmp_path / "depth" / "broken.png").write_bytes((tmp_path / "depth" / "a.png").read_bytes())
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", *common)
    assert result.returncode == 1
    stderr = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(stderr) == 1 and "1 of 1 photos failed" in stderr[0] and "broken.png" in stderr[0]  # resumed
    assert len((tmp_path / "m.csv").read_text().splitlines()) == 4
    assert "Traceback" not in result.stderr

    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out", "--name", "{nope}.png", *common)
    assert result.returncode == 2 and "unknown field" in result.stderr
    result = run_cli("batch", "-o", tmp_path / "out")
    assert result.returncode == 2
    result = run_cli("batch", tmp_path / "nothing-here", "-o", tmp_path / "out2", *common)
    assert result.returncode == 1 and "nothing-here" in result.stderr  # a missing path is a failed row


# ---------------------------------------------------------------------------------------- on Dask

def test_batch_on_the_local_cluster_matches_in_process(tmp_path, client):
    make_photos(tmp_path / "in", ["a.png", "b.png", "c.png"], depth_dir=tmp_path / "depth")
    args = ["--blur", "5", "--shape", "blades:6"]
    local = run_batch([str(tmp_path / "in")], tmp_path / "here", args, depth_dir=tmp_path / "depth", workers=0)
    remote = run_batch([str(tmp_path / "in")], tmp_path / "dask", args, depth_dir=tmp_path / "depth",
                       client=client)
    assert len(local.done) == len(remote.done) == 3
    for name in ("a_bokeh.png", "b_bokeh.png", "c_bokeh.png"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()
    budgets = client.run(lambda dask_worker: dask_worker.state.total_resources.get(RESOURCE))
    assert len(budgets) == 2 and all(budget >= 1_000_000 for budget in budgets.values())


def test_cli_on_an_existing_cluster(tmp_path, client):
    make_photos(tmp_path / "in", ["a.png", "b.png"], depth_dir=tmp_path / "depth")
    result = run_cli("batch", str(tmp_path / "in" / "*.png"), "-o", tmp_path / "out", "--depth-dir",
                     tmp_path / "depth", "--blur", "4", "--scheduler", client.scheduler.address, "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a_bokeh.png", "b_bokeh.png"]
    result = run_cli("batch", tmp_path / "in", "-o", tmp_path / "out2", "--scheduler", "tcp://127.0.0.1:9", "-q")
    assert result.returncode == 1 and "cannot reach the Dask scheduler" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_on_dask_scores_like_in_process(tmp_path, client):
    from lensblur import evaluate
    from lensblur.synth.dataset import generate

    generate(tmp_path / "scenes", 3, 4, 32, 48, client=client)
    loaders = evaluate.sample_loaders(tmp_path / "scenes")
    here, _ = evaluate.evaluate(loaders, ["identity", "naive"])
    there, sheet = evaluate.evaluate(loaders, ["identity", "naive"], client=client, sheet_count=2)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in here.rows]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in there.rows]
    assert len(there.rows) == 6 and len(sheet) == 2


def _report_resources(request):
    from distributed import get_worker

    start = time.monotonic()
    available = get_worker().state.available_resources[RESOURCE]
    time.sleep(0.3)
    return request, available, start, time.monotonic()


def test_pixel_budget_bounds_images_per_worker():
    from distributed import Client, LocalCluster
    from functools import partial

    assert pixel_budget(4 * 2**30) > pixel_budget(2 * 2**30) > 0
    assert pixel_request(50_000_000, 20_000_000) == 20_000_000 and pixel_request(0, 5000) == 1
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, resources={RESOURCE: 4000},
                      **QUIET_SCHEDULER) as cluster, Client(cluster) as dask_client:
        tasks = [partial(_report_resources, 3000) for _ in range(3)] + [partial(_report_resources, 9999)]
        results = [result for _, result, error in map_tasks(dask_client, tasks, pixels=[3000, 3000, 3000, 9999])]
    assert [r[1] for r in results].count(1000) == 3   # each 3000-pixel image ran with the rest of the budget free
    assert 0 in [r[1] for r in results]                # the oversized one took the whole budget, and ran
    spans = sorted((start, end) for _, _, start, end in results)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))  # never two at once


# -------------------------------------------------------------------------------------------- faults

@pytest.fixture()
def loopback_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (no nanny, one thread) on 127.0.0.1."""
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    info = tmp_path / "scheduler.json"
    processes = [subprocess.Popen(dask + ["--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                          "--scheduler-file", str(info)], env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(600):
            if info.exists() and info.stat().st_size:
                break
            time.sleep(0.1)
        workers = {}
        for name in ("a", "b"):
            workers[name] = subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(info), "--name",
                 name, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "2GiB"],
                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(workers[name])
        yield json.loads(info.read_text())["address"], workers
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_worker_killed_mid_batch_leaves_every_output_valid(tmp_path, loopback_cluster):
    from distributed import Client

    address, workers = loopback_cluster
    names = [f"p{i}.png" for i in range(10)]
    make_photos(tmp_path / "in", names, size=(240, 320), depth_dir=tmp_path / "depth")
    (tmp_path / "in" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (tmp_path / "depth" / "corrupt.png").write_bytes((tmp_path / "depth" / "p0.png").read_bytes())
    killed = {}

    with Client(address, timeout="60s") as dask_client:
        dask_client.wait_for_workers(2, timeout=120)
        by_name = {info["name"]: worker for worker, info in dask_client.scheduler_info()["workers"].items()}

        def kill_after_the_first(row, total):
            if row is not None and not killed:
                killed["busy"] = len(dask_client.processing()[by_name["a"]])
                workers["a"].kill()
                workers["a"].wait()

        summary = run_batch([str(tmp_path / "in")], tmp_path / "out", ["--blur", "12"],
                            depth_dir=tmp_path / "depth", client=dask_client, progress=kill_after_the_first)
    assert killed["busy"] >= 1  # worker a had photos in hand when it died
    assert sorted(Path(r["input"]).name for r in summary.done) == names
    assert [Path(r["input"]).name for r in summary.failed] == ["corrupt.png"]
    assert "cannot read image" in summary.failed[0]["error"]
    for name in names:
        image = cv2.imread(str(tmp_path / "out" / name.replace(".png", "_bokeh.png")))
        assert image is not None and image.shape == (240, 320, 3)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [n.replace(".png", "_bokeh.png") for n in names] + ["manifest.jsonl"])  # no partial or temporary file
    rows = Manifest(tmp_path / "out" / "manifest.jsonl").read()
    assert sum(is_done(row, row["output"]) for row in rows.values()) == len(names)


def test_a_local_cluster_leaves_this_process_environment_as_it_was():
    """Dask's nannies write the workers' environment (NUMBA_NUM_THREADS, ...) into this process
    before spawning them; a changed NUMBA_NUM_THREADS left behind makes numba refuse to compile
    any later kernel here."""
    before = dict(os.environ)
    with open_client(workers=1):
        assert dict(os.environ) == before
    assert dict(os.environ) == before

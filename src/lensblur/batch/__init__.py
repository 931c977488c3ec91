"""Batches of photos, synthetic scenes and evaluations on Dask (``lensblur batch``; see docs/batch.md).

    run_batch(inputs, outdir, render_args)   render every photo, write a manifest, resumable
    open_client(workers, scheduler)          a Dask client on a local or remote cluster
    map_tasks(client, tasks)                 the engine synth and eval run on too
"""

from __future__ import annotations

import contextlib
import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path

from lensblur.batch.cluster import open_client, map_tasks
from lensblur.batch.discovery import DEFAULT_NAME, Job, plan_jobs
from lensblur.batch.manifest import DONE, FAILED, Manifest, is_done
from lensblur.batch.tasks import render_task
from lensblur.errors import InputError, OutputError

__all__ = ["BatchSummary", "run_batch", "open_client", "map_tasks", "render_options", "DEFAULT_NAME"]


@dataclass
class BatchSummary:
    """done/failed/skipped: manifest rows of this run (skipped: already done before);
    manifest: its path."""

    done: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    manifest: Path | None = None


def render_options(render_args: list[str] | None = None):
    """The options of ``lensblur render`` parsed from its command-line form (e.g. ``["--blur",
    "30", "--shape", "blades:6"]``), as the argparse namespace that render_photo takes."""
    import argparse

    from lensblur.commands.render import add_render_options

    parser = argparse.ArgumentParser(prog="lensblur batch", add_help=False, exit_on_error=False)
    add_render_options(parser)
    try:
        return parser.parse_args(list(render_args or []))
    except (argparse.ArgumentError, SystemExit) as error:
        raise InputError(f"bad render option: {error}") from None


def run_batch(inputs: list[str], outdir: str | Path, options=None, *, name: str = DEFAULT_NAME,
              recursive: bool = False, depth_dir: str | Path | None = None, manifest: str | Path | None = None,
              overwrite: bool | None = None, workers: int | None = None, scheduler: str | None = None,
              client=None, progress=None) -> BatchSummary:
    """Render every photo of ``inputs`` (files, folders, glob patterns) into ``outdir``.

    options: a namespace from :func:`render_options` (or a list of render arguments); its
    ``overwrite`` applies unless ``overwrite`` is given. name: output file pattern with {stem},
    {ext}, {name}. depth_dir: depth maps matched by stem. manifest: JSON lines (or .csv) path,
    default OUTDIR/manifest.jsonl. workers/scheduler: the cluster to open once the photos are
    found (see :func:`open_client`; workers 0 renders in this process), unless ``client`` (an
    open Dask client) is given. progress: optional callable(row, total), called with row None
    once the photos to render are known, then after each photo.
    A photo whose output exists and whose last manifest row says done is skipped unless
    overwriting. A photo's failure is a row, never an exception; raises UsageError for a bad
    ``name`` or two photos with one output, InputError when nothing is found or the manifest or
    cluster is unusable, OutputError for an unusable OUTDIR. Returns a :class:`BatchSummary`.
    """
    options = _absolute_paths(render_options(options) if options is None or isinstance(options, list) else options)
    overwrite = options.overwrite if overwrite is None else overwrite
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {outdir}: {error.strerror or error}") from None
    jobs = plan_jobs(inputs, outdir, pattern=name, recursive=recursive, depth_dir=depth_dir)
    if not jobs:
        raise InputError(f"no photos found in {' '.join(map(str, inputs))}")
    book = Manifest(manifest or outdir / "manifest.jsonl")
    previous = book.read()
    summary = BatchSummary(manifest=book.path)
    todo = []
    for job in jobs:
        row = previous.get(job.input)
        if not overwrite and is_done(row, job.output):
            summary.skipped.append(job)
            continue
        # A task may replace its output when asked to, when the file was not there when the batch
        # started (a retry after its worker died), or when this photo's manifest row names it;
        # any other file already there is the user's and is refused.
        replace = overwrite or not Path(job.output).exists() or bool(row) and row.get("output") == job.output
        todo.append((job, replace))
    for folder in {Path(job.output).parent for job, _ in todo}:
        folder.mkdir(parents=True, exist_ok=True)
    tasks = [functools.partial(render_task, job, _with_overwrite(options, replace)) for job, replace in todo]
    pixels = [_pixels(job.input) for job, _ in todo]
    cluster = contextlib.nullcontext(client) if client is not None or not todo else open_client(workers, scheduler)
    try:
        with cluster as client:
            _render_all(client, todo, tasks, pixels, book, summary, progress)
    finally:
        _remove_temporaries(job.output for job, _ in todo)
    return summary


def _render_all(client, todo, tasks, pixels, book, summary, progress) -> None:
    if progress:
        progress(None, len(todo))
    for index, row, error in map_tasks(client, tasks, pixels=pixels):
        if error is not None:
            row = {"input": todo[index][0].input, "output": todo[index][0].output, "seconds": 0.0,
                   "status": FAILED, "error": f"worker failed: {type(error).__name__}: {error}"}
        book.append(row)
        (summary.done if row["status"] == DONE else summary.failed).append(row)
        if progress:
            progress(row, len(todo))


def _absolute_paths(options):
    """A copy of ``options`` whose file options are absolute, as workers may run in other folders,
    and whose depth model is resolved (lensblur.depth.model_choice.resolve_for_workers)."""
    from lensblur.depth.model_choice import own_depth_model, resolve_for_workers
    from lensblur.depth_source import AUTO, EMBEDDED, ESTIMATE

    options = copy.copy(options)
    for key in ("matte", "checkpoint", "depth"):
        value = getattr(options, key, None)
        if not value or key == "depth" and value in (AUTO, EMBEDDED, ESTIMATE):
            continue
        setattr(options, key, str(Path(value).expanduser().resolve()))
    # the depth model (option, environment or settings file) is resolved once, here
    options.depth_model = resolve_for_workers(getattr(options, "depth_model", None),
                                              getattr(options, "depth_preset", None),
                                              own_depth_model(getattr(options, "renderer", None)))
    return options


def _with_overwrite(options, overwrite: bool):
    options = copy.copy(options)
    options.overwrite = overwrite
    return options


def _pixels(path: str) -> int:
    """Width × height from the file's header (0 when it cannot be read: the render will say why)."""
    from PIL import Image

    from lensblur.io.images import heif_support

    heif_support()
    try:
        with Image.open(path) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - the task reports unreadable files
        return 0


def _remove_temporaries(outputs) -> None:
    """Delete temporary files left beside the outputs by workers killed mid-write."""
    for output in outputs:
        output = Path(output)
        for temp in output.parent.glob(f".{output.name}.*.part{output.suffix}"):
            with contextlib.suppress(OSError):
                temp.unlink()

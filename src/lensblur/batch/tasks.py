"""The Dask task of a batch: render one photo and describe the outcome as a manifest row."""

from __future__ import annotations

import argparse
import copy
import time
import warnings

from lensblur.batch.discovery import Job
from lensblur.batch.manifest import DONE, FAILED
from lensblur.errors import LensblurError


def render_task(job: Job, options: argparse.Namespace) -> dict:
    """Render ``job.input`` to ``job.output`` with the ``render`` options in ``options``.

    Never raises: any failure becomes a row with status ``failed`` and a one-line error. The
    output is written atomically (temporary file, then rename), replacing an existing file only
    when ``options.overwrite`` (the batch sets it for outputs it is itself redoing).
    Returns the manifest row: input, output, depth_source, focus, K, seconds, status, error.
    """
    from lensblur.commands.render import render_photo

    row = {"input": job.input, "output": job.output, "depth_source": None, "focus": None, "K": None,
           "seconds": 0.0, "status": FAILED, "error": job.error}
    if job.error:
        return row
    args = copy.copy(options)
    args.input, args.output, args.verbose = job.input, job.output, False
    if job.depth is not None:
        args.depth = job.depth
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rendered = render_photo(args)
        row.update(depth_source=rendered.depth_source, focus=round(rendered.focus_disparity, 6),
                   K=round(rendered.blur, 4), status=DONE)
    except LensblurError as error:
        row["error"] = str(error)
    except MemoryError:
        row["error"] = "out of memory: give the workers more memory or fewer threads"
    except Exception as error:  # noqa: BLE001 - one photo's bug must not stop the batch
        row["error"] = f"internal error: {type(error).__name__}: {error}"
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row

"""Progress reporting that is silent unless a step takes long enough to be worth showing."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(total: int, description: str, quiet: bool = False):
    """A tqdm bar on stderr that appears only after one second, and never when ``quiet`` or when
    stderr is not a terminal (a log file or a pipe gets nothing but errors)."""
    bar = tqdm(total=total, desc=description, disable=quiet or not sys.stderr.isatty(), file=sys.stderr, delay=1.0,
               leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()

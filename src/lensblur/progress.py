"""Progress reporting that is silent unless a step takes long enough to be worth showing."""

from __future__ import annotations

import sys
from contextlib import contextmanager


class _Silent:
    """What :func:`progress_bar` yields when no bar can show: tqdm's calls lensblur makes, doing
    nothing (``write`` still prints), without importing tqdm (≈0.1 s of start-up)."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def reset(self, total: float | None = None) -> None:
        pass

    @staticmethod
    def write(text: str, file=None) -> None:
        print(text, file=file or sys.stdout)


@contextmanager
def progress_bar(total: int, description: str, quiet: bool = False):
    """A tqdm bar on stderr that appears only after one second, and never when ``quiet`` or when
    stderr is not a terminal (a log file or a pipe gets nothing but errors)."""
    if quiet or not sys.stderr.isatty():
        yield _Silent()
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, file=sys.stderr, delay=1.0, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()

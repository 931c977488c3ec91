"""Atomic file output: write to a temporary file beside the target, then rename it into place.

A reader never sees a half-written file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lensblur.errors import OutputError

# Read once: os.umask can only be queried by setting it, which is not thread-safe.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_output(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """Raise OutputError unless ``path`` can be created (folder exists and is writable, the file
    does not exist or ``overwrite`` is set, and it is none of the ``inputs``: paths, None skipped,
    never replaced even with ``overwrite``); returns it as a Path."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    for source in inputs:
        if source is not None and same_file(path, Path(source)):
            raise OutputError(f"refusing to overwrite the input {path}")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: folder {folder} is not writable")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists (use --overwrite to replace it)")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Context manager yielding a temporary path in the same folder as ``path``.

    Write the whole file to the yielded path; when the block ends without an exception the file is
    fsynced and renamed onto ``path`` (os.replace, atomic on one file system). On an exception the
    temporary file is deleted and the exception propagates. Refuses an existing ``path`` unless
    ``overwrite``; a missing or unwritable folder raises OutputError.
    """
    path = check_output(path, overwrite)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix,
                                             dir=path.parent)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        if not temp.exists() or temp.stat().st_size == 0:
            raise OutputError(f"cannot write {path}: nothing was written")
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        # mkstemp creates 0600 files; give the output the permissions a plain open() would.
        os.chmod(temp, 0o666 & ~_UMASK)
        if path.exists() and not overwrite:  # appeared while we were writing
            raise OutputError(f"{path} already exists (use --overwrite to replace it)")
        os.replace(temp, path)
    except OSError as error:
        _remove(temp)
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        _remove(temp)
        raise


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (by inode when both exist, else by path)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _remove(temp: Path) -> None:
    with contextlib.suppress(OSError):
        temp.unlink()

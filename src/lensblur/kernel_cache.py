"""Where numba keeps lensblur's compiled kernels, and telling the user when it compiles them.

numba compiles a kernel the first time it runs (for the scatter renderer about 25 s on two cores)
and keeps the machine code in its on-disk cache (every kernel is ``@njit(cache=True)``), so later
processes only load it (well under a second). ``python -m lensblur.compile`` (part of the README's
set-up) compiles them at install time; a render that still finds the cache cold says so on stderr
when stderr is a terminal (:func:`announce_compilation`).

Where the cache lives (numba's own order): ``$NUMBA_CACHE_DIR`` if set; else ``__pycache__`` next
to the sources when that folder is writable (a clone or an editable install); else numba's user
cache folder (``~/.cache/numba``). :func:`ensure_cache_dir` adds a last resort, a folder in the
system's temporary directory, for an install where neither is writable.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_announcing = False


def ensure_cache_dir() -> str | None:
    """Point ``NUMBA_CACHE_DIR`` at a writable temporary folder when numba would find no writable
    cache location (read-only site-packages and an unwritable home); must run before numba is
    imported. Returns the folder it set, or None when numba's own choice is writable."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(_PACKAGE / "renderers" / "__pycache__") or _writable(_user_cache_dir()):
        return None
    folder = Path(tempfile.gettempdir()) / f"lensblur-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None  # nowhere to cache: numba then compiles in every process
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return str(folder)


def _user_cache_dir() -> Path:
    # numba.misc.appdirs' user_cache_dir on Linux and macOS, without importing numba
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def _writable(folder: Path) -> bool:
    """True when ``folder`` (or the nearest existing folder above it, where it would be made) is writable."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def announce_compilation(stream=None) -> None:
    """Print one line on ``stream`` (default stderr) when numba starts compiling a kernel that was
    not in its cache, so a first render's wait is explained; only when the stream is a terminal
    (a log file or a pipe stays clean: a successful command writes nothing on stderr)."""
    global _announcing
    stream = stream or sys.stderr
    if _announcing or not getattr(stream, "isatty", lambda: False)():
        return
    from lensblur import aot

    if aot.load() is not None:
        return  # the ahead-of-time compiled kernels serve: nothing to compile (and numba stays unloaded)
    from numba.core import event

    class _Once(event.Listener):
        said = False

        def on_start(self, _event):
            if not self.said:
                self.said = True
                print("lensblur: compiling the renderer's kernels (once; `python -m lensblur.compile` does it "
                      "ahead)…", file=stream, flush=True)

        def on_end(self, _event):
            pass

    event.register("numba:compile", _Once())
    _announcing = True


def kernel_stats() -> dict:
    """Cache statistics of every numba kernel lensblur has called so far: ``{"kernels": n,
    "cache_hits": h, "cache_misses": m, "cache_dirs": [...]}``; a miss is a compilation."""
    from numba.core.registry import CPUDispatcher

    hits = misses = 0
    kernels, folders = set(), set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("lensblur") or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and id(value) not in kernels:
                used_hits, used_misses = sum(value.stats.cache_hits.values()), sum(value.stats.cache_misses.values())
                if not used_hits + used_misses:
                    continue  # never called from Python (inlined into other kernels, or not used yet)
                kernels.add(id(value))
                hits, misses = hits + used_hits, misses + used_misses
                cache = getattr(value, "_cache", None)
                if getattr(cache, "cache_path", None):
                    folders.add(cache.cache_path)
    return {"kernels": len(kernels), "cache_hits": hits, "cache_misses": misses, "cache_dirs": sorted(folders)}

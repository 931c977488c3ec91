"""Ahead-of-time compiled kernels: a render that does not import numba.

Importing numba and loading its cached kernels costs about 1.4 s per process, longer than a
small render takes. ``python -m lensblur.compile`` (the README's set-up) therefore also builds
one C extension module with ``numba.pycc`` from the numba kernels of :data:`KERNEL_MODULES`
(the renderer's, the tone encoder's and the depth refinement's), one export per argument-type
signature those kernels were called with during its warm-up renders (:func:`build`).

The kernel modules take ``njit`` and ``prange`` from here instead of from numba. When a fresh
module is found (:func:`load`) a kernel is a :class:`Kernel`: a call whose arguments match an
exported signature runs the compiled function, at every image size, unless a JIT kernel made
earlier in the process switched it to numba's kernels (its import is then paid). pycc does not
support ``parallel=True`` (``prange`` is plain ``range`` there), but the exports are built for
this CPU and release the GIL, and a kernel declared ``chunked=True`` (its last two arguments
``lo, hi`` bound its ``prange`` loop) runs that range in chunks on :func:`get_num_threads`
threads (:func:`lensblur.threads.run_chunks`), as numba's ``prange`` would.
Any other call goes to numba's JIT kernel, made from the same Python function on first use. Without a fresh
module, ``njit`` *is* ``numba.njit`` and nothing changes. The module is fresh when its name holds
:func:`source_key`, a hash of the kernel sources, numba's version, Python, the machine and its
CPU; a stale, foreign or broken one is ignored.

Processes that render many times (``lensblur serve``, ``lensblur batch``) call :func:`prefer_jit`:
they pay numba's import once and then run its kernels, whose loops numba itself runs in parallel.
``LENSBLUR_KERNELS=jit`` ignores the compiled module; ``aot`` uses it even after a JIT kernel was
made (both also for measuring and testing the routes). ``LENSBLUR_AOT_DIR`` names the one folder
where it is built and looked for.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import stat
import sys
import tempfile
import types
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
KERNEL_MODULES = {  # module name -> its source, relative to the package
    "lensblur.renderers.kernels": "renderers/kernels.py",
    "lensblur.io.tone_lookup": "io/tone_lookup.py",
    "lensblur.depth.refine": "depth/refine.py",
}
PREFIX = "lensblur_aot_"
FORMAT = 3  # of the module and its manifest: raise it when build() or the manifest changes (2: no GIL, host CPU;
#            3: ``noalias`` kernels)
_use_jit = False  # set once a JIT kernel exists: numba's import is paid
CHUNKED: set[str] = set()  # "module:kernel" of the kernels declared ``chunked=True`` (whatever the route)
NOALIAS: set[str] = set()  # "module:kernel" of the kernels declared ``noalias=True``

_loaded: tuple[types.ModuleType, dict] | None | bool = False  # False: not looked for yet


def mode() -> str:
    """``LENSBLUR_KERNELS``: "auto" (default), "jit" or "aot"."""
    value = os.environ.get("LENSBLUR_KERNELS", "auto").strip().lower()
    return value if value in ("jit", "aot") else "auto"


def source_key() -> str:
    """16 hex digits naming the compiled module that fits these kernel sources (and the warm-up
    that chooses the signatures, and :data:`FORMAT`), this numba, this Python and this machine
    (without importing numba)."""
    digest = hashlib.sha256()
    # the kernels, plus the warm-up that chooses the signatures to export
    for relative in sorted(KERNEL_MODULES.values()) + ["compile.py"]:
        digest.update(relative.encode() + b"\0" + (_PACKAGE / relative).read_bytes())
    digest.update(f"{FORMAT}|{_numba_version()}|{sys.version}|{platform.machine()}|{sys.platform}|{_cpu()}".encode())
    return digest.hexdigest()[:16]


def _cpu() -> str:
    """This CPU's model and instruction-set features (the module is built for them, as numba's
    JIT kernels are): the first processor of /proc/cpuinfo on Linux, else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            lines = []
            for line in info:
                if not line.strip():
                    break
                if line.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part"):
                    lines.append(line.strip())
        if lines:
            return "\n".join(lines)
    except OSError:
        pass
    return platform.processor()


def _numba_version() -> str:
    spec = importlib.util.find_spec("numba")
    if spec is None or not spec.origin:
        return "none"
    site = Path(spec.origin).parent.parent
    found = sorted(site.glob("numba-*.dist-info"))
    return found[-1].name if found else "unknown"


def folders() -> list[Path]:
    """Where the compiled module may live, in order: ``__pycache__`` in the package (a clone or an
    editable install), the user's cache folder, a private folder in the temporary directory; only
    ``$LENSBLUR_AOT_DIR`` when that is set."""
    if os.environ.get("LENSBLUR_AOT_DIR"):
        return [Path(os.environ["LENSBLUR_AOT_DIR"])]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lensblur"
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return [_PACKAGE / "__pycache__", cache, Path(tempfile.gettempdir()) / f"lensblur-aot-{uid}"]


def _trusted(folder: Path) -> bool:
    # the temporary directory is shared: only load from a folder that is ours and private
    if not folder.is_dir():
        return False
    if folder.parent != Path(tempfile.gettempdir()) or not hasattr(os, "getuid"):
        return True
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load() -> tuple[types.ModuleType, dict] | None:
    """:func:`find` for the current :func:`source_key`, or None (none built, stale, unloadable,
    or ``LENSBLUR_KERNELS=jit``). Looked for once per process."""
    global _loaded
    if _loaded is False:
        _loaded = None if mode() == "jit" else find(source_key())
    return _loaded or None


def find_path(key: str, where: list[Path] | None = None) -> Path | None:
    """The compiled module's file for ``key`` in the first of ``where`` (default :func:`folders`)
    that holds it with its manifest, or None."""
    name = PREFIX + key
    for folder in where or folders():
        folder = Path(folder)
        if not (folder / f"{name}.json").is_file() or not _trusted(folder):
            continue
        for path in sorted(glob.glob(str(folder / f"{name}.*"))):
            if not path.endswith(".json"):
                return Path(path)
    return None


def find(key: str) -> tuple[types.ModuleType, dict] | None:
    """The compiled module for ``key`` loaded, with its exports ({"module:kernel": [(function,
    argument kinds)]}), or None when there is none or it does not load (whatever the route)."""
    path = find_path(key)
    if path is None:
        return None
    name = PREFIX + key
    try:
        manifest = json.loads(path.with_name(f"{name}.json").read_text())
        if manifest.get("key") != key:
            return None
        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
        spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        exports = {kernel: [(getattr(module, export), tuple(_parse(key) for key in keys))
                            for export, keys in entries]
                   for kernel, entries in manifest["kernels"].items()}
    except (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # a broken or foreign file: the JIT kernels serve
    return module, exports


def _parse(key: str):
    """A type key of the manifest (see :func:`_numba_type_key`) as a tree for :func:`accepts`."""
    if key.startswith("("):
        items, depth, current = [], 0, ""
        for char in key[1:-1]:
            if char == "," and depth == 0:
                items.append(current)
                current = ""
                continue
            depth += (char == "(") - (char == ")")
            current += char
        if current:
            items.append(current)
        return ("tuple", tuple(_parse(item) for item in items))
    if key.endswith("]"):
        import numpy as np  # loaded by now: the compiled kernels take arrays

        dtype, shape = key[:-1].split("[")
        readonly = shape.endswith("r")
        shape = shape.rstrip("r")
        # a dtype object: comparing two is one C call, dtype.name builds a string every time
        return ("array", np.dtype(dtype), int(shape[:-1]), shape[-1], readonly)
    return ("scalar", key)


def accepts(kind, value) -> bool:
    """Whether ``value`` may be passed where a compiled export takes type ``kind`` (from
    :func:`_parse`): the same dtype and dimensions, a layout the array has (C or F contiguity;
    'A' takes any), writable unless the export takes it read-only; scalars of exactly numba's
    type for them (Python int: int64, float: float64, bool: bool; NumPy scalars: their dtype)."""
    if kind[0] == "tuple":
        return isinstance(value, tuple) and len(value) == len(kind[1]) and all(
            accepts(item, element) for item, element in zip(kind[1], value))
    if kind[0] == "array":
        _, dtype, ndim, layout, readonly = kind
        flags = getattr(value, "flags", None)
        if flags is None or getattr(value, "ndim", 0) != ndim or value.dtype != dtype:
            return False
        if not readonly and not flags.writeable:
            return False
        return layout == "A" or (flags.c_contiguous if layout == "C" else flags.f_contiguous)
    if isinstance(value, bool):
        name = "bool"
    elif isinstance(value, int):
        name = "int64"
    elif isinstance(value, float):
        name = "float64"
    elif getattr(value, "shape", None) == ():
        name = value.dtype.name
    else:
        return False
    return kind[1] == name


def type_key(value) -> str:
    """An argument's type in the manifest's notation (for messages): ``float32[2C]``, ``int64``…"""
    if isinstance(value, tuple):
        return "(" + ",".join(type_key(item) for item in value) + ")"
    if getattr(value, "ndim", 0) > 0:
        flags = value.flags
        layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
        return f"{value.dtype.name}[{value.ndim}{layout}{'' if flags.writeable else 'r'}]"
    if isinstance(value, bool):
        return "bool"
    return {int: "int64", float: "float64"}.get(type(value)) or getattr(getattr(value, "dtype", None), "name",
                                                                       type(value).__name__)


def _numba_type_key(kind) -> str:
    """numba's type of an exported kernel's argument as the manifest's text: ``float32[3C]``
    (dtype[ndim layout, 'r' when read-only]), ``int64``, ``(…,…)`` for tuples."""
    from numba.core import types as nt

    if isinstance(kind, nt.BaseTuple):
        return "(" + ",".join(_numba_type_key(item) for item in kind) + ")"
    if isinstance(kind, nt.Array):
        return f"{kind.dtype}[{kind.ndim}{kind.layout}{'' if kind.mutable else 'r'}]"
    if isinstance(kind, nt.Boolean):
        return "bool"
    return str(kind)


class Kernel:
    """A kernel with a compiled module present: the compiled export for a matching call, else
    numba's JIT kernel (made on first need from the same function; its ``prange`` is numba's and
    the kernels it calls are their JIT versions)."""

    def __init__(self, function, options: dict, exports: list, chunked: bool = False):
        self.py_func = function
        self.options = options
        self.exports = exports  # [(compiled function, argument kinds)]
        self.chunked = chunked  # the last two arguments bound the prange loop: threads may split it
        self._jit = None
        self.__name__, self.__qualname__, self.__doc__ = function.__name__, function.__qualname__, function.__doc__
        self.__module__ = function.__module__

    def __call__(self, *args):
        route = mode()
        if self.exports and (route == "aot" or (route == "auto" and not _use_jit)):
            for compiled, kinds in self.exports:
                if len(kinds) == len(args) and all(accepts(kind, arg) for kind, arg in zip(kinds, args)):
                    if self.chunked:
                        from lensblur.threads import run_chunks

                        return run_chunks(compiled, args)
                    return compiled(*args)
        return self.jit()(*args)

    def jit(self):
        """numba's dispatcher for this kernel (imports numba)."""
        global _use_jit
        if self._jit is None:
            import numba

            _use_jit = True

            namespace = dict(self.py_func.__globals__)
            namespace["prange"] = numba.prange
            for key in self.py_func.__code__.co_names:  # the kernels this one calls, as JIT kernels
                if isinstance(namespace.get(key), Kernel) and namespace[key] is not self:
                    namespace[key] = namespace[key].jit()
            function = types.FunctionType(self.py_func.__code__, namespace, self.py_func.__name__,
                                          self.py_func.__defaults__, self.py_func.__closure__)
            function.__qualname__ = self.py_func.__qualname__
            namespace[self.py_func.__name__] = function
            self._jit = numba.njit(**self.options)(function)
        return self._jit


def njit(function=None, *, chunked: bool = False, noalias: bool = False, **options):
    """``numba.njit`` for lensblur's kernels (same arguments, used as ``@njit(...)``): numba's own
    when no compiled module is loaded, else a :class:`Kernel`. chunked: the kernel's last two
    arguments ``lo, hi`` bound its outer ``prange`` loop, whose iterations are independent and
    write disjoint outputs, and it returns nothing; the compiled route then runs [lo, hi) in
    chunks on threads (:func:`lensblur.threads.run_chunks`); callers pass the whole range.
    noalias: no two array arguments of the kernel ever share memory; its compiled export is then
    built with numba's ``noalias`` flag (as numba's ``parallel=True`` builds a ``prange`` body), so
    the compiler may keep values in registers and vectorise loops across array arguments. It
    changes no arithmetic (the JIT route ignores it)."""
    def decorate(fn):
        if chunked:
            CHUNKED.add(f"{fn.__module__}:{fn.__name__}")
        if noalias:
            NOALIAS.add(f"{fn.__module__}:{fn.__name__}")
        found = load()
        if found is None:
            import numba

            return numba.njit(**options)(fn)
        return Kernel(fn, options, found[1].get(f"{fn.__module__}:{fn.__name__}", []), chunked)

    return decorate(function) if callable(function) else decorate


def prefer_jit() -> None:
    """For a process that renders many times (the web app, a batch, a throughput benchmark): numba's
    parallel JIT kernels for every call, since numba's import is paid once there (per call the two
    routes cost about the same CPU time: benchmarks/results/kernel_cpu.md); sets
    ``LENSBLUR_KERNELS=jit`` (inherited by worker processes) unless the user chose ``aot``."""
    if mode() == "auto":
        os.environ["LENSBLUR_KERNELS"] = "jit"


def get_num_threads() -> int:
    """numba's thread count when numba is loaded, else what it would be (``NUMBA_NUM_THREADS`` or
    the CPU count): sizes work split into bands, and the compiled kernels' thread pool
    (lensblur.threads), without importing numba for it."""
    if "numba" in sys.modules:
        return sys.modules["numba"].get_num_threads()
    try:
        return max(1, int(os.environ.get("NUMBA_NUM_THREADS", "")))
    except ValueError:
        return _cpu_count()


@functools.cache
def _cpu_count() -> int:
    # os.cpu_count() reads /sys on every call (about 50 µs), and a render asks once per kernel call
    return max(1, os.cpu_count() or 1)


def __getattr__(name):
    if name == "prange":  # plain range when the compiled module serves (Kernel.jit restores numba's)
        if load() is None:
            import numba

            return numba.prange
        return range
    raise AttributeError(name)


def build(folder: Path | None = None, verbose: bool = False) -> Path:
    """Compile every kernel of :data:`KERNEL_MODULES` that has been called in this process (so
    run the warm-up renders first, with ``LENSBLUR_KERNELS=jit``) into
    ``folder/lensblur_aot_<key>.<ext>`` (default: the first writable of :func:`folders`), one
    export per signature it was called with, for this CPU (its model and features, as numba's
    JIT does), each releasing the GIL while it runs; writes the manifest beside it and removes
    older builds there. Returns the module's path. Needs a C compiler."""
    import importlib

    import numba
    from numba.core.registry import CPUDispatcher

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc's pending-deprecation notice
        from numba.pycc import CC

    key = source_key()
    name = PREFIX + key
    folder = Path(folder) if folder is not None else _writable_folder()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cc = CC(name)
    cc.output_dir = str(folder)
    cc.verbose = verbose
    manifest: dict[str, list] = {}
    for module_name in KERNEL_MODULES:
        module = importlib.import_module(module_name)
        for attribute, value in sorted(vars(module).items()):
            dispatcher = value.jit() if isinstance(value, Kernel) else value
            if not isinstance(dispatcher, CPUDispatcher) or dispatcher.py_func.__module__ != module_name:
                continue
            for index, args in enumerate(dispatcher.signatures):
                export = f"{module_name.rsplit('.', 1)[-1]}__{attribute}__{index}"
                cc.export(export, dispatcher.overloads[args].signature)(dispatcher.py_func)
                manifest.setdefault(f"{module_name}:{attribute}", []).append(
                    [export, [_numba_type_key(arg) for arg in args]])
    if not manifest:
        raise RuntimeError("no kernel has been called: nothing to compile")
    with _for_this_cpu_without_the_gil():
        cc.compile()
    built = [path for path in glob.glob(str(folder / f"{name}.*")) if not path.endswith(".json")]
    (folder / f"{name}.json").write_text(json.dumps({"key": key, "numba": numba.__version__,
                                                     "kernels": manifest}, indent=1))
    for old in glob.glob(str(folder / f"{PREFIX}*")):
        if not Path(old).name.startswith(name):
            Path(old).unlink(missing_ok=True)
    return Path(built[0])


@contextlib.contextmanager
def _for_this_cpu_without_the_gil():
    """During a pycc build only: (1) its compiler flags with ``release_gil`` set, so that each
    export's Python wrapper releases the GIL around the kernel (numba.pycc builds with plain
    ``Flags()``, which holds it), as ``@njit(nogil=True)`` does: threads can then run kernels
    side by side (lensblur.threads); (2) code for this CPU's model and features, as numba's JIT
    kernels get (pycc's default is the generic x86-64 model: no AVX), which :func:`source_key`
    names through :func:`_cpu`; (3) numba's ``noalias`` flag for the kernels declared
    ``noalias=True`` (pycc compiles every export with one set of flags): without it, every store
    into one array argument may change any other, so loads are repeated and loops stay scalar
    (numba builds a JIT kernel's ``prange`` body with ``noalias``); about 10 % of
    ``composite_over``'s and 7 % of ``slab_block_sum``'s CPU time on a 12 MP render
    (benchmarks/results/kernel_pairs_noalias.md)."""
    from numba.core import codegen
    from numba.pycc import compiler

    plain_flags = compiler.Flags
    plain_options = codegen.AOTCPUCodegen._customize_tm_options

    class ReleaseGilFlags(plain_flags):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    def host_options(self, options):
        plain_options(self, options)
        options["cpu"] = self._get_host_cpu_name()
        options["features"] = self._get_host_cpu_features()

    plain_compile = compiler.compile_extra

    def compile_kernel(typingctx, targetctx, func, args, return_type, flags, *rest, **options):
        if f"{func.__module__}:{func.__name__}" in NOALIAS:
            flags = flags.copy()
            flags.noalias = True
        return plain_compile(typingctx, targetctx, func, args, return_type, flags, *rest, **options)

    compiler.Flags = ReleaseGilFlags
    codegen.AOTCPUCodegen._customize_tm_options = host_options
    compiler.compile_extra = compile_kernel
    try:
        yield
    finally:
        compiler.Flags = plain_flags
        codegen.AOTCPUCodegen._customize_tm_options = plain_options
        compiler.compile_extra = plain_compile


def _writable_folder() -> Path:
    for folder in folders():
        for candidate in (folder, *folder.parents):
            if candidate.exists():
                if candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK):
                    return folder
                break
    raise OSError("no writable folder for the compiled kernels")

"""The ``lensblur`` command line: a dispatcher over the modules in ``lensblur.commands``.

Exit codes: 0 done, 1 bad input (one line on stderr, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys
import threading
import warnings

from lensblur import __version__
from lensblur.commands import COMMAND_MODULES
from lensblur.errors import LensblurError

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit 2); --help still prints the full usage."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module.

    only: build just this command's subparser (its module is the only one imported, which keeps
    start-up short: ``render`` must not import torch, the web app or the trainers)."""
    parser = _Parser(
        prog="lensblur",
        description="Realistic lens blur (bokeh, shallow depth of field) for any photo.",
        epilog="Run 'lensblur COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"lensblur {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if only is None else [only]:
        module = importlib.import_module(f"lensblur.commands.{name}")
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.HELP,
                                  epilog=module.EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        sub.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (also used by ``python -m lensblur``).

    argv: the arguments after the program name. Without it (the ``lensblur`` script, ``python -m
    lensblur``) this is the process's entry and it first sets the process up for one command
    (:func:`own_process`); given a list (tests, scripts calling the CLI in their own process) the
    caller's thread and garbage-collector settings are left alone.
    """
    if argv is None:
        own_process()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command if command in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    _imports_done()
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False) or args.debug)
    try:
        with termination_handled(), _captured_warnings(verbose):
            return int(args.run(args) or EXIT_OK)
    except LensblurError as error:
        print(f"lensblur: error: {error}", file=sys.stderr)
        return error.exit_code
    except Terminated as stop:
        print(f"lensblur: {'interrupted' if stop.code == 128 + signal.SIGINT else 'terminated'}", file=sys.stderr)
        return int(stop.code)
    except KeyboardInterrupt:
        print("lensblur: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("lensblur: error: out of memory: try a smaller image or --max-pixels", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - the user gets one line, developers use --debug
        if args.debug or os.environ.get("LENSBLUR_DEBUG"):
            raise
        print(f"lensblur: internal error: {type(error).__name__}: {error} (rerun with --debug for details)",
              file=sys.stderr)
        return EXIT_BAD_INPUT


BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def own_process() -> None:
    """Settings for a process that exists to run one ``lensblur`` command; only the CLI entry
    calls this, never ``import lensblur``.

    - numpy's OpenBLAS on one thread (``OPENBLAS_NUM_THREADS=1`` unless the user set it; it only
      takes effect before numpy is loaded, which this module does not do). The one matrix product
      of a render (the luminance of the night-lamp test, ``lensblur.lamps``) is far too small to
      gain from threads, and OpenBLAS's worker threads then spin for a while, taking the second
      core from the compiled kernels (about 7 % of a ramp render's CPU samples, plus the kernel's
      scheduling of them).
    - The cyclic garbage collector off while the command's modules are imported (a full collection
      every few hundred new objects, ~5 % of a small render), then those modules' objects frozen
      out of later collections (:func:`_imports_done`).
    """
    global _collector_held
    os.environ.setdefault(BLAS_THREADS, "1")
    if gc.isenabled():
        gc.disable()
        _collector_held = True


_collector_held = False


def _imports_done() -> None:
    """End of the command's imports: give back the collector :func:`own_process` held."""
    global _collector_held
    if _collector_held:
        _collector_held = False
        gc.freeze()
        gc.enable()


class Terminated(SystemExit):
    """SIGTERM or SIGINT arrived; the exit code is 128 + the signal number."""


@contextlib.contextmanager
def termination_handled():
    """While inside, SIGTERM and SIGINT raise :class:`Terminated` in the main thread, so pending
    atomic writes remove their ``.NAME.part`` files on the way out (lensblur.io.atomic)."""
    def stop(signum, frame):
        raise Terminated(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _captured_warnings(verbose: bool):
    """Keep library warnings (Pillow on odd metadata, numpy, torch) and log records off stderr;
    with -v (or --debug) they are printed, one line each, once the command is done."""
    logging.basicConfig(level=logging.INFO if verbose else logging.CRITICAL + 1,
                        format="lensblur: note: %(message)s", stream=sys.stderr, force=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            if verbose:
                for message in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
                    print(f"lensblur: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

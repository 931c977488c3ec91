"""Subcommands of the ``lensblur`` command line, one module each.

Each module defines ``NAME``, ``HELP`` (one line), ``EXAMPLES`` (text shown under --help),
``add_arguments(parser)`` and ``run(args) -> int``. ``run`` raises
:class:`lensblur.errors.LensblurError` for bad input; the dispatcher in ``lensblur.cli`` prints
its message on one line and exits with its code. ``args.quiet`` is True when progress bars must
stay silent.
"""

COMMAND_MODULES = ["render", "batch", "info", "depth", "synth", "eval", "train", "export", "serve", "config"]

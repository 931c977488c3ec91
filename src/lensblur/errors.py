"""Exceptions whose message is one line a user can act on.

The command line prints ``str(error)`` alone (no traceback) and exits with ``exit_code``.
"""


class LensblurError(Exception):
    """Base class of the errors lensblur reports to a user; exit code 1 (bad input)."""

    exit_code = 1


class InputError(LensblurError):
    """An input file or value is missing, corrupt, of the wrong size or unsupported."""


class OutputError(LensblurError):
    """The output cannot be written (exists, unwritable, missing folder)."""


class UsageError(LensblurError):
    """The command line asks for something contradictory or malformed; exit code 2 (usage)."""

    exit_code = 2

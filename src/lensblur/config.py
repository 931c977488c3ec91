"""The user's settings file: ``$XDG_CONFIG_HOME/lensblur/config.toml`` (``~/.config/lensblur/config.toml``).

A flat TOML table of string values, e.g.::

    depth-model = "/home/me/models/depth_anything_v2_vits.onnx"
    depth-preset = "depth-anything-v2"

Read with :mod:`tomllib`; written by :func:`save` (string values only, so a few lines of quoting
suffice), atomically. Keys are in :data:`KEYS`. See docs/depth-models.md.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from lensblur.errors import InputError
from lensblur.io.atomic import atomic_output

KEYS = {
    "depth-model": "depth model used instead of the weight-free estimate: PATH.onnx, deeplens:PATH or "
                   "megadepth:PATH (environment: LENSBLUR_DEPTH_MODEL)",
    "depth-preset": "input/output convention of an ONNX depth model: depth-anything-v2 (default), midas, "
                    "midas-small, metric-depth (environment: LENSBLUR_DEPTH_PRESET)",
}


def config_path() -> Path:
    """The settings file: $XDG_CONFIG_HOME/lensblur/config.toml, or ~/.config/lensblur/config.toml."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "lensblur" / "config.toml"


def load() -> dict[str, str]:
    """The settings as a dict of key → string ({} when the file does not exist).

    A file that is not valid TOML, holds unknown keys or non-string values raises a one-line
    InputError naming the file (a broken settings file is never silently ignored).
    """
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"settings file {path}: cannot read it ({error})") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"settings file {path}: not valid TOML ({error}); fix it or delete it") from None
    for key, value in values.items():
        if key not in KEYS:
            raise InputError(f"settings file {path}: unknown key {key!r} (known: {', '.join(KEYS)})")
        if not isinstance(value, str):
            raise InputError(f"settings file {path}: {key} must be a string, got {type(value).__name__}")
    return values


def save(values: dict[str, str]) -> Path:
    """Write ``values`` (key → string) to the settings file atomically, creating its folder."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# lensblur settings: edit with 'lensblur config set/unset KEY'"]
    lines += [f"{key} = {_toml_string(values[key])}" for key in KEYS if key in values]
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes (\\", \\\\, \\n, \\uXXXX for controls) are TOML's too; DEL too."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def check_key(key: str) -> str:
    """``key`` when it is known, else a one-line InputError listing the known keys."""
    if key not in KEYS:
        raise InputError(f"unknown setting {key!r}: choose from {', '.join(KEYS)}")
    return key

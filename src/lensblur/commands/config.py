"""``lensblur config``: the user's settings (lensblur.config), e.g. the depth model to use by default."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lensblur import config
from lensblur.errors import InputError

NAME = "config"
HELP = "show or change your settings (the depth model every command uses by default)"
EXAMPLES = """examples:
  lensblur config set depth-model ~/models/depth_anything_v2_vits.onnx
  lensblur config set depth-model ~/models/dpt_hybrid_384.onnx --preset midas
  lensblur config set depth-model deeplens:runs/deeplens_depth.pt
  lensblur config get depth-model
  lensblur config list
  lensblur config unset depth-model

The file is $XDG_CONFIG_HOME/lensblur/config.toml (~/.config/lensblur/config.toml). The
environment variables LENSBLUR_DEPTH_MODEL and LENSBLUR_DEPTH_PRESET override it, and the
--depth-model option overrides both (--depth-model none: the weight-free estimate).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the actions of ``lensblur config``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    setter = actions.add_parser("set", help="set a value (a depth model is loaded and tried first)")
    setter.add_argument("key", choices=list(config.KEYS))
    setter.add_argument("value")
    setter.add_argument("--preset", help="with depth-model: the ONNX model's preset, stored with it")
    getter = actions.add_parser("get", help="print a value (empty and exit 1 when unset)")
    getter.add_argument("key", choices=list(config.KEYS))
    remover = actions.add_parser("unset", help="remove a value")
    remover.add_argument("key", choices=list(config.KEYS))
    actions.add_parser("list", help="print every setting, the overriding environment and the depth in use")
    actions.add_parser("path", help="print the settings file's path")


def run(args: argparse.Namespace) -> int:
    """Carry out the action; a bad value or a broken settings file is one InputError line."""
    if args.action == "path":
        print(config.config_path())
        return 0
    settings = config.load()
    if args.action == "get":
        if args.key not in settings:
            raise InputError(f"{args.key} is not set in {config.config_path()}")
        print(settings[args.key])
        return 0
    if args.action == "list":
        _print_list(settings)
        return 0
    if args.action == "unset":
        settings.pop(args.key, None)
        if args.key == "depth-model":
            settings.pop("depth-preset", None)  # a preset belongs to its model
        print(f"unset {args.key} in {config.save(settings)}")
        return 0
    settings.update(checked(args.key, args.value, args.preset, settings))
    print(f"set {args.key} = {settings[args.key]} in {config.save(settings)}")
    return 0


def checked(key: str, value: str, preset: str | None, settings: dict[str, str]) -> dict[str, str]:
    """The entries to store for ``key = value``: a depth model is loaded and run on a test
    picture (InputError if it is not a depth model of a known shape) and stored with an absolute
    path and its preset; a preset must be known and fit the model already set."""
    from lensblur.depth.model_choice import DepthModel, check_model, parse_model
    from lensblur.depth.onnx_model import PRESETS

    if preset is not None and key != "depth-model":
        raise InputError("--preset goes with 'config set depth-model'")
    if key == "depth-preset":
        preset, value = value, settings.get("depth-model")
        if preset not in PRESETS:
            raise InputError(f"unknown ONNX depth preset {preset!r}: choose from {', '.join(PRESETS)}")
        if value is None:
            return {"depth-preset": preset}
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown ONNX depth preset {preset!r}: choose from {', '.join(PRESETS)}")
    model = parse_model(value, preset, "lensblur config set")
    model = DepthModel(model.kind, str(Path(model.path).resolve()), model.preset, model.origin)
    check_model(model)
    stored = {"depth-model": model.spec}
    if model.preset:
        stored["depth-preset"] = model.preset
    elif key == "depth-model":
        settings.pop("depth-preset", None)
    return stored


def _print_list(settings: dict[str, str]) -> None:
    from lensblur.depth.model_choice import ENV_MODEL, ENV_PRESET, resolve_model

    print(f"settings file: {config.config_path()}")
    for key in config.KEYS:
        print(f"{key} = {settings.get(key, '(not set)')}")
    for name in (ENV_MODEL, ENV_PRESET):
        if os.environ.get(name, "").strip():
            print(f"environment {name} = {os.environ[name]} (overrides the file)")
    model = resolve_model()
    print(f"depth for photos without embedded depth: {model.describe() if model else 'automatic estimate'}")

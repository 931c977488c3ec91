"""``lensblur info``: what a photo holds (size, orientation, bit depth, profile, depth, matte)."""

from __future__ import annotations

import argparse
import io
import json

from PIL import Image, ImageCms

from lensblur.camera import camera_from_exif
from lensblur.commands.options import positive_int
from lensblur.depth_source import choose_depth
from lensblur.errors import LensblurError
from lensblur.io.embedded import list_embedded
from lensblur.io.images import DEFAULT_MAX_PIXELS, read_image
from lensblur.io.limits import LimitError

NAME = "info"
HELP = ("describe a photo: size, orientation, bit depth, colour profile, depth maps inside, and the depth "
        "and focus render would use")
EXAMPLES = """examples:
  lensblur info photo.jpg
  lensblur info portrait.heic --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur info``."""
    parser.add_argument("input", help="photo to describe")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--depth", metavar="FILE",
                        help="describe how this depth/disparity map file would be read (default: the depth the "
                             "photo holds, else the estimate)")
    parser.add_argument("--normalize", action="store_true",
                        help="as render --normalize: stretch the map file to its own min..max")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse images with more pixels than this (default 200 MP)")
    parser.add_argument("--depth-model", metavar="PATH.onnx|deeplens:PATH|megadepth:PATH|none",
                        help="as for render: the model whose estimate to describe (default: the one set "
                             "with LENSBLUR_DEPTH_MODEL or 'lensblur config', else the automatic estimate)")
    parser.add_argument("--depth-preset", metavar="NAME", help="as for render: the ONNX model's preset")


def describe(path: str, max_pixels: int = DEFAULT_MAX_PIXELS, depth: str | None = None,
             normalize: bool = False, model: str | None = None, preset: str | None = None) -> dict:
    """A dict describing the photo at ``path``; raises InputError when it cannot be read.

    depth, normalize: a depth-map file and ``--normalize``, as ``lensblur render`` takes them;
    ``disparity`` then says how that file's values become disparity. model, preset: the depth
    model as render's --depth-model/--depth-preset (None: the default)."""
    photo = read_image(path, max_pixels=max_pixels)
    height, width = photo.pixels.shape[:2]
    camera = camera_from_exif(photo.exif)
    return {
        "file": path,
        "format": photo.format,
        "width": width,
        "height": height,
        "orientation": _orientation(photo.exif),
        "bit_depth": photo.bit_depth,
        "channels": "grey" if photo.grey else ("RGBA" if photo.alpha is not None else "RGB"),
        "colour_profile": _profile_name(photo.icc_profile),
        "focal_length_mm": camera.focal_length_mm,
        "f_number": camera.f_number,
        "embedded": list_embedded(path),
        **_depth_and_focus(path, photo.pixels, max_pixels, depth, normalize, model, preset),
    }


def _depth_and_focus(path: str, pixels, max_pixels: int, depth: str | None, normalize: bool,
                     model: str | None, preset: str | None) -> dict:
    """What ``lensblur render`` would use: the depth source, how its values became disparity, and
    the focus point, why."""
    if depth is not None:
        choice = choose_depth(path, pixels, depth, max_pixels=max_pixels, normalize=normalize)
        return {"depth_used": choice.source, "disparity": choice.scaling, "depth_map_size": choice.upsampling,
                "focus": "image centre"}
    try:
        choice = choose_depth(path, pixels, model=model, preset=preset, max_pixels=max_pixels)
    except LimitError:
        raise  # a map over the limit is refused like a photo over it
    except LensblurError as error:
        return {"depth_used": f"none ({error})", "focus": "image centre"}
    if choice.focus_point is not None:
        x, y = choice.focus_point
        focus = f"({x:.0f}, {y:.0f})"
    else:
        focus = "image centre (no subject suggested)"
    why = choice.notes or (["where the phone focused"] if choice.focus_point is not None else [])
    return {"depth_used": choice.source, "disparity": choice.scaling, "depth_map_size": choice.upsampling,
            "focus": focus, "why": why, "edge_matte": _edge_matte(choice.matte is not None)}


def _edge_matte(has_matte: bool) -> str:
    """What render does along depth steps (lensblur.renderers.edge_matte)."""
    if has_matte:
        return "not needed: render splits the layers along the subject matte stored in the photo"
    return ("off (render --edge-matte on: where the depth steps from the sharp subject to a much blurrier "
            "background, the edge is matted and the subject rendered as its own layer; render -v says where)")


def run(args: argparse.Namespace) -> int:
    """Print the description."""
    info = describe(args.input, args.max_pixels, args.depth, args.normalize, args.depth_model, args.depth_preset)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, list):
            value = "; ".join(map(str, value)) or ("no depth map or matte found" if key == "embedded" else "-")
        print(f"{key.replace('_', ' ')}: {value if value is not None else 'unknown'}")
    return 0


def _orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        return int(parsed.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a damaged EXIF block reads as no orientation
        return 1


def _profile_name(icc: bytes | None) -> str:
    if not icc:
        return "sRGB (no embedded profile)"
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except Exception:  # noqa: BLE001 - an unreadable profile is still reported
        return f"embedded ICC profile ({len(icc)} bytes, unreadable description)"

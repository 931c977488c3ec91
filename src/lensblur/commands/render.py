"""``lensblur render``: blur a photo given its depth."""

from __future__ import annotations

import argparse
import math
import sys
import threading
from dataclasses import dataclass

from lensblur.aperture import Aperture
from lensblur.camera import camera_from_exif
from lensblur.commands.options import finite_float, non_negative_float, positive_float, positive_int
from lensblur.errors import InputError
from lensblur.depth_source import AUTO, EMBEDDED, ESTIMATE, DepthChoice, choose_depth
from lensblur.io.depth import GUIDED, UPSAMPLE_METHODS, fit_to_image
from lensblur.io.images import DEFAULT_MAX_PIXELS, SILENT_THREAD, check_image_output, read_image, write_image
from lensblur.io.limits import map_limit
from lensblur.kernel_cache import announce_compilation
from lensblur.lens import (Highlights, Lens, blur_from_camera, check_blur_radius, depth_at_disparity,
                          focus_disparity_at, largest_radius)
from lensblur.progress import progress_bar
from lensblur.renderers import DEFAULT_RENDERER, available_renderers, import_in_background, render_with

NAME = "render"
HELP = "render lens blur on a photo with a depth map"
EXAMPLES = """examples:
  lensblur render portrait.jpg -o out.jpg          # depth the phone embedded (Google, Apple)
  lensblur render photo.jpg --depth disparity.png -o out.jpg
  lensblur render photo.jpg --depth depth.tif --depth-kind depth --near 0.5 --far 20 \\
      --focus 640,400 --blur 30 --shape blades:6:15 --cat-eye 0.5 -o out.jpg
  lensblur render photo.heic --depth d.png --f-number 1.8 --focal-length 50 \\
      --sensor-width 36 --near 1 --far 50 --focus-disparity 0.7 -o out.tif
  lensblur render photo.png --depth d.png --highlights off --grain auto -o out.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur render``."""
    parser.add_argument("input", help="photo to blur (JPEG, PNG, TIFF, WebP, BMP, HEIC)")
    parser.add_argument("-o", "--output", required=True, help="output image; format from the extension")
    add_render_options(parser)


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Every option of ``lensblur render`` but the input and output (shared with ``lensblur batch``)."""
    add_depth_arguments(parser)
    parser.add_argument("--matte", help="subject alpha (grey image, white = subject) kept sharp")
    focus = parser.add_mutually_exclusive_group()
    focus.add_argument("--focus", type=_focus_point, metavar="X,Y|auto",
                       help="pixel to focus on, or auto: the detected face, else the main subject (default: "
                            "where the phone focused, else the subject of the portrait matte it stored, else auto "
                            "when depth is estimated, else the image centre)")
    focus.add_argument("--focus-disparity", type=finite_float, metavar="V", help="disparity in [0,1] to focus on")
    parser.add_argument("--focus-range", type=non_negative_float, default=0.0, metavar="R",
                        help="half-width in disparity of a band kept fully sharp (default 0)")
    parser.add_argument("--blur", type=non_negative_float, metavar="K",
                        help="blur radius in pixels per unit disparity (default: the phone's setting, "
                             "else 2%% of the image width)")
    parser.add_argument("--f-number", type=positive_float, metavar="N", help="f-number (sets K with the camera options)")
    parser.add_argument("--focal-length", type=positive_float, metavar="MM", help="focal length in mm (default: EXIF)")
    parser.add_argument("--sensor-width", type=positive_float, metavar="MM", help="sensor width in mm (default: EXIF)")
    parser.add_argument("--shape", type=_aperture, default=Aperture(), metavar="SHAPE",
                        help="bokeh shape: disk or blades:N[:rotation[:curvature]] (default disk)")
    parser.add_argument("--rim", type=non_negative_float, default=0.0, metavar="B",
                        help="bright-rimmed (soap-bubble) discs: share of energy in the rim, 0-1 (default 0)")
    parser.add_argument("--cat-eye", type=non_negative_float, default=0.0, metavar="V",
                        help="cat's-eye discs towards the corners (mechanical vignetting), 0-1 (default 0)")
    parser.add_argument("--highlights", type=_highlights, default=Highlights(), metavar="on|off|spots|S[:T]",
                        help="clipped-highlight recovery: strength S (default 6) and threshold T (default 0.99); "
                             "spots: without the night-lamp model")
    parser.add_argument("--grain", type=_grain, default=None, metavar="auto|off|AMOUNT",
                        help="add grain to blurred areas: auto matches the photo's noise (default off)")
    parser.add_argument("--edge-matte", type=_on_off, default=False, metavar="on|off",
                        help="where the depth steps from a sharp subject to a much blurrier background, matte "
                             "the edge and render the subject as its own layer, so its edge does not glow "
                             "(scatter renderer without --matte; default off: it takes two to three times the rest of the render)")
    parser.add_argument("--renderer", default=DEFAULT_RENDERER, choices=available_renderers(),
                        help=f"rendering method (default {DEFAULT_RENDERER})")
    parser.add_argument("--checkpoint", metavar="CKPT",
                        help="learned renderers: a checkpoint from 'lensblur train' instead of the shipped one")
    parser.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("-v", "--verbose", action="store_true", help="say where depth and focus came from")


def add_depth_arguments(parser: argparse.ArgumentParser) -> None:
    """Depth options shared by ``render`` and ``depth``."""
    parser.add_argument("--depth", default=AUTO, metavar="auto|embedded|estimate|FILE",
                        help="depth source: auto (default) takes the depth a phone embedded in the photo "
                             "(Google GDepth / Dynamic Depth, Apple MPF / HEIC), else estimates it; embedded "
                             "or estimate force one of them; or a depth/disparity map file (PNG, TIFF, NPY, "
                             "PFM, JPEG)")
    parser.add_argument("--depth-model", metavar="PATH.onnx|deeplens[:PATH]|megadepth:PATH|none",
                        help="estimate depth with this model (default: $LENSBLUR_DEPTH_MODEL, else the "
                             "model set with 'lensblur config set depth-model', else the weight-free "
                             "automatic estimate; none forces the latter; deeplens: DeepLens' shipped depth "
                             "module, the default with --renderer deeplens)")
    parser.add_argument("--depth-preset", metavar="NAME",
                        help="input/output convention of an ONNX depth model: depth-anything-v2 (default), "
                             "midas, midas-small, metric-depth")
    parser.add_argument("--depth-colormap", metavar="NAME", type=_colormap,
                        help="the --depth FILE is a colour picture drawn with this colormap (Spectral_r, "
                             "magma, inferno, viridis, plasma, cividis, turbo, jet; NAME_r reversed): read "
                             "each pixel back as its position on the map")
    parser.add_argument("--depth-kind", choices=["disparity", "depth"], default="disparity",
                        help="what the map holds: disparity (bigger = nearer, default) or depth")
    parser.add_argument("--normalize", action="store_true",
                        help="stretch a disparity map file to its own min..max (default: integer maps are "
                             "divided by their type's maximum, float maps in [0, 1] used as they are, only "
                             "maps outside [0, 1] stretched)")
    parser.add_argument("--depth-upsample", choices=UPSAMPLE_METHODS, default=GUIDED,
                        help="how a depth map smaller than the photo (a phone's embedded map, a small FILE) "
                             "is enlarged: guided (default) puts its edges on the photo's edges, bilinear "
                             "interpolates it as it is")
    parser.add_argument("--near", type=positive_float, metavar="Z", help="metric depth of the nearest point (metres)")
    parser.add_argument("--far", type=positive_float, metavar="Z", help="metric depth of the farthest point (metres)")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse images with more pixels than this (default 200 MP)")


def load_depth(args: argparse.Namespace, photo) -> DepthChoice:
    """The disparity (and the pixels and matte that go with it) the pipeline uses for ``photo``.
    With ``--renderer deeplens`` a missing depth is predicted by DeepLens' own depth module (the
    paper's single-image path) unless a depth model is given or set (--depth-model,
    LENSBLUR_DEPTH_MODEL, the settings file)."""
    fallback = None
    if args.depth in (AUTO, EMBEDDED, ESTIMATE):  # a depth file needs no model (nor its settings file)
        from lensblur.depth.model_choice import own_depth_model

        fallback = own_depth_model(getattr(args, "renderer", None))
    choice = choose_depth(args.input, photo.pixels, args.depth, args.depth_kind, args.near, args.far,
                          args.depth_model, args.depth_preset, args.max_pixels, args.normalize,
                          args.depth_colormap, fallback, args.depth_upsample)
    if getattr(args, "verbose", False):
        print(f"depth: {choice.source}", file=sys.stderr)
        print(f"disparity: {choice.scaling}", file=sys.stderr)
        if choice.upsampling:
            print(f"depth map size: {choice.upsampling}", file=sys.stderr)
        if choice.focus_point is not None:
            print(f"suggested focus: ({choice.focus_point[0]:.0f}, {choice.focus_point[1]:.0f})", file=sys.stderr)
        for note in choice.notes:
            print(f"depth note: {note}", file=sys.stderr)
    return choice


@dataclass
class Rendered:
    """What one render used: where the depth came from, the focus disparity in [0, 1] and the
    blur K in pixels per unit disparity."""

    depth_source: str
    focus_disparity: float
    blur: float


def run(args: argparse.Namespace) -> int:
    """Read, render, write; raises LensblurError on bad input."""
    _check_quality(args.quality)
    if not args.quiet:
        announce_compilation()
    with progress_bar(4, "render", args.quiet) as bar:
        render_photo(args, step=bar.update)
    return 0


def render_photo(args: argparse.Namespace, step=None) -> Rendered:
    """Render ``args.input`` to ``args.output`` with the options of ``lensblur render``.

    The per-photo pipeline of ``render`` and ``batch``: read, choose depth, set the lens, render,
    write atomically. step: optional callable invoked after each of the four stages.
    Raises LensblurError on bad input.
    """
    step = step or (lambda: None)
    check_image_output(args.output, args.overwrite, input_files(args) + [args.matte, args.checkpoint])
    # the renderer's modules load on the second core while this one decodes the photo
    importing = import_in_background(args.renderer)
    try:
        photo = read_image(args.input, max_pixels=args.max_pixels)
    finally:
        if importing is not None:
            importing.join()
    height, width = photo.pixels.shape[:2]
    step()
    clipped = _ClippedInBackground(photo.pixels, args.highlights if args.renderer == "scatter" else None)
    try:
        depth = load_depth(args, photo)
        matte = depth.matte
        if args.matte:
            limit = map_limit(height * width, args.max_pixels)
            matte = fit_to_image(read_image(args.matte, max_pixels=limit).pixels.mean(axis=2), height, width)
        step()
        lens = lens_from_args(args, photo, depth.disparity, depth)
        check_blur_radius(depth.disparity, lens)
        if getattr(args, "verbose", False):
            print(f"lens: blur K = {lens.blur:.1f} px, focus disparity {lens.focus_disparity:.3f}, "
                  f"largest blur radius {largest_radius(depth.disparity, lens):.1f} px",
                  file=sys.stderr)
            print(f"edge matte: {edge_matte_note(args.renderer, depth.disparity, lens, matte is not None)}",
                  file=sys.stderr)
        options = {"checkpoint": args.checkpoint} if args.checkpoint else {}
        if args.renderer == "scatter":
            # the photo's pixels are not read after the render (write_image takes only its
            # metadata): the renderer boosts highlights and writes its result in them
            options["overwrite_image"] = True
        if depth.pixels is photo.pixels and (analysis := clipped.result()) is not None:
            options["clipped"] = analysis
    finally:
        clipped.join()  # an error above must not leave the thread inside OpenCV at exit (abort)
    result = render_with(args.renderer, depth.pixels, depth.disparity, lens, matte=matte, **options)
    step()
    write_image(args.output, result, like=photo, quality=args.quality, overwrite=args.overwrite)
    step()
    return Rendered(depth.source, float(lens.focus_disparity), float(lens.blur))


class _ClippedInBackground:
    """The lens-independent part of highlight recovery (lensblur.highlights.analyse_clipped: the
    clipped pixels, their spots and crowds, night lamps) found in a second thread while the depth
    is read and fitted, which leaves the second core mostly idle; it needs only the photo."""

    def __init__(self, pixels, settings) -> None:
        self._result = self._error = None
        self._thread = None
        if settings is not None and settings.enabled:
            # silent: it prints nothing (its error is raised by result()), so the depth map's
            # PNG decoder may still keep libpng's prints off stderr meanwhile
            self._thread = threading.Thread(target=self._run, args=(pixels, settings), name=SILENT_THREAD)
            self._thread.start()

    def _run(self, pixels, settings) -> None:
        from lensblur.highlights import analyse_clipped

        try:
            self._result = analyse_clipped(pixels, settings)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by result()
            self._error = error

    def join(self) -> None:
        """Wait for the thread to end."""
        if self._thread is not None:
            self._thread.join()

    def result(self):
        """The analysis (None when recovery is off); an error in the thread is raised here."""
        self.join()
        if self._error is not None:
            raise self._error
        return self._result


def input_files(args: argparse.Namespace) -> list[str | None]:
    """The files a render or depth command reads (None where an option is unset): never outputs."""
    depth_file = args.depth if args.depth not in (AUTO, EMBEDDED, ESTIMATE) else None
    return [args.input, depth_file, _model_file(args.depth_model)]


def _model_file(option) -> str | None:
    """The file of a --depth-model value (PATH.onnx, KIND:PATH or a resolved DepthModel), if any."""
    if not option:
        return None
    from lensblur.depth.model_choice import NONE, DepthModel, parse_model

    if isinstance(option, DepthModel):
        return option.path
    if option.strip().lower() == NONE:
        return None
    try:
        return parse_model(option).path
    except InputError:  # reported when the depth is chosen
        return None


def lens_from_args(args: argparse.Namespace, photo, disparity, depth: DepthChoice | None = None) -> Lens:
    """Lens settings from the command line, then what the phone stored (Google GFocus), the
    photo's EXIF, and the disparity map."""
    height, width = disparity.shape
    suggested = depth.focus_point if depth is not None else None
    if args.focus == "auto" and suggested is None:
        raise InputError("--focus auto needs a detected subject: this depth source suggests none; give --focus X,Y")
    if args.focus == "auto":
        focus_disparity = focus_disparity_at(disparity, *suggested)
    elif args.focus is not None:
        focus_disparity = focus_disparity_at(disparity, *args.focus)
    elif args.focus_disparity is not None:
        focus_disparity = args.focus_disparity
    elif suggested is not None:
        focus_disparity = focus_disparity_at(disparity, *suggested)
    else:
        focus_disparity = focus_disparity_at(disparity, width / 2, height / 2)
    if args.f_number is not None:
        if args.blur is not None:
            raise InputError("give either --blur or --f-number, not both")
        blur = _blur_from_camera_args(args, photo, width, focus_disparity)
    elif args.blur is not None:
        blur = args.blur
    elif depth is not None and depth.blur_at_infinity is not None and focus_disparity > 0.05:
        # the phone's own setting: |c| at infinity (disparity 0) is K·d_f
        blur = depth.blur_at_infinity * width / focus_disparity
    else:
        blur = 0.02 * width
    return Lens(blur=blur, focus_disparity=focus_disparity, focus_range=args.focus_range,
                aperture=args.shape, highlights=args.highlights, grain=args.grain, rim=args.rim,
                cat_eye=args.cat_eye, edge_matte=getattr(args, "edge_matte", False))


def edge_matte_note(renderer: str, disparity, lens: Lens, has_matte: bool) -> str:
    """One line for -v: whether the edge matte (lensblur.renderers.edge_matte) is on and where it applies."""
    if not lens.edge_matte:
        return "off (--edge-matte on mattes strong depth steps)"
    if renderer != "scatter":
        return f"not used by the {renderer} renderer"
    if has_matte:
        return "not needed: the subject matte splits the layers"
    from lensblur.lens import signed_coc
    from lensblur.renderers.edge_matte import MIN_RAMP, find_steps, matte_band, ramp_width

    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    steps = find_steps(coc)
    if steps is None:
        return "on, no depth step from a sharp side to a blurrier one needs it"
    ramp = ramp_width(coc, steps)
    if ramp < MIN_RAMP:
        return "on, but the depth map's steps are as sharp as the photo: nothing to matte"
    height, width = disparity.shape
    return (f"on, matting ±{matte_band(height, width, ramp)} px along about {steps.length_px:.0f} px of depth "
            f"steps (far side up to {steps.far_blur:.0f} px blur radius)")


def _blur_from_camera_args(args, photo, width: int, focus_disparity: float) -> float:
    exif = camera_from_exif(photo.exif)
    focal = args.focal_length or exif.focal_length_mm
    sensor = args.sensor_width or exif.sensor_width_mm
    if focal is None or sensor is None:
        raise InputError("--f-number needs --focal-length and --sensor-width (the photo's EXIF has neither)")
    if args.near is None:
        raise InputError("--f-number needs --near (metric depth in metres of the nearest point)")
    far = args.far if args.far is not None else float("inf")
    focus_distance = depth_at_disparity(focus_disparity, args.near, far)
    if focus_distance == float("inf"):
        raise InputError("cannot focus at infinity with --f-number: focus on a nearer point")
    return blur_from_camera(focal, args.f_number, sensor, width, focus_distance, args.near, far)


def _check_quality(quality: int) -> None:
    if not 1 <= quality <= 100:
        raise InputError(f"--quality must be 1 to 100, got {quality}")


def _focus_point(text: str) -> tuple[float, float] | str:
    return "auto" if text.strip().lower() == "auto" else _point(text)


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels, got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"X and Y must be finite numbers, got {text!r}")
    return x, y


def _colormap(text: str) -> str:
    from lensblur.io.colormaps import check_name

    try:
        return check_name(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _aperture(text: str) -> Aperture:
    try:
        return Aperture.parse(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _highlights(text: str) -> Highlights | None:
    text = text.strip().lower()
    if text in ("off", "none", "0"):
        return None
    if text == "on":
        return Highlights()
    if text == "spots":  # the size rule alone, without the night-lamp model
        return Highlights(lamps=False)
    try:
        parts = [float(v) for v in text.split(":")]
        strength, threshold = (parts + [Highlights().threshold])[:2] if len(parts) <= 2 else (None, None)
        return Highlights(threshold=threshold, strength=strength)
    except (TypeError, ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected on, off, spots or STRENGTH[:THRESHOLD] (threshold in (0, 1)), "
                                         f"got {text!r}") from None


def _on_off(text: str) -> bool:
    text = text.strip().lower()
    if text in ("on", "yes", "true", "1"):
        return True
    if text in ("off", "no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def _grain(text: str) -> str | float | None:
    text = text.strip().lower()
    if text in ("off", "none"):
        return None
    if text == "auto":
        return "auto"
    try:
        amount = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or an amount, got {text!r}") from None
    if not 0 <= amount <= 0.1:
        raise argparse.ArgumentTypeError("grain amount must be in [0, 0.1]")
    return amount

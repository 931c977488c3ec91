"""Default focus and blur (``lensblur render`` with no options) against what the phone chose.

For every photo in ../shared/samples (skipped when absent) this renders nothing: it resolves the
depth and the lens exactly as ``lensblur render IN -o OUT`` would (lensblur.commands.render) and
compares them with the settings the file stores:

- Google Lens Blur (GFocus): FocalDistance (in the GDepth map's units, converted to disparity
  with its Near/Far and format) and FocalPointX/Y (fractions of the image), BlurAtInfinity (the
  blur radius at infinity as a fraction of the image width);
- Google Dynamic Depth (the XMP-only sample): the DepthMap FocalTable, pairs (distance, blur
  radius in pixels); no pixels come with it, so only the phone's side is listed;
- Apple portrait files: no focus or aperture is stored; when a portrait matte is embedded, the
  phone kept that subject sharp, so the subject's median disparity (matte > 0.5) stands for the
  phone's focus;
- depthy and BokehMe pairs (photo + separate map): nothing stored, our defaults are listed.

Focus is compared as disparity d_f in [0, 1] (1 = nearest); blur as the radius in pixels at
infinity (disparity 0), K·d_f for our lens. Writes benchmarks/results/defaults_vs_phone.{md,json}
(or the names given with --tag, e.g. --tag before).

    python benchmarks/defaults_vs_phone.py [--tag before]
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import struct
from pathlib import Path

import numpy as np

from lensblur.batch import render_options
from lensblur.commands.render import lens_from_args, load_depth
from lensblur.io.depth import read_depth
from lensblur.io.images import read_image
from lensblur.io.embedded import find_embedded_depth

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"
RESULTS = ROOT / "benchmarks" / "results"

PHOTOS = [  # (photo, separate depth map or None, how to read the map)
    ("google/lens_blur_dahlias.jpg", None, None),
    ("apple/image-with-matte.jpg", None, None),
    ("apple/image-with-depth.jpg", None, None),
    ("apple/pug.heic", None, None),
    ("google/depthy_flowers-image.jpg", "google/depthy_flowers-depth.jpg", "depth"),
    ("google/depthy_hut-image.jpg", "google/depthy_hut-depth.jpg", "depth"),
    ("bokehme/13.jpg", "bokehme/13.png", "disparity"),
    ("bokehme/21.jpg", "bokehme/21.png", "disparity"),
]


def gfocus_disparity(info) -> float | None:
    """GFocus:FocalDistance as disparity in [0, 1] of the GDepth map (D = (1/Z − 1/far)/(1/near − 1/far))."""
    focus = info.focus or {}
    distance = focus.get("FocalDistance")
    if not isinstance(distance, float) or info.near is None or info.far is None or distance <= 0:
        return None
    near, far = info.near, info.far
    return float(np.clip((1 / distance - 1 / far) / (1 / near - 1 / far), 0, 1))


def phone_settings(path: Path, width: int, disparity: np.ndarray, matte) -> dict:
    """What the file says the phone chose: focus disparity/point, blur radius at infinity (px)."""
    info = find_embedded_depth(str(path))
    if info is not None and info.focus:
        focus = info.focus
        point = (focus.get("FocalPointX"), focus.get("FocalPointY"))
        blur = focus.get("BlurAtInfinity")
        return {"stored": "GFocus", "focus_disparity": gfocus_disparity(info),
                "focus_point": None if None in point else [round(point[0] * (width - 1)),
                                                           round(point[1] * (disparity.shape[0] - 1))],
                "blur_at_infinity_px": None if blur is None else float(blur) * width,
                "focal_distance": focus.get("FocalDistance"), "near": info.near, "far": info.far}
    if matte is not None and float((matte > 0.5).mean()) > 0.01:
        return {"stored": "portrait matte (subject kept sharp)",
                "focus_disparity": float(np.median(disparity[matte > 0.5])), "focus_point": None,
                "blur_at_infinity_px": None}
    return {"stored": "nothing", "focus_disparity": None, "focus_point": None, "blur_at_infinity_px": None}


def ours(path: Path, depth_file: Path | None, kind: str | None) -> tuple[dict, np.ndarray, object, int]:
    """Our defaults: the depth, focus and blur that 'lensblur render PATH -o OUT' would use."""
    args = render_options([])
    args.input = str(path)
    photo = read_image(path)
    if depth_file is not None:
        args.depth = str(depth_file)
        args.depth_kind = kind
    choice = load_depth(args, photo)
    if depth_file is not None and kind == "depth":
        # the depthy maps are 8-bit "depth" with 0 = nearest; read as values, flipped to disparity
        choice.disparity = 1.0 - read_depth(depth_file, kind="disparity")
    lens = lens_from_args(args, photo, choice.disparity, choice)
    height, width = choice.disparity.shape
    point = choice.focus_point or (width / 2, height / 2)
    return ({"depth": choice.source, "focus_disparity": float(lens.focus_disparity),
             "focus_point": [round(point[0]), round(point[1])], "K": float(lens.blur),
             "blur_at_infinity_px": float(lens.blur * lens.focus_disparity),
             "largest_radius_px": float(lens.blur * max(lens.focus_disparity, 1 - lens.focus_disparity))},
            choice.disparity, choice.matte, width)


def dynamic_depth_xml(path: Path) -> dict:
    """The FocalTable of a Dynamic Depth XMP: (distance, blur radius px) pairs, and the image width."""
    text = path.read_text(encoding="utf-8", errors="replace")
    table = re.search(r'DepthMap:FocalTable="([^"]+)"', text)
    width = re.search(r'ImagingModel:ImageWidth="([\d.]+)"', text)
    near = re.search(r'DepthMap:Near="([\d.]+)"', text)
    far = re.search(r'DepthMap:Far="([\d.]+)"', text)
    raw = base64.b64decode(table.group(1) + "=" * (-len(table.group(1)) % 4))
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    pairs = [(round(values[i], 3), round(values[i + 1], 3)) for i in range(0, len(values) - 1, 2)]
    return {"focal_table": pairs, "image_width": float(width.group(1)), "near": float(near.group(1)),
            "far": float(far.group(1))}


def fmt(value, digits=3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="", help="suffix of the result files (e.g. before)")
    tag = parser.parse_args().tag
    if not SAMPLES.is_dir():
        raise SystemExit(f"no samples at {SAMPLES}")
    rows = []
    for name, depth_name, kind in PHOTOS:
        path = SAMPLES / name
        if not path.exists():
            continue
        depth_file = SAMPLES / depth_name if depth_name else None
        default, disparity, matte, width = ours(path, depth_file, kind)
        phone = phone_settings(path, width, disparity, matte)
        delta = (None if phone["focus_disparity"] is None
                 else abs(default["focus_disparity"] - phone["focus_disparity"]))
        rows.append({"photo": name, "width": width, "phone": phone, "default": default,
                     "focus_difference": delta})
        print(name, json.dumps(rows[-1]["default"]), json.dumps(phone), flush=True)
    xml = SAMPLES / "google" / "dynamic_depth_portrait_xmp.xml"
    dynamic = dynamic_depth_xml(xml) if xml.exists() else None

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "defaults_vs_phone" + (f"_{tag}" if tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps({"photos": rows, "dynamic_depth_xml": dynamic}, indent=2))
    lines = [f"# Default focus and blur vs the phone's{f' ({tag})' if tag else ''}", "",
             "`python benchmarks/defaults_vs_phone.py" + (f" --tag {tag}`" if tag else "`") +
             ": what `lensblur render PHOTO -o OUT` (no options) uses, against what the file stores. "
             "Focus as disparity d_f (1 = nearest); blur as the radius in pixels at infinity "
             "(disparity 0), K·d_f for ours; K in px per unit disparity.", "",
             "| photo | what the file stores | phone d_f | our d_f | |Δd_f| | phone focus point | our focus point "
             "| phone blur at ∞ (px) | our blur at ∞ (px) | our K | our depth |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        p, d = row["phone"], row["default"]
        lines.append(f"| {row['photo']} | {p['stored']} | {fmt(p['focus_disparity'])} | {fmt(d['focus_disparity'])} "
                     f"| {fmt(row['focus_difference'])} | {fmt(p['focus_point'])} | {fmt(d['focus_point'])} "
                     f"| {fmt(p['blur_at_infinity_px'], 1)} | {fmt(d['blur_at_infinity_px'], 1)} | {fmt(d['K'], 1)} "
                     f"| {d['depth']} |")
    if dynamic:
        pairs = ", ".join(f"{distance} → {radius} px" for distance, radius in dynamic["focal_table"])
        lines += ["", f"Dynamic Depth sample (`google/dynamic_depth_portrait_xmp.xml`, metadata only, no pixels): "
                  f"FocalTable {pairs} (pairs as stored: distance in the depth map's units, Near {dynamic['near']}, "
                  f"Far {dynamic['far']}; the second value read as the blur radius in pixels of the "
                  f"{dynamic['image_width']:.0f} px wide image, a reading not checked against a rendering): the "
                  "phone focused at the near end and blurs to "
                  f"{dynamic['focal_table'][-1][1] / dynamic['image_width'] * 100:.2f} % of the width at the far end."]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / stem}.md")


if __name__ == "__main__":
    main()

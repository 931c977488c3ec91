"""Before/after sheet of the night-lamp model on real phone photos and a large synthetic night.

For each photo: the render with the size rule alone (``--highlights spots``) and with the default
(night-lamp model), at the photo's resolution (at most 1536 px on the longer side), then a small
downscaled sheet (the photos are MIT/Apache/BSD samples from ../shared/samples; they are not
stored here, only this sheet).
Writes benchmarks/results/night_photos.{md,png}: per photo the lamps found, the share of pixels
whose 8-bit value changed by more than 2 levels, and the largest change.

    python benchmarks/night_photos.py [--samples ../shared/samples]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from lensblur.api import make_lens, render
from lensblur.color import srgb_to_linear
from lensblur.io.embedded import find_embedded_depth
from lensblur.lamps import find_lights
from lensblur.lens import Highlights
from lensblur.synth.night import make_night_scene, random_glare, small_aperture_photo
from lensblur.synth.thinlens import visible_disparity

HERE = Path(__file__).resolve().parent
SHEET_WIDTH = 300
MAX_SIDE = 1536


def photos(samples: Path):
    """(name, sRGB uint8 H×W×3, disparity, focus disparity or None) for each photo available."""
    for stem in ("13", "21"):
        image, depth = samples / "bokehme" / f"{stem}.jpg", samples / "bokehme" / f"{stem}.png"
        if image.exists() and depth.exists():
            pixels = cv2.imread(str(image))[..., ::-1]
            raw = cv2.imread(str(depth), cv2.IMREAD_UNCHANGED).astype(np.float32)
            raw = raw[..., 0] if raw.ndim == 3 else raw
            yield f"bokehme/{stem}", pixels, (raw - raw.min()) / max(float(np.ptp(raw)), 1e-6), None
    for name in ("image-with-depth.jpg", "image-with-matte.jpg"):
        path = samples / "apple" / name
        if path.exists():
            embedded = find_embedded_depth(path)
            if embedded is not None:
                yield f"apple/{name}", cv2.imread(str(path))[..., ::-1], embedded.disparity, None
    rng = np.random.default_rng([2026, 99])
    scene, _ = make_night_scene(rng, 768, 1024, lamps=24)
    yield "synthetic night 768x1024", small_aperture_photo(scene, random_glare(rng, 2.0)), \
        visible_disparity(scene), scene.focus_disparity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", default=str(HERE.parent.parent / "shared" / "samples"))
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    rows, tiles = [], []
    for name, pixels, disparity, focus in photos(Path(args.samples)):
        if max(pixels.shape[:2]) > MAX_SIDE:  # phone photos are rendered at about 1.5 Mpx here
            factor = MAX_SIDE / max(pixels.shape[:2])
            pixels = cv2.resize(pixels, (round(pixels.shape[1] * factor), round(pixels.shape[0] * factor)),
                                interpolation=cv2.INTER_AREA)
        height, width = pixels.shape[:2]
        disparity = cv2.resize(disparity.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        settings = {"blur": 0.03 * width}
        settings.update({"focus_disparity": focus} if focus is not None else {"focus": (width / 2, height * 0.6)})
        linear = srgb_to_linear(pixels.astype(np.float32) / 255)
        clipped = linear.max(axis=2) >= srgb_to_linear(np.float32(Highlights().threshold))
        lights = find_lights(linear, clipped)
        start = time.perf_counter()
        after = render(pixels, disparity, lens=make_lens(disparity, **settings))
        seconds = time.perf_counter() - start
        before = render(pixels, disparity, lens=make_lens(disparity, highlights=Highlights(lamps=False), **settings))
        change = np.abs(after.astype(np.int16) - before.astype(np.int16)).max(axis=2)
        rows.append(f"| {name} | {width}×{height} | {clipped.mean():.2%} | {0 if lights is None else lights.count} | "
                     f"{(change > 2).mean():.2%} | {int(change.max())} | {seconds:.1f} |")
        scale = SHEET_WIDTH / width
        small = [cv2.resize(v, (SHEET_WIDTH, int(height * scale)), interpolation=cv2.INTER_AREA)
                 for v in (pixels, before, after)]
        tiles.append(np.concatenate(small, axis=1))
        print(rows[-1], file=sys.stderr)
    out = Path(args.out)
    sheet = np.concatenate([np.pad(t, ((0, 8), (0, 0), (0, 0)), constant_values=255) for t in tiles], axis=0)
    cv2.imwrite(str(out / "night_photos.png"), sheet[..., ::-1])
    (out / "night_photos.md").write_text(
        "# Night-lamp model on real photos: before (size rule alone) / after (default)\n\n"
        "`python benchmarks/night_photos.py`; sheet: night_photos.png (columns: input, before, after; "
        "downscaled). Photos larger than 1536 px are first downscaled to that. Blur K = 3 % of the width; "
        "s = default render, upper bound on a shared 2-core machine. The sheet shows downscaled renders "
        "of the sample photos: BokehMe inputs (Apache-2.0) and iOS-Depth-Sampler's photos (MIT), licences "
        "as listed in ../shared/DESIGN.md.\n\n"
        "| photo | size | clipped | lamps found | pixels changed > 2 levels | largest change | s |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

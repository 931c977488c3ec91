"""Reading colour-mapped depth pictures back (``--depth-colormap NAME``): how close, per colormap.

The example's disparity (examples/astronaut_disparity.png, levels 12–204 of 255, drawn as stored
so the picture does not span the whole map) is drawn through each colormap as a depth network's
demo would save it (8-bit RGB, value v → table entry ⌊256·v⌋), written as PNG and
as JPEG quality 90, read back with lensblur.io.depth.read_depth(colormap=NAME) and compared with
the original (both normalised to [0, 1]): median and 99th-percentile absolute error in 8-bit
levels, and whether the picture without the name is refused naming the right map. Writes
benchmarks/results/colormap_depth.md and colormap_depth_sheet.png (Spectral_r JPEG: the picture,
the original, the read-back, the error ×20).

    python benchmarks/colormap_depth.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from lensblur.errors import InputError
from lensblur.io.colormaps import BASE_NAMES, colormap_table
from lensblur.io.depth import read_depth

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def draw(values: np.ndarray, name: str) -> np.ndarray:
    return colormap_table(name)[np.clip((values * 256).astype(int), 0, 255)]


def main() -> None:
    grey = cv2.imread(str(ROOT / "examples" / "astronaut_disparity.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    stored = grey / 255  # drawn as stored (levels 12–204, not the whole map), read back min–max normalised
    truth = (grey - grey.min()) / (grey.max() - grey.min())
    names = [("Spectral_r" if name == "Spectral" else name) for name in BASE_NAMES]
    lines = ["# Colour-mapped depth pictures read back", "",
             "`python benchmarks/colormap_depth.py`: examples/astronaut_disparity.png (512×512) drawn through "
             "each colormap, saved as PNG and JPEG q90, read back with `--depth-colormap NAME`; absolute error "
             "against the original in 8-bit levels (both normalised to [0, 1]). 'refused as' = the message "
             "without `--depth-colormap`.", "",
             "| colormap | PNG median | PNG p99 | JPEG median | JPEG p99 | refused as (JPEG) |", "|---|---|---|---|---|---|"]
    sheet = None
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            picture = draw(stored, name)
            row = [name]
            for suffix, params in ((".png", []), (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90])):
                path = Path(folder) / f"{name}{suffix}"
                cv2.imwrite(str(path), np.ascontiguousarray(picture[..., ::-1]), params)
                back = read_depth(path, colormap=name)
                error = np.abs(back - truth) * 255
                row += [f"{np.median(error):.1f}", f"{np.percentile(error, 99):.1f}"]
                if suffix == ".jpg":
                    try:
                        read_depth(path)
                        row.append("not refused")
                    except InputError as refusal:
                        found = [n for n in names if f"looks like {n})" in str(refusal)]
                        row.append(found[0] if found else "refused, no name")
                    if name == "Spectral_r":
                        jpeg = cv2.imread(str(path))
                        as_grey = [np.repeat((np.clip(v, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2)
                                   for v in (truth, back, error / 255 * 20)]
                        sheet = np.concatenate([jpeg] + as_grey, axis=1)
            lines.append("| " + " | ".join(row) + " |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "colormap_depth.md").write_text("\n".join(lines) + "\n")
    cv2.imwrite(str(RESULTS / "colormap_depth_sheet.png"), cv2.resize(sheet, (1024, 256), interpolation=cv2.INTER_AREA))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

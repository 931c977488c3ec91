"""Night-lights benchmark: lamp discs against exact thin-lens ground truth, plus daylight cases.

Generates (once, cached in benchmarks/data/) night scenes (lensblur.synth.night: HDR lamps and
reflections; input = stopped-down photo with glare and starburst spikes, clipped to 8 bits;
truth = thin-lens render of the true radiance, clipped) and daylight scenes (clipped walls
through leaves, pavement glints, clipped water, skies, white walls; input = the clipped photo),
renders them and writes benchmarks/results/night.{md,json} and night_sheet.png.

Columns: PSNR over the image and inside the lamps' discs (8-bit sRGB), and the mean over lamps
of (mean linear luminance inside 0.7·|c| of the lamp's disc centre, rendered / truth).

    python benchmarks/night.py                         # 12 night + 5 daylight scenes, seed 2026
    python benchmarks/night.py --seed 7 --count 6 --size 256x384 --lamps 20
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from lensblur import metrics
from lensblur.aperture import Aperture
from lensblur.color import luminance
from lensblur.evaluate import write_sheet
from lensblur.lens import Highlights, Lens
from lensblur.renderers import get_renderer
from lensblur.synth.dataset import encode_disparity16, read_disparity, read_srgb8, scene_rng, srgb8_to_linear
from lensblur.synth.night import DAYLIGHT_KINDS, Lamp, lamp_discs, make_daylight_scene, make_night_scene, \
    random_glare, small_aperture_photo
from lensblur.synth.thinlens import camera_image, encode_srgb8, render_ground_truth, visible_disparity

HERE = Path(__file__).resolve().parent
if "lamps" in Highlights.__dataclass_fields__:
    RENDERERS = {  # column name -> (renderer, highlights)
        "naive": ("naive", Highlights(lamps=False)),
        "gegl": ("gegl", Highlights(lamps=False)),
        "scatter-spots": ("scatter", Highlights(lamps=False)),
        "scatter": ("scatter", Highlights()),
    }
else:  # run against an older lensblur (PYTHONPATH) for its figure: the rule of that day
    RENDERERS = {"scatter-today": ("scatter", Highlights())}


def dataset(count: int, daylight: int, seed: int, height: int, width: int, lamps: int | None) -> Path:
    """The cached folder of ``count`` night and ``daylight`` daylight scenes, made when missing."""
    folder = HERE / "data" / f"night-{seed}-{count}-{daylight}-{height}x{width}-{lamps or 'r'}"
    if len(list(folder.glob("*_meta.json"))) == count + daylight:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for index in range(count + daylight):
        rng = scene_rng(seed, index)
        if index < count:
            scene, lights = make_night_scene(rng, height, width, lamps=lamps)
            glare = random_glare(rng, min(height, width) / 384.0)
            image, extra = small_aperture_photo(scene, glare), {"kind": "night", "glare": asdict(glare),
                                                              "lamps": [asdict(lamp) for lamp in lights]}
        else:
            kind = DAYLIGHT_KINDS[(index - count) % len(DAYLIGHT_KINDS)]
            scene = make_daylight_scene(rng, height, width, kind)
            image, extra = camera_image(scene), {"kind": kind, "lamps": []}
        stem = folder / f"{index:04d}"
        cv2.imwrite(f"{stem}_image.png", image[..., ::-1])
        cv2.imwrite(f"{stem}_gt.png", encode_srgb8(render_ground_truth(scene))[..., ::-1])
        cv2.imwrite(f"{stem}_disparity.png", encode_disparity16(visible_disparity(scene)))
        cv2.imwrite(f"{stem}_front.png", np.round(scene.layers[-1].alpha * 255).astype(np.uint8))
        meta = {"focus_disparity": scene.focus_disparity, "blur": scene.blur, "aperture": asdict(scene.aperture),
                "background_disparity_rows": scene.layers[0].disparity[:, 0].tolist(), **extra}
        (folder / f"{index:04d}_meta.json").write_text(json.dumps(meta))
    print(f"generated {count + daylight} scenes in {time.perf_counter() - start:.0f} s -> {folder}", file=sys.stderr)
    return folder


def score(folder: Path) -> tuple[list[dict], list]:
    rows, sheet = [], []
    for meta_path in sorted(folder.glob("*_meta.json")):
        name = meta_path.name[:4]
        meta = json.loads(meta_path.read_text())
        encoded = read_srgb8(folder / f"{name}_image.png")
        gt = read_srgb8(folder / f"{name}_gt.png")
        disparity = read_disparity(folder / f"{name}_disparity.png")
        front = cv2.imread(str(folder / f"{name}_front.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255
        radius_rows = np.abs(meta["blur"] * (np.asarray(meta["background_disparity_rows"], np.float32)
                                             - meta["focus_disparity"]))
        discs = lamp_discs([Lamp(**lamp) for lamp in meta["lamps"]], radius_rows, front)
        union = np.zeros(front.shape, bool)
        for _, whole in discs:
            union |= whole
        truth_lum = luminance(srgb8_to_linear(gt))
        outputs = []
        for column, (renderer, highlights) in RENDERERS.items():
            lens = Lens(blur=meta["blur"], focus_disparity=meta["focus_disparity"],
                        aperture=Aperture(**meta["aperture"]), highlights=highlights)
            try:
                output = encode_srgb8(get_renderer(renderer)(srgb8_to_linear(encoded), disparity, lens))
            except Exception as error:  # gegl missing: the column is dropped with a note
                print(f"{column} skipped on {name}: {error}", file=sys.stderr)
                continue
            lum = luminance(srgb8_to_linear(output))
            ratios = [float(lum[inner].mean() / max(truth_lum[inner].mean(), 1e-6)) for inner, _ in discs]
            rows.append({"scene": name, "kind": meta["kind"], "renderer": column,
                         "psnr": metrics.psnr(output, gt),
                         "disc_psnr": metrics.psnr(output[union], gt[union]) if union.any() else math.nan,
                         "ratios": ratios})
            outputs.append((column, output))
        night_rows = sum(row[0].endswith(" night") for row in sheet)
        if (night_rows < 4 if meta["kind"] == "night" else len(sheet) - night_rows < 2):
            sheet.append((f"{name} {meta['kind']}", encoded, outputs, gt))
    return rows, sheet


def summarise(rows: list[dict]) -> list[dict]:
    summary = []
    for column in RENDERERS:
        mine = [r for r in rows if r["renderer"] == column]
        if not mine:
            continue
        night = [r for r in mine if r["kind"] == "night"]
        day = [r for r in mine if r["kind"] != "night"]
        ratios = [v for r in night for v in r["ratios"]]
        summary.append({
            "renderer": column,
            "night_psnr": float(np.mean([r["psnr"] for r in night])) if night else math.nan,
            "disc_psnr": float(np.nanmean([r["disc_psnr"] for r in night])) if night else math.nan,
            "disc_ratio": float(np.mean(ratios)) if ratios else math.nan,
            "disc_ratio_median": float(np.median(ratios)) if ratios else math.nan,
            "discs": len(ratios),
            "daylight_psnr": float(np.mean([r["psnr"] for r in day])) if day else math.nan,
        })
    return summary


def markdown(summary: list[dict], rows: list[dict]) -> str:
    lines = ["| renderer | night PSNR | PSNR in discs | disc brightness ratio (mean / median) | discs "
             "| daylight PSNR |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['renderer']} | {s['night_psnr']:.2f} | {s['disc_psnr']:.2f} | "
                     f"{s['disc_ratio']:.3f} / {s['disc_ratio_median']:.3f} | {s['discs']} | "
                     f"{s['daylight_psnr']:.2f} |")
    kinds = sorted({r["kind"] for r in rows if r["kind"] != "night"})
    lines += ["", "Daylight PSNR per case (dB):", "", "| renderer | " + " | ".join(kinds) + " |",
              "|---|" + "---|" * len(kinds)]
    for column in RENDERERS:
        cells = []
        for kind in kinds:
            values = [r["psnr"] for r in rows if r["renderer"] == column and r["kind"] == kind]
            cells.append(f"{np.mean(values):.2f}" if values else "")
        if any(cells):
            lines.append(f"| {column} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=12, help="night scenes (default 12)")
    parser.add_argument("--daylight", type=int, default=5, help="daylight scenes (default 5, one per kind)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--size", default="320x480", help="HxW (default 320x480)")
    parser.add_argument("--lamps", type=int, default=None, help="lamps per night scene (default 4-16)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="night", help="output file stem (default night)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    folder = dataset(args.count, args.daylight, args.seed, height, width, args.lamps)
    rows, sheet = score(folder)
    summary = summarise(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"count": args.count, "daylight": args.daylight, "seed": args.seed, "size": args.size,
                "lamps": args.lamps}
    (out / f"{args.name}.json").write_text(json.dumps({"settings": settings, "summary": summary, "rows": rows},
                                                      indent=1))
    command = "python benchmarks/night.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    table = markdown(summary, rows)
    (out / f"{args.name}.md").write_text(
        f"# Night lights vs exact thin-lens ground truth\n\n{args.count} night + {args.daylight} daylight scenes, "
        f"{args.size}, seed {args.seed}, lamps {args.lamps or '4-16'} (`{command}`).\n"
        f"scatter-spots = the size rule alone (`--highlights spots`); scatter = the default "
        f"with the night-lamp model. Ratio: mean linear luminance inside 0.7·|c| of each unoccluded lamp "
        f"disc, rendered / truth (both clipped 8-bit).\n\n{table}\n")
    write_sheet(out / f"{args.name}_sheet.png", sheet)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

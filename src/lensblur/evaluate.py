"""Measure renderers against ground truth: datasets, the evaluation loop, tables and a contact sheet.

Dataset layouts (detected automatically):
  synth    ``NNNN_image.png`` + ``NNNN_disparity.png`` + ``NNNN_gt.png`` + ``NNNN_meta.json``
           as written by ``lensblur synth`` (lens settings from the metadata).
  folders  any ``X_image.*`` + ``X_disparity.*`` + ``X_gt.*``; an optional ``X_meta.json`` with
           ``blur`` and ``focus_disparity``, else --blur / --focus (or their defaults).
  ebb      EBB! (ETH Zurich Bokeh): ``original/N.jpg`` + ``bokeh/N.jpg`` pairs of the same name,
           in the folder itself or under ``train/`` (the download's layout); no
           disparity unless ``disparity_dir`` holds ``N.png``: renderers then get a flat map at
           the focus disparity (so depth-based ones return the input) and a note says so.
           Split ``val294`` is DBSI's validation set, taken here as images 4400–4693 (the train
           set being 0–4399, as the paper's 4400/294 division reads); ``train4400`` the rest.

Metrics are computed on 8-bit sRGB, as the papers report them: renderer output is clipped and
encoded, the ground truth is read as stored.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from lensblur import metrics
from lensblur.aperture import Aperture
from lensblur.errors import InputError, LensblurError
from lensblur.lens import Lens, focus_disparity_at, signed_coc
from lensblur.renderers import get_renderer
from lensblur.synth.dataset import read_disparity, read_meta, read_srgb8, srgb8_to_linear
from lensblur.synth.thinlens import encode_srgb8

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
VAL294 = range(4400, 4694)
DEFAULT_BLUR_FRACTION = 0.025  # default K: 2.5% of the image width, when nothing says otherwise


@dataclass
class Sample:
    """One evaluation case. image: linear float32 H×W×3 decoded from ``image_srgb8``;
    disparity: float32 H×W in [0, 1]; gt: uint8 sRGB H×W×3; has_disparity False for a flat map."""

    name: str
    image_srgb8: np.ndarray
    image: np.ndarray
    disparity: np.ndarray
    gt: np.ndarray
    lens: Lens
    has_disparity: bool = True


@dataclass
class Results:
    """rows: one dict per (scene, renderer); summary: one dict per renderer; notes: text lines."""

    rows: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    layout: str = ""


# ---------------------------------------------------------------------------------------- datasets

def detect_layout(folder: str | Path) -> str:
    """``synth``, ``folders`` or ``ebb`` for a dataset folder; InputError when none fits."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"dataset folder {folder} does not exist")
    if _ebb_root(folder) is not None:
        return "ebb"
    if any(folder.glob("*_meta.json")) and any(folder.glob("*_gt.png")):
        return "synth"
    if _triplets(folder):
        return "folders"
    raise InputError(f"{folder} is not a dataset: expected NNNN_image/_disparity/_gt files "
                     "(lensblur synth), X_image.* + X_disparity.* + X_gt.*, or EBB!'s original/ + bokeh/")


def iter_samples(folder: str | Path, layout: str = "auto", *, split: str = "all", limit: int | None = None,
                 blur: float | None = None, focus: float | None = None,
                 disparity_dir: str | Path | None = None) -> Iterator[Sample]:
    """Samples of a dataset folder in name order, read lazily.

    layout: auto, synth, folders or ebb. split: all, val294 or train4400 (EBB! only).
    blur: K in pixels where the data does not say (default 2.5% of the width).
    focus: d_f in [0, 1] where the data does not say (default: the disparity at the centre).
    disparity_dir: EBB! only, a folder of disparity maps named like the photos.
    """
    for load in sample_loaders(folder, layout, split=split, limit=limit, blur=blur, focus=focus,
                               disparity_dir=disparity_dir):
        yield load()


def sample_loaders(folder: str | Path, layout: str = "auto", *, split: str = "all", limit: int | None = None,
                   blur: float | None = None, focus: float | None = None,
                   disparity_dir: str | Path | None = None) -> list[partial]:
    """Like :func:`iter_samples`, but a list of picklable zero-argument callables that each read
    one sample: what :func:`evaluate` sends to Dask workers so that they read the files themselves."""
    folder = Path(folder)
    layout = detect_layout(folder) if layout == "auto" else layout
    if layout in ("synth", "folders"):
        cases = _triplets(folder)
    elif layout == "ebb":
        cases = _ebb_pairs(folder, split, disparity_dir)
    else:
        raise InputError(f"unknown dataset layout {layout!r}: use auto, synth, folders or ebb")
    if not cases:
        raise InputError(f"no samples found in {folder} ({layout} layout, split {split})")
    return [partial(_load_sample, folder, name, image_path, disparity_path, gt_path, blur, focus)
            for name, image_path, disparity_path, gt_path in cases[:limit]]


def _triplets(folder: Path) -> list[tuple]:
    cases = []
    for image_path in sorted(folder.glob("*_image.*")):
        if image_path.suffix.lower() not in _IMAGE_EXTENSIONS:
            continue
        name = image_path.name[:-len("_image" + image_path.suffix)]
        disparity = _first_existing(folder, f"{name}_disparity")
        gt = _first_existing(folder, f"{name}_gt")
        if disparity is not None and gt is not None:
            cases.append((name, image_path, disparity, gt))
    return cases


def _ebb_root(folder: Path) -> Path | None:
    """The folder holding EBB!'s original/ and bokeh/ (``folder`` itself or its train/ part)."""
    for root in (folder, folder / "train", folder / "Training" / "train", folder / "EBB" / "train"):
        if (root / "original").is_dir() and (root / "bokeh").is_dir():
            return root
    return None


def _ebb_pairs(folder: Path, split: str, disparity_dir) -> list[tuple]:
    root = _ebb_root(folder)
    if root is None:
        raise InputError(f"{folder} has no original/ and bokeh/ folders (EBB! layout)")
    if split not in ("all", "val294", "train4400"):
        raise InputError(f"unknown split {split!r}: use all, val294 or train4400")
    cases = []
    for original in sorted((root / "original").glob("*.jpg"), key=_numeric_key):
        number = _numeric_key(original)[0]
        if split == "val294" and number not in VAL294 or split == "train4400" and number in VAL294:
            continue
        bokeh = root / "bokeh" / original.name
        if not bokeh.exists():
            continue
        disparity = _first_existing(Path(disparity_dir), original.stem) if disparity_dir else None
        cases.append((original.stem, original, disparity, bokeh))
    return cases


def _numeric_key(path: Path) -> tuple:
    match = re.search(r"\d+", path.stem)
    return (int(match.group()) if match else -1, path.stem)


def _first_existing(folder: Path, stem: str) -> Path | None:
    for extension in _IMAGE_EXTENSIONS:
        path = folder / f"{stem}{extension}"
        if path.exists():
            return path
    return None


def _load_sample(folder: Path, name: str, image_path, disparity_path, gt_path, blur, focus) -> Sample:
    encoded = read_srgb8(image_path)
    gt = read_srgb8(gt_path)
    height, width = encoded.shape[:2]
    if gt.shape[:2] != (height, width):
        raise InputError(f"{gt_path}: ground truth is {gt.shape[1]}×{gt.shape[0]} but the image is "
                         f"{width}×{height}")
    meta_path = folder / f"{name}_meta.json"
    meta = _checked_meta(meta_path) if meta_path.exists() else {}
    if disparity_path is not None:
        disparity = read_disparity(disparity_path)
        if disparity.shape != (height, width):
            disparity = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR)
        has_disparity = True
    else:
        disparity = np.full((height, width), 0.5 if focus is None else focus, np.float32)
        has_disparity = False
    if "focus_disparity" in meta:
        focus_value = float(meta["focus_disparity"])
    elif focus is not None:
        focus_value = float(focus)
    else:
        focus_value = focus_disparity_at(disparity, width / 2, height / 2)
    blur_value = float(meta.get("blur", blur if blur is not None else DEFAULT_BLUR_FRACTION * width))
    lens = Lens(blur=blur_value, focus_disparity=float(np.clip(focus_value, 0, 1)),
                aperture=meta.get("aperture", Aperture()))
    return Sample(name, encoded, srgb8_to_linear(encoded), disparity, gt, lens, has_disparity)


def _checked_meta(path: Path) -> dict:
    """A scene's metadata through read_meta, with a one-line InputError for malformed files."""
    try:
        meta = read_meta(path)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    except AttributeError:
        raise InputError(f"{path}: must hold a JSON object, not a list or a single value") from None
    except (TypeError, InputError) as error:
        raise InputError(f"{path}: aperture is malformed ({error})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read it ({error})") from None
    for key in ("blur", "focus_disparity"):
        value = meta.get(key)
        if key in meta and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise InputError(f"{path}: {key} must be a finite number, got {value!r}")
    return meta


# ------------------------------------------------------------------------------------------- loop

def resolve_renderers(names: list[str]) -> tuple[dict, list[str]]:
    """Look up renderers by name; those that cannot be loaded are skipped with a note."""
    found, notes = {}, []
    for name in names:
        try:
            found[name] = get_renderer(name)
        except (ImportError, LensblurError) as error:
            notes.append(f"renderer {name} skipped: {error}")
    return found, notes


def evaluate(samples, renderer_names: list[str], *, sheet_count: int = 4, lpips_weights: str | None = None,
             progress=None, client=None) -> tuple[Results, list]:
    """Run every renderer on every sample and score it against the ground truth.

    samples: Samples, or zero-argument callables that read one (:func:`sample_loaders`).
    client: a Dask client (lensblur.batch.open_client): each sample is then one task, read and
    scored on a worker; None scores them here one after the other. The scores do not depend on
    the workers (the seconds do: workers that share cores slow each other down).
    Returns (results, sheet rows); sheet rows hold (name, input, [outputs...], gt) uint8 images
    for the first ``sheet_count`` samples. A renderer that raises LensblurError on any sample is
    dropped from every row with a note (e.g. gegl not installed); each renderer is warmed up once
    per process on a small crop before timing. progress: optional callable invoked once per sample.
    """
    from lensblur.batch.cluster import map_tasks

    renderers, notes = resolve_renderers(renderer_names)
    names = list(renderers)
    tasks = (partial(score_sample, sample, names, lpips_weights, index < sheet_count)
             for index, sample in enumerate(samples))
    if client is not None:
        tasks = list(tasks)
    scores: dict[int, dict] = {}
    for index, score, error in map_tasks(client, tasks):
        if error is not None:
            raise error
        scores[index] = score
        if progress:
            progress()
    results = Results(notes=notes)
    ordered = [scores[index] for index in sorted(scores)]
    dropped = {name: error for score in ordered for name, error in score["dropped"].items()}
    results.notes += [f"renderer {name} dropped: {error}" for name, error in dropped.items()]
    if any(not score["has_disparity"] for score in ordered):
        results.notes.append("no disparity in this dataset: renderers got a flat map at the focus "
                             "disparity (depth-based renderers return the input); pass a disparity folder")
    sheet = []
    for score in ordered:
        results.rows += [row for row in score["rows"] if row["renderer"] not in dropped]
        if score["sheet"] is not None and len(sheet) < sheet_count:
            name, source, outputs, gt = score["sheet"]
            sheet.append((name, source, [(n, image) for n, image in outputs if n not in dropped], gt))
    results.summary = summarise(results.rows)
    return results, sheet


_WARMED: set[str] = set()  # renderers warmed up in this process


def score_sample(sample, renderer_names: list[str], lpips_weights: str | None = None,
                 keep_images: bool = False) -> dict:
    """Render one sample (a Sample, or a callable that reads one) with every renderer and score it.

    Returns {"rows": one dict per renderer (scene, renderer, psnr, ssim, boundary_psnr in dB,
    seconds, lpips), "dropped": {renderer: error} for those that raised LensblurError,
    "has_disparity": bool, "sheet": (name, input, [(renderer, output)], gt) uint8 images when
    ``keep_images``, else None}.
    """
    if callable(sample):
        sample = sample()
    radius = np.abs(signed_coc(sample.disparity, sample.lens.blur, sample.lens.focus_disparity,
                               sample.lens.focus_range))
    band = metrics.boundary_mask(sample.disparity, radius) if sample.has_disparity else None
    rows, outputs, dropped = [], [], {}
    for name in renderer_names:
        render = get_renderer(name)
        try:
            if name not in _WARMED:
                crop = (slice(0, 32), slice(0, 32))
                render(sample.image[crop], sample.disparity[crop], sample.lens)
                _WARMED.add(name)
            start = time.perf_counter()
            output = render(sample.image, sample.disparity, sample.lens)
            seconds = time.perf_counter() - start
        except LensblurError as error:
            dropped[name] = str(error)
            continue
        encoded = encode_srgb8(output)
        if encoded.shape != sample.gt.shape:
            encoded = cv2.resize(encoded, sample.gt.shape[1::-1], interpolation=cv2.INTER_AREA)
        row = {
            "scene": sample.name,
            "renderer": name,
            "psnr": metrics.psnr(encoded, sample.gt),
            "ssim": metrics.ssim(encoded, sample.gt),
            "boundary_psnr": metrics.boundary_psnr(encoded, sample.gt, band) if band is not None
            and band.shape == encoded.shape[:2] else math.nan,
            "seconds": seconds,
        }
        if lpips_weights:
            row["lpips"] = metrics.lpips_distance(encoded, sample.gt, lpips_weights)
        rows.append(row)
        outputs.append((name, encoded))
    sheet = (sample.name, sample.image_srgb8, outputs, sample.gt) if keep_images else None
    return {"rows": rows, "dropped": dropped, "has_disparity": sample.has_disparity, "sheet": sheet}


def summarise(rows: list[dict]) -> list[dict]:
    """Per renderer, in first-seen order: the mean of each metric over images, and the count."""
    order = list(dict.fromkeys(row["renderer"] for row in rows))
    summary = []
    for name in order:
        mine = [row for row in rows if row["renderer"] == name]
        entry = {"renderer": name, "images": len(mine)}
        for key in ("psnr", "ssim", "boundary_psnr", "seconds", "lpips"):
            values = [row[key] for row in mine if key in row and not math.isnan(row[key])]
            if key in mine[0]:
                entry[key] = float(np.mean(values)) if values else math.nan
        summary.append(entry)
    return summary


# ------------------------------------------------------------------------------------------ output

_COLUMNS = [("renderer", "renderer", "{}"), ("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
            ("boundary_psnr", "boundary PSNR", "{:.2f}"), ("lpips", "LPIPS", "{:.4f}"),
            ("seconds", "s/image", "{:.3f}"), ("images", "images", "{}")]


def _cells(summary: list[dict]) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in _COLUMNS if any(c[0] in entry for entry in summary)]
    header = [title for _, title, _ in columns]
    body = [[fmt.format(entry[key]) if key in entry else "" for key, _, fmt in columns] for entry in summary]
    return header, body


def format_table(summary: list[dict]) -> str:
    """A plain-text table of the summary, one line per renderer."""
    header, body = _cells(summary)
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header] + body]
    return "\n".join(lines)


def format_markdown(summary: list[dict], descriptions: dict[str, str] | None = None) -> str:
    """The summary as a GitHub-flavoured markdown table; with ``descriptions`` (renderer name →
    text) a last column "what" says what each renderer is."""
    header, body = _cells(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    if descriptions is not None:
        lines[0] += " what |"
        lines[1] += "---|"
        lines[2:] = [line + f" {descriptions.get(row['renderer'], '')} |" for line, row in zip(lines[2:], summary)]
    return "\n".join(lines)


def write_results(folder: str | Path, results: Results, extra: dict | None = None) -> dict[str, Path]:
    """Write results.csv (one row per image and renderer) and results.json (summary, rows, notes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(key for row in results.rows for key in row))
    csv_path = folder / "results.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys or ["scene", "renderer"])
        writer.writeheader()
        for row in results.rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    json_path = folder / "results.json"
    document = {"layout": results.layout, "summary": _finite(results.summary), "images": _finite(results.rows),
                "notes": results.notes, **(extra or {})}
    with open(json_path, "w") as handle:
        json.dump(document, handle, indent=2)
    return {"csv": csv_path, "json": json_path}


def _finite(rows: list[dict]) -> list[dict]:
    # JSON has no inf/nan: identical images (PSNR inf) become the string "inf", missing values null.
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return "inf" if value > 0 else None
        return value
    return [{k: clean(v) for k, v in row.items()} for row in rows]


def write_sheet(path: str | Path, sheet: list, tile_height: int = 192) -> Path | None:
    """A PNG grid: one row per scene, columns input | each renderer | ground truth, labelled."""
    if not sheet:
        return None
    label_height = 22
    rows = []
    for name, source, outputs, gt in sheet:
        tiles = [("input " + name, source)] + list(outputs) + [("ground truth", gt)]
        cells = []
        for label, image in tiles:
            scale = tile_height / image.shape[0]
            tile = cv2.resize(image, (max(1, round(image.shape[1] * scale)), tile_height), interpolation=cv2.INTER_AREA)
            strip = np.full((label_height, tile.shape[1], 3), 255, np.uint8)
            cv2.putText(strip, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cells.append(np.concatenate([strip, tile], axis=0))
            cells.append(np.full((tile_height + label_height, 4, 3), 255, np.uint8))
        rows.append(np.concatenate(cells[:-1], axis=1))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    grid = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid[..., ::-1])
    return path

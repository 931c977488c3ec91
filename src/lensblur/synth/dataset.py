"""Writing and reading a folder of synthetic scenes.

Per scene ``NNNN``: ``NNNN_image.png`` (8-bit sRGB all-in-focus camera image, highlights
clipped), ``NNNN_disparity.png`` (16-bit, D·65535, visible surface), ``NNNN_gt.png`` (8-bit sRGB
exact thin-lens image), ``NNNN_meta.json`` (focus disparity, blur K, aperture, seed, largest
blur radius, sample count) and, with ``layers``, ``NNNN_layers.npz`` (rgb, alpha, disparity per
layer back to front, plus the linear ground truth).

PNG I/O goes through OpenCV directly: these files are plain sRGB without metadata, so the
colour-managed reader of ``lensblur.io`` is not needed here.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.color import srgb_to_linear
from lensblur.errors import InputError, OutputError
from lensblur.synth import mixed, night, thinlens
from lensblur.synth.scene import make_scene

META_VERSION = 1
KINDS = ("layered", "night", "mixed")


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene ``index`` in a set made with ``seed`` (independent of workers)."""
    return np.random.default_rng([int(seed), int(index)])


def write_scene(folder: str | Path, index: int, seed: int, height: int, width: int, *,
                layers: bool = False, photo_dir: str | None = None,
                view_step: float = thinlens.DEFAULT_VIEW_STEP, kind: str = "layered", focus: str = "any") -> dict:
    """Make scene ``index`` of the set seeded with ``seed``, render it and write its files.
    focus: "any" or "nearest" (see :func:`lensblur.synth.scene.make_scene`).

    kind: "layered" (make_scene), "night" (lensblur.synth.night: the image is the stopped-down
    photo with glare and starbursts; the metadata also lists the lamps and the glare) or "mixed"
    (lensblur.synth.mixed, the training-data engine: also writes ``NNNN_mask.png``, the nearest
    object's alpha as 8-bit, and describes the scene in the metadata).
    focus: "any" or "nearest" (layered scenes; see :func:`lensblur.synth.scene.make_scene`).
    Returns the metadata written to ``NNNN_meta.json``.
    """
    folder = Path(folder)
    rng = scene_rng(seed, index)
    extra = {}
    if kind == "night":
        scene, lamps = night.make_night_scene(rng, height, width)
        glare = night.random_glare(rng, min(height, width) / 384.0)
        image = night.small_aperture_photo(scene, glare)
        extra = {"kind": kind, "glare": asdict(glare), "lamps": [asdict(lamp) for lamp in lamps]}
    elif kind == "mixed":
        scene, subject, info = mixed.make_mixed_scene(rng, height, width)
        image = thinlens.camera_image(scene)
        extra = {"kind": kind, **info}
    elif kind == "layered":
        scene = make_scene(rng, height, width, photo_dir=photo_dir, focus=focus)
        image = thinlens.camera_image(scene)
    else:
        raise InputError(f"unknown scene kind {kind!r}: choose {', '.join(KINDS)}")
    gt = thinlens.render_ground_truth(scene, view_step)
    stem = folder / f"{index:04d}"
    _write_png(f"{stem}_image.png", image)
    _write_png(f"{stem}_disparity.png", encode_disparity16(thinlens.visible_disparity(scene)))
    _write_png(f"{stem}_gt.png", thinlens.encode_srgb8(gt))
    if kind == "mixed":
        _write_png(f"{stem}_mask.png", np.round(subject * 255.0).astype(np.uint8))
    meta = {
        "version": META_VERSION,
        "index": index,
        "seed": [int(seed), int(index)],
        "height": height,
        "width": width,
        "focus_disparity": scene.focus_disparity,
        "blur": scene.blur,
        "aperture": asdict(scene.aperture),
        "max_coc": scene.max_coc(),
        "layers": len(scene.layers),
        "aperture_samples": int(len(thinlens.aperture_samples(scene, view_step))),
        "view_step": view_step,
        **extra,
    }
    with open(f"{stem}_meta.json", "w") as handle:
        json.dump(meta, handle, indent=2)
    if layers:
        arrays = {"ground_truth": gt}
        for i, layer in enumerate(scene.layers):
            arrays[f"rgb_{i}"], arrays[f"alpha_{i}"], arrays[f"disparity_{i}"] = layer.rgb, layer.alpha, layer.disparity
        np.savez_compressed(f"{stem}_layers.npz", **arrays)
    return meta


def generate(folder: str | Path, count: int, seed: int, height: int, width: int, *, workers: int | None = 0,
             scheduler: str | None = None, client=None, layers: bool = False, photo_dir: str | None = None,
             overwrite: bool = False, progress=None,
             kind: str = "layered", focus: str = "any") -> list[dict]:
    """Write ``count`` scenes into ``folder`` as Dask tasks; returns their metadata in index order.

    workers: processes of a local Dask cluster (None: the CPU cores; 0: in this process, one
    scene after the other); scheduler: an existing Dask cluster (``tcp://HOST:8786``) instead,
    whose workers must see ``folder`` at the same path; client: an open Dask client instead of
    both. The files depend only on (seed, index, size, photo_dir), never on the workers.
    progress: optional callable invoked once per finished scene.
    """
    from lensblur.batch.cluster import map_tasks, open_client

    if count < 1:
        raise InputError(f"--count must be at least 1, got {count}")
    if height < 8 or width < 8:
        raise InputError(f"scenes must be at least 8×8 pixels, got {height}×{width}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not overwrite and any(folder.glob("*_meta.json")):
        raise OutputError(f"{folder} already holds scenes: choose an empty folder or pass --overwrite")
    if kind not in KINDS:
        raise InputError(f"unknown scene kind {kind!r}: choose {', '.join(KINDS)}")
    jobs = [partial(write_scene, folder.resolve(), i, seed, height, width, layers=layers, photo_dir=photo_dir,
                    kind=kind, focus=focus)
            for i in range(count)]
    metas: list[dict | None] = [None] * count
    cluster = nullcontext(client) if client is not None else open_client(workers, scheduler)
    with cluster as client:
        for index, meta, error in map_tasks(client, jobs, pixels=[height * width] * count):
            if error is not None:
                raise error
            metas[index] = meta
            if progress:
                progress()
    return metas


def encode_disparity16(disparity: np.ndarray) -> np.ndarray:
    """Disparity in [0, 1] → uint16 (D·65535, rounded)."""
    return np.round(np.clip(disparity, 0, 1) * 65535.0).astype(np.uint16)


def read_disparity(path: str | Path) -> np.ndarray:
    """A disparity PNG/TIFF/JPEG → float32 H×W in [0, 1] (16-bit maps /65535, 8-bit /255)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputError(f"cannot read disparity map {path}")
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0 if pixels.dtype == np.uint8 else 1.0
    return (pixels.astype(np.float32) / np.float32(scale)).astype(np.float32)


def read_srgb8(path: str | Path) -> np.ndarray:
    """An image file → uint8 sRGB H×W×3 (16-bit files are rounded to 8 bits)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputError(f"cannot read image {path}")
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    pixels = pixels[..., 2::-1] if pixels.shape[2] >= 3 else pixels
    if pixels.dtype == np.uint16:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def srgb8_to_linear(pixels: np.ndarray) -> np.ndarray:
    """uint8 sRGB → linear float32 in [0, 1]."""
    return srgb_to_linear(pixels.astype(np.float32) / np.float32(255.0))


def read_meta(path: str | Path) -> dict:
    """The metadata of one scene; ``aperture`` is returned as a lensblur.aperture.Aperture."""
    with open(path) as handle:
        meta = json.load(handle)
    meta["aperture"] = Aperture(**meta.get("aperture", {}))
    return meta


def _write_png(path: str, pixels: np.ndarray) -> None:
    if pixels.ndim == 3:
        pixels = pixels[..., ::-1]
    tmp = f"{path}.tmp{os.getpid()}.png"
    if not cv2.imwrite(tmp, np.ascontiguousarray(pixels)):
        raise OutputError(f"cannot write {path}")
    os.replace(tmp, path)

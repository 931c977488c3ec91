"""Exact thin-lens images of layered scenes (the accumulation buffer).

Through aperture point u (unit coordinates, inside the aperture shape) a layer pixel with signed
circle of confusion c appears displaced by u·c pixels. The defocused image is the average over
aperture points of these pinhole views, each composited back to front with the over operator on
premultiplied linear radiance. Hidden content is known in a layered scene, so this is exact up
to the sampling of the aperture.

Sample-count rule: aperture points lie on a square grid of spacing s = step / r_max (unit
coordinates), r_max the largest |c| in the scene, so the views of the most-blurred layer are at
most ``step`` pixels apart (default 1 px; neighbouring views of every other layer are closer),
with bilinear resampling in between. About π/s² samples: ~1,260 for r_max = 20 px. Against a
grid 4× denser (step 0.35 px) the 8-bit result differs by at most one level (PSNR ~67 dB).

Warping: each view is a backward warp, the displacement evaluated at the destination pixel:
view(q) = layer(q − u·c(q)). For constant-disparity layers this is exact; for the background
ramp it is exact to first order, accurate because its disparity changes by well under 0.01 per
pixel there. Samples beyond the image border clamp to the edge pixel, as renderers do.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from scipy import ndimage

from lensblur.color import linear_to_srgb
from lensblur.synth.scene import Scene

DEFAULT_VIEW_STEP = 1.0  # pixels between neighbouring views of the most-blurred layer
_TILE = (8, 64)  # rows, columns of the output tiles the kernel works on


def aperture_samples(scene: Scene, view_step: float = DEFAULT_VIEW_STEP) -> np.ndarray:
    """Aperture sample points (n, 2) of (x, y) in unit coordinates for ``scene``.

    view_step: the largest distance in pixels between neighbouring views (0.1 to 1).
    A scene without blur gets the single pinhole point (0, 0).
    """
    radius = scene.max_coc()
    if radius <= view_step / 2:
        return np.zeros((1, 2))
    return scene.aperture.grid_samples(view_step / radius)


def render_ground_truth(scene: Scene, view_step: float = DEFAULT_VIEW_STEP) -> np.ndarray:
    """The exact defocused image of ``scene``: linear radiance float32 H×W×3 (may exceed 1).

    view_step: pixels between neighbouring views of the most-blurred layer (see module doc).
    About 2.5 s for 384×576 with a largest blur radius of 20 px on two cores.
    """
    premult, coc = _stack(scene)
    pad = int(math.ceil(float(np.abs(coc).max()))) + 2
    planes = np.pad(premult.transpose(0, 3, 1, 2), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    samples = aperture_samples(scene, view_step).astype(np.float32)
    row_uniform = np.array([bool(np.all(c == c[:, :1])) for c in coc])
    active = _active_layers(scene, coc, *_TILE)
    return _accumulate(np.ascontiguousarray(planes), coc, row_uniform, samples, active, *_TILE, pad)


def render_pinhole(scene: Scene) -> np.ndarray:
    """The all-in-focus (u = 0) view: linear radiance float32 H×W×3, highlights above 1 kept."""
    out = np.zeros(scene.shape + (3,), np.float32)
    for layer in scene.layers:
        a = layer.alpha[..., None]
        out = layer.rgb * a + (1 - a) * out
    return out.astype(np.float32)


def camera_image(scene: Scene) -> np.ndarray:
    """What a camera records in focus everywhere: the pinhole view clipped, sRGB, uint8 H×W×3."""
    return encode_srgb8(render_pinhole(scene))


def encode_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear float image → clipped sRGB uint8 (round to nearest)."""
    return np.round(linear_to_srgb(linear) * 255.0).astype(np.uint8)


def visible_disparity(scene: Scene) -> np.ndarray:
    """Disparity of the visible surface, float32 H×W: the nearest layer with alpha > 0.5."""
    disparity = scene.layers[0].disparity.copy()
    for layer in scene.layers[1:]:
        front = layer.alpha > 0.5
        disparity[front] = layer.disparity[front]
    return disparity


def _stack(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    premult = np.stack([np.concatenate([layer.rgb * layer.alpha[..., None], layer.alpha[..., None]], axis=2)
                        for layer in scene.layers]).astype(np.float32)
    coc = np.stack([scene.coc(layer) for layer in scene.layers]).astype(np.float32)
    return np.ascontiguousarray(premult), np.ascontiguousarray(coc)


def _active_layers(scene: Scene, coc: np.ndarray, tile_h: int, tile_w: int) -> np.ndarray:
    """Which layers can show in each output tile (tiles × layers, bool), so the kernel skips the rest.

    A layer can show at a pixel if it has alpha > 0 within its blur radius (+1 px for bilinear
    resampling). Behind a layer that is fully opaque over that whole disc for every pixel of the
    tile, everything is hidden in every view.
    """
    n = len(scene.layers)
    height, width = scene.shape
    tiles_y, tiles_x = -(-height // tile_h), -(-width // tile_w)
    active = np.zeros((tiles_y * tiles_x, n), np.bool_)
    pad_y, pad_x = tiles_y * tile_h - height, tiles_x * tile_w - width
    first = np.zeros(tiles_y * tiles_x, np.int64)
    for index, layer in enumerate(scene.layers):
        disc = _disc(int(math.ceil(float(np.abs(coc[index]).max()))) + 1)
        reach = ndimage.binary_dilation(layer.alpha > 0, structure=disc)
        reach = np.pad(reach, ((0, pad_y), (0, pad_x)))
        active[:, index] = reach.reshape(tiles_y, tile_h, tiles_x, tile_w).any(axis=(1, 3)).reshape(-1)
        if index > 0:
            opaque = ndimage.binary_erosion(layer.alpha >= 1.0, structure=disc, border_value=1)
            opaque = np.pad(opaque, ((0, pad_y), (0, pad_x)), constant_values=True)
            whole = opaque.reshape(tiles_y, tile_h, tiles_x, tile_w).all(axis=(1, 3)).reshape(-1)
            first[whole] = index
    active &= np.arange(n)[None, :] >= first[:, None]
    return active


def _disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius + radius


@njit(cache=True, parallel=True)
def _accumulate(planes, coc, row_uniform, samples, active, tile_h, tile_w, pad):
    """Average over aperture samples of the back-to-front composite, one output tile at a time.

    planes: premultiplied (r, g, b, alpha) planes per layer, edge-padded by ``pad`` pixels so
    shifted reads never need clamping. Tiles keep the few layer rows they read in cache while
    all samples pass over them; a layer whose c is constant along each row shifts a whole tile
    row uniformly, so its inner loop runs over contiguous memory (and vectorises).
    """
    n_layers, height, width = coc.shape
    n_samples = samples.shape[0]
    tiles_y = (height + tile_h - 1) // tile_h
    tiles_x = (width + tile_w - 1) // tile_w
    out = np.zeros((height, width, 3), np.float32)
    for t in prange(tiles_y * tiles_x):
        y0 = (t // tiles_x) * tile_h
        x0 = (t % tiles_x) * tile_w
        th = min(tile_h, height - y0)
        tw = min(tile_w, width - x0)
        acc = np.zeros((3, th, tw), np.float32)
        view = np.zeros((3, th, tw), np.float32)
        for s in range(n_samples):
            ux = samples[s, 0]
            uy = samples[s, 1]
            for k in range(3):
                for yy in range(th):
                    for xx in range(tw):
                        view[k, yy, xx] = 0.0
            for layer in range(n_layers):
                if not active[t, layer]:
                    continue
                if row_uniform[layer]:
                    for yy in range(th):
                        c = coc[layer, y0 + yy, 0]
                        dx = -ux * c
                        dy = -uy * c
                        ix = int(np.floor(dx))
                        iy = int(np.floor(dy))
                        fx = np.float32(dx - ix)
                        fy = np.float32(dy - iy)
                        w00 = (1 - fx) * (1 - fy)
                        w01 = fx * (1 - fy)
                        w10 = (1 - fx) * fy
                        w11 = fx * fy
                        row0 = y0 + yy + iy + pad
                        col = x0 + ix + pad
                        for xx in range(tw):
                            sx = col + xx
                            a = (w00 * planes[layer, 3, row0, sx] + w01 * planes[layer, 3, row0, sx + 1]
                                 + w10 * planes[layer, 3, row0 + 1, sx] + w11 * planes[layer, 3, row0 + 1, sx + 1])
                            keep = 1 - a
                            for k in range(3):
                                view[k, yy, xx] = (w00 * planes[layer, k, row0, sx] + w01 * planes[layer, k, row0, sx + 1]
                                                   + w10 * planes[layer, k, row0 + 1, sx]
                                                   + w11 * planes[layer, k, row0 + 1, sx + 1] + keep * view[k, yy, xx])
                else:
                    for yy in range(th):
                        for xx in range(tw):
                            c = coc[layer, y0 + yy, x0 + xx]
                            sx = x0 + xx - ux * c + pad
                            sy = y0 + yy - uy * c + pad
                            sx0 = int(np.floor(sx))
                            sy0 = int(np.floor(sy))
                            fx = np.float32(sx - sx0)
                            fy = np.float32(sy - sy0)
                            w00 = (1 - fx) * (1 - fy)
                            w01 = fx * (1 - fy)
                            w10 = (1 - fx) * fy
                            w11 = fx * fy
                            a = (w00 * planes[layer, 3, sy0, sx0] + w01 * planes[layer, 3, sy0, sx0 + 1]
                                 + w10 * planes[layer, 3, sy0 + 1, sx0] + w11 * planes[layer, 3, sy0 + 1, sx0 + 1])
                            for k in range(3):
                                view[k, yy, xx] = (w00 * planes[layer, k, sy0, sx0]
                                                   + w01 * planes[layer, k, sy0, sx0 + 1]
                                                   + w10 * planes[layer, k, sy0 + 1, sx0]
                                                   + w11 * planes[layer, k, sy0 + 1, sx0 + 1]
                                                   + (1 - a) * view[k, yy, xx])
            for k in range(3):
                for yy in range(th):
                    for xx in range(tw):
                        acc[k, yy, xx] += view[k, yy, xx]
        for k in range(3):
            for yy in range(th):
                for xx in range(tw):
                    out[y0 + yy, x0 + xx, k] = acc[k, yy, xx] / n_samples
    return out

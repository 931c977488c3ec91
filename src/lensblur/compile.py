"""``python -m lensblur.compile``: compile the renderer's numba kernels once, ahead of the first render.

The README's set-up runs it, so the first photo renders in about a second instead of waiting
≈25 s for numba (lensblur.kernel_cache says where the compiled code is kept). It then builds the
ahead-of-time compiled module of the same kernels (lensblur.aot), with which a render does not
import numba at all (needs a C compiler; without one the JIT kernels serve and it says so).
Running it again only loads the kernels from the cache, keeps a fresh compiled module, and says so.
"""

from __future__ import annotations

import json
import os
import sys
import time

from lensblur.kernel_cache import kernel_stats


def warm_up(seed: int = 0) -> dict:
    """Render tiny scenes through :func:`lensblur.render` that take every path of the default
    renderer (layered and continuous depth, a matte, highlights, blades, rim, cat's eye, grain,
    discs large enough to be drawn at lower resolution), estimate depth for one and encode one
    for writing, so that numba compiles (or loads) all those kernels. Returns
    :func:`kernel_stats` plus ``seconds``, the wall time taken. seed: of the random picture."""
    import numpy as np

    from lensblur.api import estimate_depth, render
    from lensblur.io.icc import encode, encode_levels

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    height, width = 48, 64
    image = rng.uniform(0.0, 1.0, (height, width, 3)).astype(np.float32)
    image[10:14, 40:44] = 1.0  # a clipped light for highlight recovery
    ramp = np.repeat(np.linspace(0.2, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    planes = np.where(np.arange(width)[None, :] < width // 2, 0.9, 0.2).astype(np.float32).repeat(height, 0)
    matte = (planes > 0.5).astype(np.float32)
    for disparity, settings in [
        (planes, {}),
        (ramp, {}),
        (planes, {"matte": matte}),
        (ramp, {"aperture": "blades:6:15:0.3", "rim": 0.4, "cat_eye": 0.5, "grain": "auto"}),
        (planes, {"highlights": False}),
        (ramp, {"blur": 40.0}),  # discs beyond LEVEL_RADIUS: drawn at lower resolution and composited
    ]:
        render(image, disparity, **{"blur": 6.0, "focus_disparity": 0.9, **settings})
    from lensblur.renderers import scatter

    budget, scatter.HIGHLIGHT_BUDGET = scatter.HIGHLIGHT_BUDGET, 40.0  # lights over budget join their slab
    try:
        render(image, ramp, blur=40.0, focus_disparity=0.9)
    finally:
        scatter.HIGHLIGHT_BUDGET = budget
    estimate_depth(image)  # the automatic estimate's edge-aware fill (lensblur.depth.refine)
    render(image, ramp[::4, ::4], blur=6.0, focus_disparity=0.9)  # a small map's guided enlargement
    encode(image, None)  # the tone-curve tables of lensblur.io.icc, used by every write
    encode_levels(image, None, 255)
    encode_levels(image, None, 65535)
    return {**kernel_stats(), "seconds": time.perf_counter() - start}


def build_aot() -> dict:
    """Build the ahead-of-time compiled kernels (:func:`lensblur.aot.build`) from the kernels
    :func:`warm_up` called, unless a fresh module that loads is already there. Returns ``{"aot":
    path or None, "aot_seconds": s, "aot_note": what happened}``; never raises (no C compiler, no
    writable folder: the JIT kernels serve)."""
    from lensblur import aot

    start = time.perf_counter()
    key = aot.source_key()
    if aot.find(key) is not None:
        return {"aot": str(aot.find_path(key)), "aot_seconds": 0.0, "aot_note": "fresh, kept"}
    try:
        path = aot.build()
    except Exception as error:  # noqa: BLE001 - no compiler, no writable folder: the JIT kernels serve
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        return {"aot": None, "aot_seconds": time.perf_counter() - start, "aot_note": f"{type(error).__name__}: {first}"}
    return {"aot": str(path), "aot_seconds": time.perf_counter() - start, "aot_note": "built"}


def main(argv: list[str] | None = None) -> int:
    """``python -m lensblur.compile [-q | --json] [--no-aot]``: compile (or load) the JIT kernels,
    then build the ahead-of-time compiled module (not with ``--no-aot``); a summary on stdout
    (or the :func:`warm_up` and :func:`build_aot` statistics as JSON)."""
    argv = sys.argv[1:] if argv is None else argv
    # the JIT kernels, whatever compiled module exists: their calls give the signatures to export
    os.environ["LENSBLUR_KERNELS"] = "jit"
    stats = warm_up()
    if "--no-aot" not in argv:
        stats.update(build_aot())
    if "--json" in argv:
        print(json.dumps(stats))
    elif "-q" not in argv:
        where = ", ".join(stats["cache_dirs"]) or "nowhere (no writable cache folder)"
        print(f"lensblur: {stats['kernels']} kernels ready in {stats['seconds']:.1f} s "
              f"({stats['cache_misses']} compiled, {stats['cache_hits']} loaded from the cache); cache: {where}")
        if stats.get("aot"):
            print(f"lensblur: ahead-of-time compiled kernels ({stats['aot_note']}, {stats['aot_seconds']:.1f} s): "
                  f"{stats['aot']}")
        elif "aot_note" in stats:
            print(f"lensblur: no ahead-of-time compiled kernels ({stats['aot_note']}); renders use the JIT "
                  "kernels above", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

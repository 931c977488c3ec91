"""``python -m lensblur.compile``: compile the renderer's numba kernels once, ahead of the first render.

The README's set-up runs it, so the first photo renders in about a second instead of waiting
≈25 s for numba (lensblur.kernel_cache says where the compiled code is kept). Running it again
only loads the kernels from the cache and says so.
"""

from __future__ import annotations

import json
import sys
import time

from lensblur.kernel_cache import kernel_stats


def warm_up() -> dict:
    """Render tiny scenes through :func:`lensblur.render` that take every path of the default
    renderer (layered and continuous depth, a matte, highlights, blades, rim, cat's eye, grain)
    and encode one for writing, so that numba compiles (or loads) all those kernels. Returns
    :func:`kernel_stats` plus ``seconds``, the wall time taken."""
    import numpy as np

    from lensblur.api import render
    from lensblur.io.icc import encode, encode_levels

    start = time.perf_counter()
    rng = np.random.default_rng(0)
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
    ]:
        render(image, disparity, blur=6.0, focus_disparity=0.9, **settings)
    encode(image, None)  # the tone-curve tables of lensblur.io.icc, used by every write
    encode_levels(image, None, 255)
    encode_levels(image, None, 65535)
    return {**kernel_stats(), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    """``python -m lensblur.compile [-q | --json]``: compile (or load) the kernels; one summary line
    (or the :func:`warm_up` statistics as JSON) on stdout."""
    argv = sys.argv[1:] if argv is None else argv
    stats = warm_up()
    if "--json" in argv:
        print(json.dumps(stats))
    elif "-q" not in argv:
        where = ", ".join(stats["cache_dirs"]) or "nowhere (no writable cache folder)"
        print(f"lensblur: {stats['kernels']} kernels ready in {stats['seconds']:.1f} s "
              f"({stats['cache_misses']} compiled, {stats['cache_hits']} loaded from the cache); cache: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

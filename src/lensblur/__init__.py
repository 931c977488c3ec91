"""lensblur: realistic lens blur (bokeh, shallow depth of field) for any photo.

The few names most users need::

    import lensblur
    photo = lensblur.read_image("in.jpg")
    disparity = lensblur.read_depth("disparity.png")
    out = lensblur.render(photo, disparity, blur=20, focus=(400, 300))
    lensblur.write_image("out.jpg", out, like=photo)
"""

__version__ = "0.1.0"

from lensblur.kernel_cache import ensure_cache_dir as _ensure_cache_dir  # noqa: E402 - before numba is imported

_ensure_cache_dir()

_LAZY = {
    "render": "lensblur.api", "make_lens": "lensblur.api", "estimate_depth": "lensblur.api",
    "read_image": "lensblur.io.images", "write_image": "lensblur.io.images", "Photo": "lensblur.io.images",
    "read_depth": "lensblur.io.depth",
    "Lens": "lensblur.lens", "Highlights": "lensblur.lens",
    "Aperture": "lensblur.aperture",
    "LensblurError": "lensblur.errors", "InputError": "lensblur.errors",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    # Imported on first use so that `import lensblur` and the CLI start quickly.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lensblur' has no attribute {name!r}")

"""The local web app (``lensblur serve``): see :func:`lensblur.web.app.create_app` and docs/web.md."""

from lensblur.web.app import create_app

__all__ = ["create_app"]

"""``lensblur serve``: the local web app (open a photo, click to focus, drag the aperture, save)."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys

from lensblur.commands.options import positive_float, positive_int
from lensblur.errors import InputError


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

NAME = "serve"
HELP = "start the local web app: open a photo, click to focus, drag the aperture, save at full resolution"
EXAMPLES = """examples:
  lensblur serve                      then open http://127.0.0.1:8000/
  lensblur serve --port 8080 --max-upload-mb 500
  lensblur serve --host 0.0.0.0 --allow-remote   other computers too; open the URL it prints (with a token)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur serve``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="needed for a --host other than loopback: the app is then reachable from other "
                             "computers, and every request needs the token in the URL printed at start")
    parser.add_argument("--max-upload-mb", type=positive_float, default=200, metavar="MB",
                        help="largest upload accepted, in megabytes (default 200)")
    parser.add_argument("--max-pixels", type=positive_int, default=100_000_000, metavar="N",
                        help="largest photo accepted, in pixels (default 100 million)")
    parser.add_argument("--max-sessions", type=positive_int, default=8, metavar="N",
                        help="photos kept open at once; the least recently used is dropped (default 8)")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; temporary files are removed on exit."""
    if not 0 < args.port < 65536:
        raise InputError(f"port must be in 1..65535, got {args.port}")
    remote = not is_loopback(args.host)
    if remote and not args.allow_remote:
        raise InputError(f"--host {args.host} would let other computers use the app: add --allow-remote "
                         "(requests then need the token printed at start), or keep the default 127.0.0.1")
    from lensblur.aot import prefer_jit

    prefer_jit()  # a long-running server: numba's parallel kernels pay back their import
    try:
        import uvicorn

        from lensblur.web.app import create_app
    except ImportError as error:
        raise InputError(f"the web app needs its extra packages ({error.name} is missing): "
                         "pip install starlette uvicorn") from None
    token = secrets.token_urlsafe(24) if remote else None
    app = create_app(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                     max_sessions=args.max_sessions, host=args.host, token=token)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    if remote:
        print(f"lensblur: warning: listening on {args.host}: anyone who can reach this computer and has the "
              "token can upload photos to it", file=sys.stderr)
        print(f"lensblur: serving on http://{shown}:{args.port}/?token={token} (Ctrl+C to stop)", flush=True)
    elif not args.quiet:
        print(f"lensblur: serving on http://{shown}:{args.port}/ (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0

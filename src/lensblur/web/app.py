"""The local web app: upload a photo, click to focus, drag the aperture, save at full resolution.

``create_app()`` returns a Starlette application. JSON API (every error is JSON ``{"error": ...}``):

    POST   /api/sessions?name=photo.jpg      raw image bytes as the body -> 201 session info
    GET    /api/sessions/{id}                session info
    DELETE /api/sessions/{id}                forget the photo, remove its temporary files
    POST   /api/sessions/{id}/focus          {"x": 0..1, "y": 0..1} -> {"focus_disparity": d}
    GET    /api/sessions/{id}/preview?...    screen-size JPEG (view=render|original) or PNG
                                             (view=disparity|matte); settings as query parameters;
                                             draft=on renders a half-size copy (while dragging)
    POST   /api/sessions/{id}/save           settings as JSON -> 202 {"job": job_id}
    GET    /api/sessions/{id}/jobs/{job}     {"state", "progress", "elapsed_s", "error"}
    GET    /api/sessions/{id}/jobs/{job}/file  the full-resolution result (EXIF and ICC kept)

Settings: blur (K in full-resolution pixels), focus_disparity (0..1), focus_range (0..1),
highlights (strength 0..50, 0 = off), grain (on/off), shape (disk/blades), blades (3..12),
rotation (degrees), renderer. The preview renders the cached downscaled photo and depth with
K × preview_width / full_width, so it matches the full-resolution result.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lensblur.aperture import Aperture
from lensblur.errors import InputError, LensblurError
from lensblur.io import icc
from lensblur.io.images import jpeg_bytes, write_image
from lensblur.io.limits import LimitError
from lensblur.lens import Highlights, Lens, focus_disparity_at, largest_radius, radius_limit
from lensblur.renderers import available_renderers, get_renderer
from lensblur.web.guard import LOOPBACK_NAMES, SECURITY_HEADERS, Guard, host_name
from lensblur.web.sessions import ID_PATTERN, Job, Session, SessionStore, UnknownSession, sniff_format

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_PIXELS = 100_000_000
WEB_RENDERERS = ("scatter", "naive", "identity", "gegl")

# numba's parallel kernels must not be entered from two threads at once, and two renders on a
# 2-core CPU gain nothing from overlapping: renders of all sessions take turns.
RENDER_LOCK = threading.Lock()

# How idle kernel threads wait between two parallel kernels (OpenMP, numba's JIT route that
# `lensblur serve` takes): "passive" sleeps instead of spinning. A preview is ~30 short parallel
# kernels with Python and OpenCV work between them; spinning threads take the cores that work
# needs as soon as anything else runs on the machine (docs/web.md, "How the preview stays fast").
OMP_WAIT_POLICY = "passive"


class ApiError(Exception):
    """An error answered as JSON with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------- settings


def _number(values, key, default, low, high) -> float:
    raw = values.get(key)
    if raw is None or raw == "":
        return float(default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"{key} must be a number, got {raw!r}") from None
    if not np.isfinite(value) or not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low:g} and {high:g}, got {value:g}")
    return value


def _flag(values, key, default: bool) -> bool:
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    raise ApiError(400, f"{key} must be on or off, got {raw!r}")


def default_blur(session: Session) -> float:
    """The phone's blur setting when it stored one, else 2% of the width (as the CLI does)."""
    width = session.full_size[0]
    if session.depth.blur_at_infinity:
        return float(session.depth.blur_at_infinity * width)
    return round(0.02 * width, 1)


def default_focus_disparity(session: Session) -> float:
    disparity = session.depth.disparity
    if session.depth.focus_point is not None:
        x, y = session.depth.focus_point
        height, width = disparity.shape
        return focus_disparity_at(disparity, min(max(x, 0), width - 1), min(max(y, 0), height - 1))
    height, width = disparity.shape
    return float(np.median(disparity[height // 3:2 * height // 3, width // 3:2 * width // 3]))


def parse_settings(values, session: Session) -> tuple[Lens, str]:
    """(Lens at full resolution, renderer name) from query parameters or a JSON object."""
    width = session.full_size[0]
    blur = _number(values, "blur", default_blur(session), 0, 0.25 * width)
    focus = _number(values, "focus_disparity", session.focus_disparity, 0, 1)
    focus_range = _number(values, "focus_range", 0, 0, 1)
    strength = _number(values, "highlights", Highlights().strength, 0, 50)  # the default models night lamps
    grain = _flag(values, "grain", False)
    shape = str(values.get("shape") or "disk").lower()
    if shape in ("disk", "disc"):
        aperture = Aperture()
    elif shape == "blades":
        blades = int(_number(values, "blades", 6, 3, 12))
        rotation = _number(values, "rotation", 0, -360, 360)
        aperture = Aperture(blades, rotation, 0.0)
    else:
        raise ApiError(400, f"shape must be disk or blades, got {shape!r}")
    renderer = str(values.get("renderer") or "scatter")
    if renderer not in WEB_RENDERERS or renderer not in available_renderers():
        raise ApiError(400, f"unknown renderer {renderer!r}: choose from {', '.join(WEB_RENDERERS)}")
    try:
        lens = Lens(blur=blur, focus_disparity=focus, focus_range=focus_range, aperture=aperture,
                    highlights=Highlights(strength=strength) if strength > 0 else None,
                    grain="auto" if grain else None)
    except InputError as error:
        raise ApiError(400, str(error)) from None
    # The slider may ask for more than the renderer allows (lensblur.lens.radius_limit): clamp K.
    height, width = session.depth.disparity.shape
    radius = largest_radius(session.disparity_range, lens)  # its min and max are the map's
    if radius > radius_limit(height, width):
        lens = lens.with_(blur=lens.blur * radius_limit(height, width) / radius)
    return lens, renderer


# ---------------------------------------------------------------- rendering


def render_preview(session: Session, lens: Lens, renderer: str, draft: bool = False) -> np.ndarray:
    """Render the cached screen-size (or draft) copy with the blur scaled to its width:
    K_preview = K_full × preview_width / full_width. Hold RENDER_LOCK while calling this."""
    pixels, disparity, matte, scale = session.level(draft)
    options = {}
    if renderer == "scatter":  # what does not depend on the lens is kept in the session
        options["clipped"] = session.clipped_analysis(lens.highlights, draft)
        if matte is not None:
            options["subject"] = session.subject_layers(draft)
    return get_renderer(renderer)(pixels, disparity, lens.with_(blur=lens.blur * scale), matte=matte, **options)


def encode_jpeg(linear: np.ndarray, profile: bytes | None, quality: int = 88) -> bytes:
    """Linear pixels in the photo's primaries to a JPEG carrying the photo's profile (sRGB when
    it has none or a non-RGB one), encoded to 8 bits in one pass exactly as a saved file is."""
    if not (profile and icc.colour_space(profile) == "RGB"):
        profile = None
    return jpeg_bytes(icc.encode_levels(linear, profile, 255), profile, quality=quality)


def encode_grey_png(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def session_info(session: Session) -> dict:
    width, height = session.full_size
    pw, ph = session.preview_size
    return {
        "id": session.id,
        "name": session.name,
        "format": session.photo.format,
        "width": width,
        "height": height,
        "preview_width": pw,
        "preview_height": ph,
        "depth_source": session.depth.source,
        "has_matte": session.depth.matte is not None,
        "has_profile": session.photo.icc_profile is not None,
        "has_exif": session.photo.exif is not None,
        "focus_disparity": session.focus_disparity,
        "default_blur": default_blur(session),
        "max_blur": round(0.25 * width, 1),
        "renderers": [name for name in WEB_RENDERERS if name in available_renderers()],
    }


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def output_name(session: Session) -> str:
    stem = _SAFE_NAME.sub("_", Path(session.name).stem)[:80].strip("._") or "photo"
    return f"{stem}_lensblur{session.upload.suffix}"


def run_save(session: Session, job: Job, lens: Lens, renderer: str) -> None:
    """Render at full resolution and write the file next to the upload (in a background thread)."""
    try:
        job.state = "waiting"
        with RENDER_LOCK:
            job.state, job.started = "rendering", time.monotonic()
            result = get_renderer(renderer)(session.depth.pixels, session.depth.disparity, lens,
                                            matte=session.depth.matte)
        job.state, job.progress = "writing", 0.95
        path = session.folder / f"{job.id}{session.upload.suffix}"
        write_image(path, result, like=session.photo, quality=95)
        job.path, job.filename = path, output_name(session)
        job.state, job.progress = "done", 1.0
    except LensblurError as error:
        job.state, job.error = "failed", str(error)
    except Exception as error:  # noqa: BLE001 - reported to the page, not raised in a thread
        job.state, job.error = "failed", f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- app

# Content types a cross-site page may send without asking first (CORS "simple" requests).
_FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _require_json(request: Request) -> None:
    """Refuse a body declared as anything but JSON (a text/plain "JSON" is how a cross-site form
    would send it); a body without a Content-Type is parsed and refused when it is not JSON."""
    if _media_type(request) not in ("", "application/json"):
        raise ApiError(415, "send JSON with Content-Type: application/json")



def create_app(max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_sessions: int = 8, temp_root: str | None = None, host: str = "127.0.0.1",
               token: str | None = None) -> Starlette:
    """The web app. max_upload_bytes: largest upload accepted (default 200 MB); max_pixels: largest
    photo in pixels (default 100 MP); max_sessions: photos kept at once (least recently used
    dropped first); temp_root: where the private temporary folder is made (default: the system's).
    host: the address served; only it, localhost, 127.0.0.1 and ::1 are accepted in the Host
    header (any host when ``token`` is given). token: a secret every request must carry (the
    ``--allow-remote`` mode); see lensblur.web.guard.
    ``app.state.store`` is the :class:`SessionStore`.

    Sets ``OMP_WAIT_POLICY`` to :data:`OMP_WAIT_POLICY` in this process's environment unless it is
    set already; it takes effect when no parallel kernel has run in the process yet."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    store = SessionStore(max_sessions=max_sessions, max_pixels=max_pixels, root=temp_root)

    def session_of(request: Request) -> Session:
        try:
            return store.get(request.path_params["session_id"])
        except UnknownSession:
            raise ApiError(404, "no such session: upload the photo again") from None

    async def upload(request: Request) -> Response:
        if _media_type(request) in _FORM_TYPES:
            raise ApiError(415, "send the photo's bytes as the request body, not as a form or text")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_upload_bytes:
            raise ApiError(413, f"the file is {int(length) / 2**20:.1f} MB, over the upload limit of "
                                f"{max_upload_bytes / 2**20:.0f} MB")
        name = Path(request.query_params.get("name") or "photo").name[:200] or "photo"
        session_id, folder = store.new_folder()
        try:
            partial = folder / "upload.part"
            size, head = 0, b""
            with open(partial, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload_bytes:
                        raise ApiError(413, f"the file is over the upload limit of {max_upload_bytes / 2**20:.0f} MB")
                    if len(head) < 32:
                        head += chunk[:32]
                    handle.write(chunk)
            if size == 0:
                raise ApiError(400, "the upload is empty: send the photo's bytes as the request body")
            suffix = sniff_format(head)
            if suffix is None:
                raise ApiError(415, f"{name} is not a photo lensblur can read (JPEG, PNG, TIFF, WebP, BMP "
                                    f"or HEIC), judging by its content")
            stored = folder / f"upload{suffix}"
            partial.rename(stored)
        except BaseException:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            session = await run_in_threadpool(store.create, session_id, folder, stored, name)
        except InputError as error:
            message = str(error).replace(str(stored), name)
            if isinstance(error, LimitError) or "max-pixels" in message or "pixel limit" in message:
                raise ApiError(413, message.replace("(--max-pixels)", f"of this server ({max_pixels:,} pixels)")
                               .replace("pixel limit", f"pixel limit of this server ({max_pixels:,} pixels)")
                               ) from None
            raise ApiError(422, message) from None
        session.focus_disparity = default_focus_disparity(session)
        return JSONResponse(session_info(session), status_code=201)

    async def info(request: Request) -> Response:
        return JSONResponse(session_info(session_of(request)))

    async def delete(request: Request) -> Response:
        session = session_of(request)
        store.delete(session.id)
        return Response(status_code=204)

    async def focus(request: Request) -> Response:
        session = session_of(request)
        _require_json(request)
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001
            raise ApiError(400, "send JSON {\"x\": 0..1, \"y\": 0..1}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "send JSON {\"x\": 0..1, \"y\": 0..1}")
        fx, fy = _number(body, "x", 0.5, 0, 1), _number(body, "y", 0.5, 0, 1)
        disparity = session.depth.disparity
        height, width = disparity.shape
        x, y = min(fx * width, width - 1), min(fy * height, height - 1)
        with session.lock:
            session.focus_disparity = focus_disparity_at(disparity, x, y)
        return JSONResponse({"focus_disparity": session.focus_disparity, "x": x, "y": y})

    async def preview(request: Request) -> Response:
        session = session_of(request)
        params = request.query_params
        view = params.get("view") or "render"
        headers = {"Cache-Control": "no-store"}
        if view == "disparity":
            return Response(encode_grey_png(session.preview_disparity), media_type="image/png", headers=headers)
        if view == "matte":
            if session.preview_matte is None:
                raise ApiError(404, "this photo has no subject matte")
            return Response(encode_grey_png(session.preview_matte), media_type="image/png", headers=headers)
        if view == "original":
            data = await run_in_threadpool(encode_jpeg, session.preview_pixels, session.photo.icc_profile)
            return Response(data, media_type="image/jpeg", headers=headers)
        if view != "render":
            raise ApiError(400, f"view must be render, original, disparity or matte, got {view!r}")
        lens, renderer = parse_settings(params, session)
        draft = _flag(params, "draft", False)
        with session.lock:
            session.preview_ticket += 1
            ticket = session.preview_ticket

        def work():
            with RENDER_LOCK:
                # A newer request for this photo arrived while this one waited: skip the stale render.
                if ticket != session.preview_ticket:
                    return None
                start = time.perf_counter()
                try:
                    result = render_preview(session, lens, renderer, draft)
                except LensblurError as error:
                    raise ApiError(400, str(error)) from None
            data = encode_jpeg(result, session.photo.icc_profile)
            return data, time.perf_counter() - start

        done = await run_in_threadpool(work)
        if done is None:
            return Response(status_code=204, headers={"X-Superseded": "1", **headers})
        data, seconds = done
        if not draft:
            session.last_preview_s = seconds
        headers["X-Render-Ms"] = f"{seconds * 1000:.0f}"
        return Response(data, media_type="image/jpeg", headers=headers)

    async def save(request: Request) -> Response:
        session = session_of(request)
        _require_json(request)
        try:
            body = await request.json() if (await request.body()) else {}
        except Exception:  # noqa: BLE001
            raise ApiError(400, "send the settings as a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "send the settings as a JSON object")
        lens, renderer = parse_settings(body, session)
        job = Job(uuid.uuid4().hex)
        job.expected_s = max(0.5, session.last_preview_s / max(session.preview_scale, 1e-3) ** 2 * 0.6)
        with session.lock:
            session.jobs[job.id] = job
        threading.Thread(target=run_save, args=(session, job, lens, renderer), daemon=True).start()
        return JSONResponse({"job": job.id, "expected_s": job.expected_s}, status_code=202)

    def job_of(request: Request) -> tuple[Session, Job]:
        session = session_of(request)
        job_id = request.path_params["job_id"]
        job = session.jobs.get(job_id) if ID_PATTERN.fullmatch(job_id) else None
        if job is None:
            raise ApiError(404, "no such save job")
        return session, job

    async def job_state(request: Request) -> Response:
        _, job = job_of(request)
        elapsed = time.monotonic() - job.started
        progress = job.progress
        if job.state == "rendering":
            progress = min(0.9, 0.9 * elapsed / job.expected_s)
        return JSONResponse({"state": job.state, "progress": round(progress, 3), "elapsed_s": round(elapsed, 2),
                             "error": job.error})

    async def job_file(request: Request) -> Response:
        _, job = job_of(request)
        if job.state != "done" or job.path is None or not job.path.exists():
            raise ApiError(409, f"the save is not finished (state: {job.state})")
        return FileResponse(job.path, filename=job.filename, headers={"Cache-Control": "no-store"})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def api_error(request: Request, error: ApiError) -> Response:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    async def server_error(request: Request, error: Exception) -> Response:
        # Still logged by the server; the page gets the app's JSON error, never plain text.
        return JSONResponse({"error": f"internal error: {type(error).__name__}"}, status_code=500,
                            headers={name.decode(): value.decode() for name, value in SECURITY_HEADERS})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            store.close()

    sid = "/api/sessions/{session_id}"
    routes = [
        Route("/", index),
        Route("/api/sessions", upload, methods=["POST"]),
        Route(sid, info, methods=["GET"]),
        Route(sid, delete, methods=["DELETE"]),
        Route(sid + "/focus", focus, methods=["POST"]),
        Route(sid + "/preview", preview, methods=["GET"]),
        Route(sid + "/save", save, methods=["POST"]),
        Route(sid + "/jobs/{job_id}", job_state, methods=["GET"]),
        Route(sid + "/jobs/{job_id}/file", job_file, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    allowed = None if token else frozenset(LOOPBACK_NAMES | {host_name(host)})
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(Guard, allowed_hosts=allowed, token=token)],
                    exception_handlers={ApiError: api_error, HTTPException: http_error,
                                        Exception: server_error})
    app.state.store = store
    return app

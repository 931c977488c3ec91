"""Per-photo sessions of the web app: the upload, its cached depth and a screen-size preview copy.

Each session has a random uuid4 hex id, its own temporary folder (the uploaded file and saved
renders live there and nowhere else), the decoded photo, the depth chosen once with
:func:`lensblur.depth_source.choose_depth`, and a downscaled copy of the pixels, disparity and matte
(long side :data:`PREVIEW_LONG_SIDE`) that live previews render from, plus a smaller draft copy
(:data:`DRAFT_LONG_SIDE`) for instant feedback while a slider is being dragged. What a preview needs
that does not depend on the lens is made once per copy and kept: the split along the subject matte
and the clipped-highlight analysis (spots, crowds, night lamps; per threshold and lamp setting).
A lock per session keeps renders of one photo from running over each other and guards those
caches; sessions never share files or arrays.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lensblur.depth_source import DepthChoice, choose_depth
from lensblur.errors import InputError
from lensblur.highlights import ClippedAnalysis, analyse_clipped
from lensblur.io.images import Photo, read_image
from lensblur.lens import Highlights
from lensblur.renderers.subject import SURE_NOT, SubjectLayers, split_subject

PREVIEW_LONG_SIDE = 1024
DRAFT_LONG_SIDE = 512   # rendered while a slider moves; the page asks for the full preview once it stops
ID_PATTERN = re.compile(r"[0-9a-f]{32}")

# Format sniffed from the first bytes of the upload -> the extension the file is stored under.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1",
                b"mif2", b"avif"}


def sniff_format(head: bytes) -> str | None:
    """The image type of a file from its first bytes ('.jpg', '.png', ...), or None when not an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return ".bmp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return ".heic"
    return None


class UnknownSession(KeyError):
    """No session with that id (or the id is not a uuid4 hex string)."""


@dataclass
class Job:
    """A full-resolution save running in the background."""

    id: str
    state: str = "queued"          # queued, rendering, writing, done, failed
    progress: float = 0.0          # 0..1, estimated while rendering
    started: float = field(default_factory=time.monotonic)
    expected_s: float = 1.0
    error: str | None = None
    path: Path | None = None
    filename: str | None = None


@dataclass
class Session:
    """One uploaded photo and everything derived from it."""

    id: str
    folder: Path
    upload: Path
    name: str
    photo: Photo
    depth: DepthChoice
    preview_pixels: np.ndarray
    preview_disparity: np.ndarray
    preview_matte: np.ndarray | None
    draft: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    focus_disparity: float = 0.5
    preview_ticket: int = 0
    last_preview_s: float = 0.2
    jobs: dict[str, Job] = field(default_factory=dict)
    _subject_layers: dict[bool, SubjectLayers] = field(default_factory=dict)
    _clipped: dict[tuple, ClippedAnalysis] = field(default_factory=dict)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def full_size(self) -> tuple[int, int]:
        """(width, height) of the full-resolution photo."""
        height, width = self.depth.pixels.shape[:2]
        return width, height

    @functools.cached_property
    def disparity_range(self) -> np.ndarray:
        """float32 [least, largest] disparity of the full-resolution map, found once (every
        preview checks the lens's largest blur radius against it)."""
        disparity = self.depth.disparity
        return np.array([disparity.min(), disparity.max()], np.float32)

    @property
    def preview_size(self) -> tuple[int, int]:
        height, width = self.preview_pixels.shape[:2]
        return width, height

    @property
    def preview_scale(self) -> float:
        """preview width / full width: multiply a full-resolution blur radius by this."""
        return self.preview_size[0] / self.full_size[0]

    def level(self, draft: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
        """(pixels, disparity, matte, width / full width) of the preview or the draft copy."""
        if draft and self.draft is not None:
            pixels, disparity, matte = self.draft
        else:
            pixels, disparity, matte = self.preview_pixels, self.preview_disparity, self.preview_matte
        return pixels, disparity, matte, pixels.shape[1] / self.full_size[0]

    def subject_layers(self, draft: bool = False) -> SubjectLayers | None:
        """The preview's (or draft's) split along the matte, made once: it does not depend on
        the lens, and making it is a third of a preview render. None without a (non-empty) matte."""
        if draft and self.draft is None:
            draft = False
        with self._cache_lock:
            if draft not in self._subject_layers:
                pixels, disparity, matte, _ = self.level(draft)
                if matte is None or not (matte > SURE_NOT).any():
                    return None
                self._subject_layers[draft] = split_subject(pixels, disparity, matte)
            return self._subject_layers[draft]


    def clipped_analysis(self, settings: Highlights | None, draft: bool = False) -> ClippedAnalysis | None:
        """The preview's (or draft's) clipped highlights, spots and lamps for these highlight
        settings (lensblur.highlights.analyse_clipped), found once per threshold and lamp setting:
        they do not depend on focus, blur or strength. None when recovery is off. Safe to call
        from concurrent requests (one lock per session; the result is never modified)."""
        if settings is None or not settings.enabled:
            return None
        if draft and self.draft is None:
            draft = False
        key = (draft, settings.threshold, settings.lamps)
        with self._cache_lock:
            if key not in self._clipped:
                if len(self._clipped) >= 4:  # a few threshold/lamp settings at most
                    self._clipped.clear()
                self._clipped[key] = analyse_clipped(self.level(draft)[0], settings)
            return self._clipped[key]


def _downscale(array: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA), dtype=np.float32)


class SessionStore:
    """Sessions by id, each in its own folder under one private temporary root.

    max_sessions: the least recently used session is removed when a new one would exceed this.
    max_pixels: uploads with more pixels are refused (read_image checks the header first).
    """

    def __init__(self, max_sessions: int = 8, max_pixels: int = 100_000_000, root: str | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="lensblur-web-", dir=root))
        self.max_sessions = max_sessions
        self.max_pixels = max_pixels
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def new_folder(self) -> tuple[str, Path]:
        """A fresh session id and its (empty, private) folder."""
        session_id = uuid.uuid4().hex
        folder = self.root / session_id
        folder.mkdir(mode=0o700)
        return session_id, folder

    def create(self, session_id: str, folder: Path, upload: Path, name: str) -> Session:
        """Decode the upload in ``folder``, choose its depth once and register the session.

        Raises InputError (the folder is removed) when the photo cannot be read.
        """
        try:
            photo = read_image(upload, max_pixels=self.max_pixels)
            depth = choose_depth(str(upload), photo.pixels, max_pixels=self.max_pixels)
            height, width = depth.pixels.shape[:2]
            scale = min(1.0, PREVIEW_LONG_SIDE / max(height, width))
            pw, ph = max(1, round(width * scale)), max(1, round(height * scale))
            if scale < 1.0:
                preview_pixels = _downscale(depth.pixels, pw, ph)
                preview_disparity = np.clip(_downscale(depth.disparity, pw, ph), 0, 1)
                preview_matte = None if depth.matte is None else np.clip(_downscale(depth.matte, pw, ph), 0, 1)
            else:
                preview_pixels, preview_disparity, preview_matte = depth.pixels, depth.disparity, depth.matte
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        session = Session(session_id, folder, upload, name, photo, depth, preview_pixels, preview_disparity,
                          preview_matte)
        draft_scale = DRAFT_LONG_SIDE / max(preview_pixels.shape[:2])
        if draft_scale < 1.0:
            dw = max(1, round(preview_pixels.shape[1] * draft_scale))
            dh = max(1, round(preview_pixels.shape[0] * draft_scale))
            session.draft = (_downscale(preview_pixels, dw, dh), np.clip(_downscale(preview_disparity, dw, dh), 0, 1),
                             None if preview_matte is None else np.clip(_downscale(preview_matte, dw, dh), 0, 1))
        session.subject_layers(draft=False)
        session.subject_layers(draft=True)
        with self._lock:
            self._sessions[session_id] = session
            while len(self._sessions) > self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.last_used)
                self._remove_locked(oldest.id)
        return session

    def get(self, session_id: str) -> Session:
        """The session with this id; UnknownSession for a malformed or unknown id."""
        if not isinstance(session_id, str) or not ID_PATTERN.fullmatch(session_id):
            raise UnknownSession(session_id)
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise UnknownSession(session_id)
        session.last_used = time.monotonic()
        return session

    def delete(self, session_id: str) -> None:
        """Forget a session and remove its folder; UnknownSession when there is none."""
        self.get(session_id)
        with self._lock:
            self._remove_locked(session_id)

    def _remove_locked(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            shutil.rmtree(session.folder, ignore_errors=True)

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        """Remove every session and the temporary root."""
        with self._lock:
            self._sessions.clear()
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["SessionStore", "Session", "Job", "UnknownSession", "sniff_format", "PREVIEW_LONG_SIDE", "InputError"]

"""The speed-ups for ~1 MP renders and web previews give the same pictures as the plain paths:
the unrolled four-channel disc kernel (the windowed hidden-area search: test_hidden_area.py), the subject layer's tile
mask and sparse gain, and the web session's cached highlight analysis (also under concurrent
requests)."""

import io
import threading

import cv2
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from lensblur.aperture import Aperture
from lensblur.highlights import analyse_clipped, recover_highlights
from lensblur.lens import Highlights, Lens, largest_radius, signed_coc
from lensblur.renderers.discs import DiscScatter
from lensblur.renderers.scatter import render_scatter
from lensblur.web.app import create_app


def _scene(height=180, width=240, seed=3):
    """A textured floor (disparity rising downwards) with an ellipse standing on it, clipped
    lights in the far part and a soft matte around the ellipse."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.uniform(0, 0.8, (height, width, 3)).astype(np.float32), (0, 0), 1.5)
    disparity = np.repeat(np.linspace(0.05, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    yy, xx = np.mgrid[:height, :width]
    inside = ((yy - 0.55 * height) / (0.25 * height)) ** 2 + ((xx - 0.5 * width) / (0.12 * width)) ** 2
    disparity[inside <= 1] = 0.7
    matte = np.clip((1.15 - inside) / 0.3, 0, 1).astype(np.float32)
    for y, x in [(10, 30), (18, 190), (30, 110), (140, 30)]:
        image[y:y + 3, x:x + 3] = 1.0
    return image, disparity, matte


def test_four_channel_disc_path_equals_the_general_path():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, (70, 90, 4)).astype(np.float32)
    values[rng.uniform(size=(70, 90)) < 0.2, 3] = 0  # some sources spread nothing
    radii = rng.uniform(0, 5.5, (70, 90)).astype(np.float32)
    discs = DiscScatter(Aperture(), (70, 90))
    fast = discs(values, radii)
    # five channels take the kernel's general loop; the fifth repeats α so the same pixels spread
    general = discs(np.concatenate([values, values[..., 3:]], axis=2), radii)
    assert np.abs(fast - general[..., :4]).max() < 1e-4
    assert np.abs(fast[..., 3] - general[..., 4]).max() < 1e-4
    # and compositing straight from the kernel's rows equals compositing its returned layer
    target = rng.uniform(0, 1, (70, 90, 4)).astype(np.float32)
    composed = target.copy()
    discs(values, radii, composite_into=composed)
    alpha = fast[..., 3:]
    clip = np.where(alpha > 1, 1 / np.maximum(alpha, 1e-12), 1)
    expected = np.where(alpha > 0, fast * clip + (1 - alpha * clip) * target, target)
    assert np.abs(composed - expected).max() < 1e-4


@pytest.mark.parametrize("with_matte", [False, True])
def test_kept_highlight_analysis_gives_the_identical_render(with_matte):
    image, disparity, matte = _scene()
    lens = Lens(blur=40, focus_disparity=0.7)
    matte = matte if with_matte else None
    kept = analyse_clipped(image, lens.highlights)
    assert kept.candidate.sum() >= 36  # the scene's lights are clipped
    plain = render_scatter(image, disparity, lens, matte=matte)
    assert np.array_equal(render_scatter(image, disparity, lens, matte=matte, clipped=kept), plain)
    # an analysis made for another threshold is not used
    other = analyse_clipped(image, Highlights(threshold=0.5))
    assert np.array_equal(render_scatter(image, disparity, lens, matte=matte, clipped=other), plain)
    # the lights do get boosted, so the analysis matters
    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    assert recover_highlights(image, coc, lens.highlights, kept).max() > 1.5


def _photo_bytes(seed):
    """A 400×300 JPEG with a few clipped lights (automatic depth in the app)."""
    image, _, _ = _scene(300, 400, seed)
    encoded = np.round(np.clip(image, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(encoded).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def client(tmp_path):
    app = create_app(max_upload_bytes=2_000_000, max_pixels=1_000_000, temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def test_cached_preview_equals_an_uncached_render(client):
    from lensblur.web.app import render_preview

    created = client.post("/api/sessions?name=a.jpg", content=_photo_bytes(1))
    assert created.status_code == 201, created.text
    session = client.app.state.store.get(created.json()["id"])
    lens = Lens(blur=12.0, focus_disparity=session.focus_disparity)
    pixels, disparity, matte, scale = session.level()
    first = render_preview(session, lens, "scatter")
    assert session.clipped_analysis(lens.highlights) is session.clipped_analysis(lens.highlights)
    uncached = render_scatter(pixels, disparity, lens.with_(blur=lens.blur * scale), matte=matte)
    assert np.array_equal(first, uncached)
    assert np.array_equal(render_preview(session, lens, "scatter"), uncached)
    # the blur clamp reads the map's kept range: the same largest radius as the whole map gives
    for focus in (0.0, 0.4, 1.0):
        probe = Lens(blur=90.0, focus_disparity=focus)
        assert largest_radius(session.disparity_range, probe) == largest_radius(session.depth.disparity, probe)


def test_concurrent_previews_with_different_settings_each_get_their_own_result(client):
    sessions = []
    for seed in (1, 2):
        created = client.post(f"/api/sessions?name=p{seed}.jpg", content=_photo_bytes(seed))
        assert created.status_code == 201, created.text
        sessions.append(created.json()["id"])
    settings = ["blur=8&highlights=6", "blur=20&highlights=6", "blur=14&highlights=2&shape=blades&blades=6"]
    requests = [(sid, query) for sid in sessions for query in settings]
    # references, one request at a time
    reference = {}
    for sid, query in requests:
        response = client.get(f"/api/sessions/{sid}/preview?{query}")
        assert response.status_code == 200, response.text
        reference[sid, query] = np.asarray(Image.open(io.BytesIO(response.content)))
    assert not np.array_equal(reference[sessions[0], settings[0]], reference[sessions[0], settings[1]])
    # the same requests, all at once (fresh sessions, so the caches are filled concurrently too)
    fresh = {}
    for sid, seed in zip(sessions, (1, 2)):
        created = client.post(f"/api/sessions?name=q{seed}.jpg", content=_photo_bytes(seed))
        fresh[sid] = created.json()["id"]
    answers, barrier = {}, threading.Barrier(len(requests))

    def ask(sid, query):
        barrier.wait()
        answers[sid, query] = client.get(f"/api/sessions/{fresh[sid]}/preview?{query}")

    threads = [threading.Thread(target=ask, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(answers) == len(requests)
    for sid in sessions:
        got = [(query, answers[sid, query]) for query in settings]
        # a request superseded by a newer one for the same photo is answered 204 (by design);
        # every rendered answer is the picture its own settings give
        assert any(response.status_code == 200 for _, response in got)
        for query, response in got:
            assert response.status_code in (200, 204), response.text
            if response.status_code == 200:
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), reference[sid, query])


def test_the_app_lets_idle_kernel_threads_sleep_unless_told_otherwise(tmp_path, monkeypatch):
    """create_app sets OMP_WAIT_POLICY=passive (spinning OpenMP threads starve the preview's serial
    work on a busy machine), and keeps a value the user set."""
    import os

    from lensblur.web import app as web_app

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    create_app(temp_root=str(tmp_path)).state.store.close()
    assert os.environ["OMP_WAIT_POLICY"] == web_app.OMP_WAIT_POLICY == "passive"
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    create_app(temp_root=str(tmp_path)).state.store.close()
    assert os.environ["OMP_WAIT_POLICY"] == "active"

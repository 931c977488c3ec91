"""Item 2 of issue 13: estimators are safe to call from several threads, and parallel uploads never
answer HTTP 500 (every API error is the app's JSON error)."""

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from lensblur.depth import people
from lensblur.web.app import create_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg"

needs_models = pytest.mark.skipif(not people.models_available(), reason="MediaPipe models not fetched")


def astronaut(size) -> np.ndarray:
    return np.asarray(Image.open(EXAMPLE).convert("RGB").resize(size), np.float32) / 255.0


@needs_models
def test_people_models_give_the_same_answer_from_many_threads():
    images = [astronaut((160 + 16 * k, 120 + 12 * k)) for k in range(4)]
    alone = [people.segment_person(image) for image in images]
    faces_alone = [len(people.detect_faces(image)) for image in images]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(people.segment_person, images * 6))
        faces = list(pool.map(lambda image: len(people.detect_faces(image)), images * 6))
    for k, mask in enumerate(together):
        np.testing.assert_allclose(mask, alone[k % 4], atol=1e-5)
    assert faces == faces_alone * 6


def photo_bytes(k: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(EXAMPLE).convert("RGB").resize((240 + 8 * k, 180 + 6 * k)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_parallel_uploads_never_answer_500(tmp_path):
    app = create_app(max_upload_bytes=2_000_000, max_pixels=1_000_000, max_sessions=64, temp_root=str(tmp_path))
    bodies = [photo_bytes(k % 6) for k in range(24)] + [b"\xff\xd8\xff\xe0 broken jpeg"] * 4

    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as client:
        def post(body):
            response = client.post("/api/sessions?name=p.jpg", content=body)
            return response.status_code, response.headers.get("content-type", ""), response.text

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(post, bodies))
    codes = [code for code, _, _ in answers]
    assert 500 not in codes, [text for code, _, text in answers if code == 500][:3]
    assert codes[:24] == [201] * 24
    assert codes[24:] == [422] * 4
    assert all(kind.startswith("application/json") for _, kind, _ in answers)


def test_unexpected_server_errors_are_json(tmp_path, monkeypatch):
    from lensblur.web import app as web_app

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(web_app, "session_info", broken)
    app = create_app(temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as client:
        response = client.post("/api/sessions?name=p.jpg", content=photo_bytes(0))
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert "internal error" in response.json()["error"]

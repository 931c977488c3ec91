"""The web app's JSON API through Starlette's test client: uploads, limits, sessions, previews, saves."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from starlette.testclient import TestClient

from lensblur.web.app import create_app

EXAMPLE = Path(__file__).parents[1] / "examples" / "astronaut.jpg"
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo_bytes(fmt="JPEG", size=(320, 240), exif=True, icc=True) -> bytes:
    """A small real photo (the astronaut example, resized) with a camera EXIF block and a profile."""
    image = Image.open(EXAMPLE).convert("RGB").resize(size)
    options = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "LensblurTestCam"   # Make
        data[0x0110] = "Model 1"           # Model
        options["exif"] = data.tobytes()
    if icc:
        options["icc_profile"] = SRGB_ICC
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def app(tmp_path):
    return create_app(max_upload_bytes=2_000_000, max_pixels=1_000_000, temp_root=str(tmp_path))


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def upload(client, data, name="photo.jpg"):
    return client.post(f"/api/sessions?name={name}", content=data)


@pytest.fixture
def session(client):
    response = upload(client, photo_bytes())
    assert response.status_code == 201, response.text
    return response.json()


def decode(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"), dtype=np.float32)


# ---------------------------------------------------------------- uploads


def test_upload_ok(client, session):
    assert len(session["id"]) == 32
    assert (session["width"], session["height"]) == (320, 240)
    assert session["format"] == "JPEG" and session["has_exif"] and session["has_profile"]
    assert 0 <= session["focus_disparity"] <= 1 and session["default_blur"] > 0
    assert "scatter" in session["renderers"]
    assert client.get(f"/api/sessions/{session['id']}").json()["id"] == session["id"]


def test_page_and_static_files_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")       # nothing from a CDN
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_oversized_upload_is_refused_with_json(client, tmp_path):
    response = upload(client, b"\xff\xd8\xff" + b"\0" * 2_100_000)
    assert response.status_code == 413
    assert "upload limit" in response.json()["error"]
    assert list(Path(client.app.state.store.root).iterdir()) == []   # nothing left behind


def test_oversized_upload_without_content_length_is_cut_off(client):
    def chunks():
        for _ in range(30):
            yield b"\xff\xd8\xff" + b"\0" * 100_000
    response = client.post("/api/sessions?name=big.jpg", content=chunks())
    assert response.status_code == 413 and "upload limit" in response.json()["error"]


def test_pixel_limit(client):
    response = upload(client, photo_bytes(size=(1200, 1000)))
    assert response.status_code == 413
    assert "over the 1 MP limit of this server" in response.json()["error"]


def test_corrupt_upload(client):
    data = photo_bytes()
    response = upload(client, data[: len(data) // 3])
    assert response.status_code == 422
    error = response.json()["error"]
    assert "photo.jpg" in error and "/tmp" not in error   # names the upload, not the server's path


def test_non_image_upload(client):
    response = upload(client, b"#!/bin/sh\necho hello\n" * 20, name="script.jpg")
    assert response.status_code == 415
    assert "not a photo" in response.json()["error"]


def test_empty_upload(client):
    response = upload(client, b"")
    assert response.status_code == 400


def test_type_is_sniffed_from_content_not_name(client):
    png = photo_bytes("PNG")
    response = upload(client, png, name="holiday.jpg")     # a PNG named .jpg is read as PNG
    assert response.status_code == 201 and response.json()["format"] == "PNG"
    response = upload(client, b"GIF89a" + b"\0" * 100, name="photo.png")
    assert response.status_code == 415


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "BMP"])
def test_other_formats(client, fmt):
    response = upload(client, photo_bytes(fmt, exif=False, icc=False), name=f"x.{fmt.lower()}")
    assert response.status_code == 201, response.text
    assert response.json()["format"] == fmt


def test_heic_upload(client):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = photo_bytes("HEIF", exif=False, icc=False)
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"cannot encode HEIC here: {error}")
    response = upload(client, data, name="IMG_0001.HEIC")
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "HEIF"


# ---------------------------------------------------------------- ids and sessions


def test_unknown_session(client):
    unknown = "0" * 32
    for method, path in [("get", ""), ("delete", ""), ("get", "/preview"), ("post", "/save"),
                         ("get", f"/jobs/{unknown}")]:
        response = getattr(client, method)(f"/api/sessions/{unknown}{path}")
        assert response.status_code == 404, (method, path)
        assert "no such session" in response.json()["error"]


@pytest.mark.parametrize("bad_id", ["..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "ABCDEF" * 6, "x" * 32,
                                    "0" * 31, "0" * 33, "%00" + "0" * 32])
def test_path_traversal_ids_are_rejected(client, session, bad_id):
    response = client.get(f"/api/sessions/{bad_id}/preview")
    assert response.status_code == 404
    response = client.get(f"/api/sessions/{session['id']}/jobs/{bad_id}/file")
    assert response.status_code == 404


def test_static_traversal_is_rejected(client):
    for path in ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2Fsessions.py"]:
        response = client.get(path)
        assert response.status_code == 404, path


def test_two_sessions_do_not_see_each_others_photos(client):
    a = upload(client, photo_bytes()).json()
    dark = Image.new("RGB", (200, 100), (10, 200, 30))
    buffer = io.BytesIO()
    dark.save(buffer, "PNG")
    b = upload(client, buffer.getvalue(), name="green.png").json()
    assert a["id"] != b["id"] and (b["width"], b["height"]) == (200, 100)
    original_a = decode(client.get(f"/api/sessions/{a['id']}/preview?view=original").content)
    original_b = decode(client.get(f"/api/sessions/{b['id']}/preview?view=original").content)
    assert original_a.shape[:2] == (240, 320) and original_b.shape[:2] == (100, 200)
    assert abs(original_b[..., 1].mean() - 200) < 3
    store = client.app.state.store
    assert store.get(a["id"]).folder != store.get(b["id"]).folder
    client.delete(f"/api/sessions/{a['id']}")
    assert client.get(f"/api/sessions/{b['id']}").status_code == 200


def test_delete_removes_temp_files(client, session):
    store = client.app.state.store
    folder = store.get(session["id"]).folder
    assert folder.exists() and any(folder.iterdir())
    assert client.delete(f"/api/sessions/{session['id']}").status_code == 204
    assert not folder.exists()
    assert client.get(f"/api/sessions/{session['id']}").status_code == 404


def test_closing_the_app_removes_everything(app):
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        upload(client, photo_bytes())
        root = app.state.store.root
        assert any(root.iterdir())
    assert not root.exists()


def test_least_recently_used_session_is_dropped(tmp_path):
    app = create_app(max_sessions=2, temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        ids = [upload(client, photo_bytes(size=(64, 48))).json()["id"] for _ in range(3)]
        assert client.get(f"/api/sessions/{ids[0]}").status_code == 404
        assert all(client.get(f"/api/sessions/{i}").status_code == 200 for i in ids[1:])
        assert len(list(app.state.store.root.iterdir())) == 2


# ---------------------------------------------------------------- preview and focus


def test_preview_changes_with_aperture(client, session):
    url = f"/api/sessions/{session['id']}/preview"
    sharp = client.get(url, params={"blur": 0})
    assert sharp.status_code == 200 and sharp.headers["content-type"] == "image/jpeg"
    blurred = client.get(url, params={"blur": 30})
    assert blurred.status_code == 200 and "x-render-ms" in blurred.headers
    a, b = decode(sharp.content), decode(blurred.content)
    assert a.shape == b.shape == (240, 320, 3)
    assert np.abs(a - b).mean() > 2
    original = decode(client.get(url, params={"view": "original"}).content)
    assert np.abs(a - original).mean() < 3        # zero blur looks like the photo


@pytest.mark.parametrize("params", [
    {"shape": "blades", "blades": 5, "rotation": 20}, {"grain": "on"}, {"highlights": 0},
    {"focus_range": 0.1}, {"renderer": "naive"}, {"renderer": "identity"}])
def test_preview_settings(client, session, params):
    response = client.get(f"/api/sessions/{session['id']}/preview", params={"blur": 20, **params})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("params, words", [
    ({"blur": -1}, "blur"), ({"blur": "abc"}, "number"), ({"focus_disparity": 2}, "focus_disparity"),
    ({"shape": "star"}, "shape"), ({"renderer": "rm -rf"}, "renderer"), ({"blades": 40, "shape": "blades"}, "blades"),
    ({"grain": "maybe"}, "grain"), ({"view": "secret"}, "view")])
def test_bad_settings_are_json_errors(client, session, params, words):
    response = client.get(f"/api/sessions/{session['id']}/preview", params=params)
    assert response.status_code == 400 and words in response.json()["error"]


def test_disparity_and_matte_views(client, session):
    disparity = client.get(f"/api/sessions/{session['id']}/preview", params={"view": "disparity"})
    assert disparity.status_code == 200 and disparity.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(disparity.content)).size == (320, 240)
    matte = client.get(f"/api/sessions/{session['id']}/preview", params={"view": "matte"})
    assert matte.status_code == (200 if session["has_matte"] else 404)


def test_focus_click_sets_focus(client, session):
    sid = session["id"]
    store = client.app.state.store
    disparity = store.get(sid).depth.disparity
    y, x = np.unravel_index(np.argmax(disparity), disparity.shape)
    near = client.post(f"/api/sessions/{sid}/focus", json={"x": (x + 0.5) / 320, "y": (y + 0.5) / 240}).json()
    y, x = np.unravel_index(np.argmin(disparity), disparity.shape)
    far = client.post(f"/api/sessions/{sid}/focus", json={"x": (x + 0.5) / 320, "y": (y + 0.5) / 240}).json()
    assert near["focus_disparity"] > far["focus_disparity"]
    assert client.get(f"/api/sessions/{sid}").json()["focus_disparity"] == pytest.approx(far["focus_disparity"])
    # the preview without an explicit focus uses the clicked one
    response = client.get(f"/api/sessions/{sid}/preview", params={"blur": 20})
    assert response.status_code == 200
    assert client.post(f"/api/sessions/{sid}/focus", json={"x": 3, "y": 0.5}).status_code == 400
    assert client.post(f"/api/sessions/{sid}/focus", content=b"not json").status_code == 400


def test_preview_is_screen_sized_and_blur_scaled(tmp_path):
    app = create_app(temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        info = upload(client, photo_bytes(size=(2048, 1536))).json()
        assert (info["preview_width"], info["preview_height"]) == (1024, 768)
        session = app.state.store.get(info["id"])
        assert session.preview_scale == pytest.approx(0.5)


# ---------------------------------------------------------------- save


def wait_for(client, sid, job, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/sessions/{sid}/jobs/{job}").json()
        assert 0 <= state["progress"] <= 1
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError("save did not finish")


def test_save_returns_full_resolution_with_exif_and_icc(client, session):
    sid = session["id"]
    started = client.post(f"/api/sessions/{sid}/save", json={"blur": 25, "shape": "blades", "blades": 6})
    assert started.status_code == 202
    job = started.json()["job"]
    assert wait_for(client, sid, job)["state"] == "done"
    response = client.get(f"/api/sessions/{sid}/jobs/{job}/file")
    assert response.status_code == 200
    assert "photo_lensblur.jpg" in response.headers["content-disposition"]
    saved = Image.open(io.BytesIO(response.content))
    assert saved.format == "JPEG" and saved.size == (320, 240)
    assert saved.info.get("icc_profile") == SRGB_ICC
    assert saved.getexif().get(0x010F) == "LensblurTestCam"
    assert np.abs(np.asarray(saved.convert("RGB"), np.float32) - decode(photo_bytes())).mean() > 1


def test_save_png_stays_png(client):
    sid = upload(client, photo_bytes("PNG"), name="shot.png").json()["id"]
    job = client.post(f"/api/sessions/{sid}/save", json={}).json()["job"]
    assert wait_for(client, sid, job)["state"] == "done"
    response = client.get(f"/api/sessions/{sid}/jobs/{job}/file")
    saved = Image.open(io.BytesIO(response.content))
    assert saved.format == "PNG" and saved.info.get("icc_profile") == SRGB_ICC


def test_save_errors(client, session):
    sid = session["id"]
    assert client.post(f"/api/sessions/{sid}/save", json={"blur": "lots"}).status_code == 400
    assert client.post(f"/api/sessions/{sid}/save", json=[1, 2]).status_code == 400
    assert client.get(f"/api/sessions/{sid}/jobs/{'f' * 32}").status_code == 404


def test_draft_preview_is_half_size(tmp_path):
    app = create_app(temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        sid = upload(client, photo_bytes(size=(2048, 1536))).json()["id"]
        draft = client.get(f"/api/sessions/{sid}/preview", params={"blur": 60, "draft": "on"})
        assert draft.status_code == 200 and decode(draft.content).shape == (384, 512, 3)
        full = client.get(f"/api/sessions/{sid}/preview", params={"blur": 60})
        assert decode(full.content).shape == (768, 1024, 3)


def test_concurrent_sessions_render_their_own_photos(client):
    from concurrent.futures import ThreadPoolExecutor

    red = io.BytesIO()
    Image.new("RGB", (160, 120), (220, 20, 20)).save(red, "PNG")
    blue = io.BytesIO()
    Image.new("RGB", (160, 120), (20, 20, 220)).save(blue, "PNG")
    ids = {"red": upload(client, red.getvalue()).json()["id"], "blue": upload(client, blue.getvalue()).json()["id"]}

    def render(colour, blur):
        response = client.get(f"/api/sessions/{ids[colour]}/preview", params={"blur": blur})
        if response.status_code == 204:      # superseded by a newer request for the same photo
            assert response.headers["x-superseded"] == "1"
            return colour, None
        assert response.status_code == 200
        return colour, decode(response.content).mean(axis=(0, 1))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: render(*args), [("red", 5), ("blue", 5), ("red", 9), ("blue", 9)] * 3))
    rendered = [(colour, mean) for colour, mean in results if mean is not None]
    assert {colour for colour, _ in rendered} == {"red", "blue"}
    for colour, mean in rendered:
        assert (mean[0] > mean[2]) == (colour == "red")


def test_serve_command_defaults_to_localhost():
    import argparse

    from lensblur.commands import serve

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.max_upload_mb) == ("127.0.0.1", 8000, 200)
    assert serve.NAME == "serve" and "lensblur serve" in serve.EXAMPLES

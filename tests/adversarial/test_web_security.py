"""Item 4 of issue 13: the web app answers only its own pages.

Cross-origin state changes, form/text bodies where JSON is meant, foreign Host headers (DNS
rebinding) are refused; every response carries the security headers; a non-loopback --host needs
--allow-remote and then a token.
"""

import io

import pytest
from PIL import Image
from starlette.testclient import TestClient

from conftest import assert_clean_failure, run_cli
from test_web_api import app, client  # noqa: F401 - the same fixtures (served at 127.0.0.1:8000)
from lensblur.web.app import create_app

OWN = "http://127.0.0.1:8000"
EVIL = "http://attacker.example"
HEADERS = ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def sid(client):
    response = client.post("/api/sessions?name=p.jpg", content=jpeg(), headers={"Origin": OWN})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_cross_origin_text_plain_upload_is_refused(client, app):
    response = client.post("/api/sessions?name=p.jpg", content=jpeg(),
                           headers={"Origin": EVIL, "Content-Type": "text/plain"})
    assert response.status_code == 403 and "another site" in response.json()["error"]
    assert len(app.state.store) == 0


def test_cross_site_fetch_metadata_is_refused(client, app):
    response = client.post("/api/sessions?name=p.jpg", content=jpeg(), headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert len(app.state.store) == 0


def test_text_or_form_upload_is_refused_even_same_origin(client):
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = client.post("/api/sessions?name=p.jpg", content=jpeg(), headers={"Content-Type": kind})
        assert response.status_code == 415, kind


def test_cross_origin_uploads_cannot_evict_the_users_photo(tmp_path):
    app = create_app(max_sessions=2, temp_root=str(tmp_path))
    with TestClient(app, base_url=OWN) as client:
        mine = client.post("/api/sessions?name=p.jpg", content=jpeg()).json()["id"]
        for _ in range(8):
            client.post("/api/sessions?name=p.jpg", content=jpeg(), headers={"Origin": EVIL})
        assert client.get(f"/api/sessions/{mine}").status_code == 200


@pytest.mark.parametrize("path", ["focus", "save"])
def test_focus_and_save_want_json_from_this_origin(client, sid, path):
    url = f"/api/sessions/{sid}/{path}"
    body = '{"x": 0.5, "y": 0.5}'
    assert client.post(url, content=body, headers={"Content-Type": "text/plain", "Origin": EVIL}).status_code == 403
    assert client.post(url, content=body, headers={"Content-Type": "text/plain"}).status_code == 415
    ok = client.post(url, content=body, headers={"Content-Type": "application/json", "Origin": OWN})
    assert ok.status_code in (200, 202), ok.text


def test_cross_origin_delete_is_refused(client, sid):
    assert client.delete(f"/api/sessions/{sid}", headers={"Origin": EVIL}).status_code == 403
    assert client.get(f"/api/sessions/{sid}").status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io"])
def test_foreign_host_header_is_refused(client, sid, host):
    for path in ("/", f"/api/sessions/{sid}", "/static/app.js"):
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 400, (host, path)
        assert "host" in response.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"])
def test_loopback_host_headers_are_answered(client, host):
    assert client.get("/", headers={"Host": host}).status_code == 200


def test_security_headers_on_every_response(client, sid):
    responses = [client.get("/"), client.get("/static/app.js"), client.get(f"/api/sessions/{sid}"),
                 client.get("/api/sessions/" + "0" * 32), client.get("/nowhere"),
                 client.get(f"/api/sessions/{sid}/preview", params={"blur": 3}),
                 client.get("/", headers={"Host": "attacker.example"})]
    for response in responses:
        for header in HEADERS:
            assert header in response.headers, (response.url, header)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_token_mode_needs_the_token(tmp_path):
    app = create_app(temp_root=str(tmp_path), host="0.0.0.0", token="s3cret-token")
    with TestClient(app, base_url="http://192.168.1.20:8000") as client:
        assert client.get("/").status_code == 403
        assert client.get("/?token=wrong").status_code == 403
        assert client.post("/api/sessions?name=p.jpg", content=jpeg()).status_code == 403
        page = client.get("/?token=s3cret-token")
        assert page.status_code == 200 and "lensblur_token" in page.headers["set-cookie"]
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
        # the cookie now rides along, as it does for the page's own requests
        assert client.post("/api/sessions?name=p.jpg", content=jpeg()).status_code == 201


def test_serve_refuses_a_public_host_without_allow_remote():
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "8765", timeout=60)
    assert_clean_failure(result, "--allow-remote")


def test_serve_command_loopback_detection():
    from lensblur.commands.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")

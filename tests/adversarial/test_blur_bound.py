"""Item 5 of issue 13: the largest blur radius is capped at a tenth of the image diagonal (at
least 64 px) with a clear error, so time and memory stay bounded by the image size."""

import numpy as np
import pytest

import lensblur
from conftest import assert_clean_failure, run_cli
from lensblur.io.limits import LimitError
from lensblur.lens import Lens, check_blur_radius, largest_radius, radius_limit


def test_radius_limit_is_a_tenth_of_the_diagonal():
    assert radius_limit(3000, 4000) == pytest.approx(500)
    assert radius_limit(60, 80) == 64  # the floor for small images


def test_largest_radius_uses_the_maps_range_and_the_focus_band():
    disparity = np.linspace(0.2, 0.9, 100, dtype=np.float32).reshape(10, 10)
    assert largest_radius(disparity, Lens(blur=100, focus_disparity=0.5)) == pytest.approx(40)
    assert largest_radius(disparity, Lens(blur=100, focus_disparity=0.5, focus_range=0.1)) == pytest.approx(30)


@pytest.mark.parametrize("blur", ["1000", "4000", "1e300"])
def test_cli_refuses_a_blur_radius_over_the_limit_before_rendering(photo, tmp_path, blur):
    image, depth = photo
    result = run_cli("render", image, "--depth", depth, "--blur", blur, "-o", tmp_path / "out.png")
    assert_clean_failure(result, "blur radius", "limit")
    assert not (tmp_path / "out.png").exists()


def test_cli_accepts_a_radius_at_the_limit(photo, tmp_path):
    image, depth = photo
    # focus on the far plane (disparity 0); the map is normalised, so the near square has radius K
    result = run_cli("render", "-q", image, "--depth", depth, "--focus-disparity", "0", "--blur", "64",
                     "-o", tmp_path / "out.png")
    assert result.returncode == 0, result.stderr


def test_api_refuses_it_too():
    image = np.full((60, 80, 3), 0.5, np.float32)
    disparity = np.tile(np.linspace(0, 1, 80, dtype=np.float32), (60, 1))
    with pytest.raises(LimitError, match="blur radius"):
        lensblur.render(image, disparity, blur=2000, focus_disparity=0.5)
    with pytest.raises(LimitError):
        check_blur_radius(disparity, Lens(blur=129, focus_disparity=0.5))
    check_blur_radius(disparity, Lens(blur=128, focus_disparity=0.5))


def test_web_app_clamps_the_blur_to_the_limit(tmp_path):
    import io

    from PIL import Image
    from starlette.testclient import TestClient

    from lensblur.web.app import create_app, parse_settings

    buffer = io.BytesIO()
    Image.new("RGB", (2000, 100), (90, 120, 150)).save(buffer, "PNG")  # a panorama: K may reach 500
    app = create_app(temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        sid = client.post("/api/sessions?name=pano.png", content=buffer.getvalue()).json()["id"]
        session = app.state.store.get(sid)
        session.depth.disparity = np.tile(np.linspace(0, 1, 2000, dtype=np.float32), (100, 1))
        lens, _ = parse_settings({"blur": 500, "focus_disparity": 0}, session)
        assert largest_radius(session.depth.disparity, lens) == pytest.approx(radius_limit(100, 2000))
        small, _ = parse_settings({"blur": 50, "focus_disparity": 0}, session)
        assert small.blur == 50
        assert client.get(f"/api/sessions/{sid}/preview", params={"blur": 500, "focus_disparity": 0}).status_code == 200

"""Item 6 of issue 13: NaN, infinity and overflowing numbers are refused where they enter, by name;
extreme but finite map values are converted without overflow."""

import numpy as np
import pytest
from PIL import Image

import lensblur
from conftest import assert_clean_failure, assert_clean_success, run_cli
from lensblur.errors import InputError


@pytest.mark.parametrize("option, value, name", [
    ("--blur", "nan", "--blur"), ("--blur", "inf", "--blur"), ("--blur", "1e999", "--blur"),
    ("--blur", "-5", "--blur"),
    ("--shape", "blades:6:nan", "rotation"), ("--shape", "blades:6:inf", "rotation"),
    ("--shape", "blades:6:0:nan", "curvature"),
    ("--focus-disparity", "nan", "--focus-disparity"), ("--focus-range", "inf", "--focus-range"),
    ("--near", "nan", "--near"), ("--far", "-inf", "--far"), ("--f-number", "inf", "--f-number"),
    ("--focal-length", "nan", "--focal-length"), ("--sensor-width", "0", "--sensor-width"),
    ("--rim", "nan", "--rim"), ("--cat-eye", "inf", "--cat-eye"), ("--focus", "nan,3", "--focus"),
    ("--highlights", "nan", "--highlights"), ("--grain", "inf", "--grain"), ("--max-pixels", "0", "--max-pixels"),
])
def test_non_finite_options_are_refused_by_name(photo, tmp_path, option, value, name):
    image, depth = photo
    result = run_cli("render", image, "--depth", depth, option, value, "-o", tmp_path / "out.png")
    assert_clean_failure(result, name, code=2)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("option, value", [("--blur", "nan"), ("--focus", "inf"), ("--limit", "0")])
def test_eval_options_are_checked(tmp_path, option, value):
    result = run_cli("eval", "--data", tmp_path, option, value)
    assert_clean_failure(result, option, code=2)


def test_serve_options_are_checked():
    result = run_cli("serve", "--max-upload-mb", "nan", timeout=60)
    assert_clean_failure(result, "--max-upload-mb", code=2)


def test_depth_spanning_the_float32_range_renders_cleanly(photo, tmp_path):
    image, _ = photo
    values = np.linspace(-3e38, 3e38, 60 * 80, dtype=np.float32).reshape(60, 80)
    path = tmp_path / "huge.npy"
    np.save(path, values)
    out = tmp_path / "out.png"
    assert_clean_success(run_cli("render", "-q", image, "--depth", path, "--blur", "20", "-o", out))
    result = np.asarray(Image.open(out))
    assert result.shape == (60, 80, 3) and result.std() > 0
    disparity = lensblur.read_depth(path)
    assert np.isfinite(disparity).all() and disparity.min() == 0 and disparity.max() == 1


@pytest.mark.parametrize("scale", [b"1e99999", b"-1e99999", b"nan", b"0"])
def test_pfm_with_a_non_finite_scale_is_refused(photo, tmp_path, scale):
    image, _ = photo
    path = tmp_path / "depth.pfm"
    body = np.linspace(1, 2, 60 * 80, dtype="<f4").tobytes()
    path.write_bytes(b"Pf\n80 60\n" + scale + b"\n" + body)
    result = run_cli("render", image, "--depth", path, "-o", tmp_path / "out.png")
    assert_clean_failure(result, "depth.pfm", "scale")


def test_api_refuses_non_finite_pixels_and_matte():
    image = np.full((30, 40, 3), 0.5, np.float32)
    disparity = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    bad = image.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        lensblur.render(bad, disparity, blur=5)
    matte = np.zeros((30, 40), np.float32)
    matte[0, 0] = np.inf
    with pytest.raises(InputError, match="matte"):
        lensblur.render(image, disparity, blur=5, matte=matte)
    with pytest.raises(InputError):
        lensblur.make_lens(disparity, blur=float("nan"))

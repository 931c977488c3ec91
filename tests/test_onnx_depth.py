"""ONNX depth estimator: tiny models built with onnx.helper, run through onnxruntime."""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from lensblur.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from lensblur.depth import DepthEstimate, get_estimator  # noqa: E402
from lensblur.depth.onnx_model import PRESETS, _Feed, _model_size, estimate_onnx  # noqa: E402
from lensblur.errors import InputError  # noqa: E402

DYNAMIC = ["N", 3, "H", "W"]


def _save(tmp_path, nodes, input_shape, name="model.onnx", output_rank=4):
    """Save a graph with input X (float) and output Y of ``output_rank`` unknown dims."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, input_shape)
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None] * output_rank)
    graph = helper.make_graph(nodes, "tiny-depth", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _mean(out="M", axis=1):
    return helper.make_node("ReduceMean", ["X"], [out], axes=[axis], keepdims=1)


def mean_model(tmp_path, shape=DYNAMIC, name="mean.onnx"):
    """Output = channel mean of the normalised input (brighter = bigger = nearer as disparity)."""
    return _save(tmp_path, [_mean("Y")], shape, name)


def depth_model(tmp_path, shape=DYNAMIC, name="depth.onnx"):
    """Output = exp(−mean): a positive 'metric depth', brighter = smaller = nearer."""
    return _save(tmp_path, [_mean(), helper.make_node("Neg", ["M"], ["Q"]), helper.make_node("Exp", ["Q"], ["Y"])],
                 shape, name)


def minmax_model(tmp_path, shape=DYNAMIC, name="minmax.onnx"):
    """Output = channel mean rescaled to [0, 1] per image: an unknown scale and shift per call,
    like a relative depth network."""
    nodes = [_mean(),
             helper.make_node("ReduceMin", ["M"], ["L"], keepdims=1),
             helper.make_node("ReduceMax", ["M"], ["H"], keepdims=1),
             helper.make_node("Sub", ["M", "L"], ["A"]),
             helper.make_node("Sub", ["H", "L"], ["R"]),
             helper.make_node("Div", ["A", "R"], ["Y"])]
    return _save(tmp_path, nodes, shape, name)


def normalised_mean(image, preset):
    """What the tiny models see per pixel: the channel mean of (sRGB − mean) / std."""
    spec = PRESETS[preset]
    encoded = linear_to_srgb(image)
    return ((encoded - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)).mean(axis=2)


def scene(height=48, width=64):
    """A smooth photo: brightness rises to the right, with a bright square on the left."""
    ramp = np.linspace(0.2, 0.7, width, dtype=np.float32)[None, :].repeat(height, 0)
    ramp[height // 4:height // 2, width // 8:width // 4] = 0.95
    return srgb_to_linear(np.repeat(ramp[..., None], 3, axis=2))


def smooth(height, width):
    """A smooth colour photo (no edges), for comparing tiled and whole-image results."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 0.5 + 0.3 * np.sin(x / width * 3.0) * np.cos(y / height * 2.0)
    green = 0.4 + 0.2 * x / width
    blue = 0.3 + 0.2 * y / height
    return srgb_to_linear(np.stack([red, green, blue], axis=2))


@pytest.mark.parametrize("preset", ["depth-anything-v2", "midas", "midas-small"])
def test_relative_presets_give_disparity_at_image_size(tmp_path, preset):
    image = scene()
    estimate = estimate_onnx(image, mean_model(tmp_path), preset=preset)
    assert isinstance(estimate, DepthEstimate)
    d = estimate.disparity
    assert d.shape == image.shape[:2] and d.dtype == np.float32
    assert d.min() >= 0 and d.max() <= 1 and d.max() == pytest.approx(1) and d.min() == pytest.approx(0)
    # The bright square is nearer than the dark ramp beside it; the ramp grows to the right.
    assert d[15:21, 10:14].mean() > d[15:21, 20:24].mean() + 0.3
    assert d[40, 60] > d[40, 20] > d[40, 2]
    expected = normalised_mean(image, preset)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert np.abs(d - expected)[4:-4, 4:-4].mean() < 0.03


def test_fixed_input_size_same_as_image_is_exact(tmp_path):
    image = scene(32, 48)
    d = estimate_onnx(image, mean_model(tmp_path, [1, 3, 32, 48]), preset="midas").disparity
    expected = normalised_mean(image, "midas")
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(d, expected, atol=1e-5)


def test_fixed_square_input_letterboxes_other_aspects(tmp_path):
    # A 40×80 photo through a fixed 32×32 model: padded top and bottom, cropped back exactly.
    y = np.linspace(0.1, 0.9, 40, dtype=np.float32)[:, None].repeat(80, 1)
    image = srgb_to_linear(np.repeat(y[..., None], 3, axis=2))
    estimate = estimate_onnx(image, mean_model(tmp_path, [1, 3, 32, 32]), preset="midas-small")
    d = estimate.disparity
    assert d.shape == (40, 80)
    profile = d.mean(axis=1)
    assert np.all(np.diff(profile[2:-2]) > 0)  # padding cropped: still a clean ramp top to bottom
    np.testing.assert_allclose(profile, np.linspace(0, 1, 40), atol=0.06)
    assert any("32×32 (fixed size)" in note for note in estimate.notes)


def test_nhwc_input_is_accepted(tmp_path):
    image = scene(32, 48)
    path = _save(tmp_path, [helper.make_node("ReduceMean", ["X"], ["Y"], axes=[3], keepdims=1)], [1, 32, 48, 3])
    d = estimate_onnx(image, path, preset="midas").disparity
    expected = normalised_mean(image, "midas")
    np.testing.assert_allclose(d, (expected - expected.min()) / (expected.max() - expected.min()), atol=1e-5)


def test_dynamic_sizes_follow_the_preset_rules():
    feed = _Feed("X", np.float32, "NCHW", None, None, None)
    assert _model_size(feed, PRESETS["depth-anything-v2"], 600, 900) == (518, 784)  # short side ≥ 518, ×14
    assert _model_size(feed, PRESETS["midas"], 300, 400) == (384, 512)  # short side ≥ 384, ×32
    assert _model_size(feed, PRESETS["midas-small"], 3000, 4000) == (192, 256)  # long side ≤ 256, ×32
    fixed = _Feed("X", np.float32, "NCHW", (256, 256), 256, 256)
    assert _model_size(fixed, PRESETS["depth-anything-v2"], 600, 900) == (256, 256)
    height_only = _Feed("X", np.float32, "NCHW", None, 384, None)
    assert _model_size(height_only, PRESETS["midas"], 300, 600) == (384, 768)


def test_metric_depth_follows_the_disparity_formula(tmp_path):
    image = scene(32, 48)
    path = depth_model(tmp_path, [1, 3, 32, 48])
    z = np.exp(-normalised_mean(image, "metric-depth")).astype(np.float64)

    d = estimate_onnx(image, path, preset="metric-depth").disparity
    zn, zf = z.min(), z.max()
    np.testing.assert_allclose(d, (1 / z - 1 / zf) / (1 / zn - 1 / zf), atol=1e-4)

    near, far = 0.5, 3.0
    estimate = estimate_onnx(image, path, preset="metric-depth", near=near, far=far)
    expected = np.clip((1 / z - 1 / far) / (1 / near - 1 / far), 0, 1)
    np.testing.assert_allclose(estimate.disparity, expected, atol=1e-4)
    assert any("metric depth" in note for note in estimate.notes)
    # Brighter = smaller depth = nearer.
    assert estimate.disparity[9:15, 7:11].mean() > estimate.disparity[9:15, 14:18].mean() + 0.3


def test_metric_depth_with_dynamic_input(tmp_path):
    image = scene()
    d = estimate_onnx(image, depth_model(tmp_path), preset="metric-depth").disparity
    z = np.exp(-normalised_mean(image, "metric-depth")).astype(np.float64)
    expected = (1 / z - 1 / z.max()) / (1 / z.min() - 1 / z.max())
    assert d.shape == image.shape[:2] and 0 <= d.min() and d.max() <= 1
    assert np.abs(d - expected)[4:-4, 4:-4].mean() < 0.03


def test_registered_as_onnx(tmp_path):
    image = scene(32, 48)
    estimate = get_estimator("onnx")(image, model_path=str(mean_model(tmp_path)), preset="midas")
    assert estimate.disparity.shape == (32, 48)


@pytest.mark.parametrize("preset", ["midas", "metric-depth"])
def test_tiling_matches_whole_image_on_smooth_input(tmp_path, preset):
    image = smooth(96, 144)
    path = minmax_model(tmp_path) if preset == "midas" else depth_model(tmp_path)
    whole = estimate_onnx(image, path, preset=preset).disparity
    tiled = estimate_onnx(image, path, preset=preset, tile=64)
    assert any("tiled: 6 tiles" in note for note in tiled.notes)
    assert tiled.disparity.shape == whole.shape
    assert 0 <= tiled.disparity.min() and tiled.disparity.max() <= 1
    assert np.abs(tiled.disparity - whole).max() < 0.03
    assert np.abs(tiled.disparity - whole).mean() < 0.005


def test_tiling_aligns_tiles_with_unknown_scale_and_shift(tmp_path):
    # Each call of the min-max model rescales its tile to [0, 1]; unaligned tiles would disagree.
    image = smooth(120, 160)
    path = minmax_model(tmp_path, [1, 3, 32, 32])
    tiled = estimate_onnx(image, path, preset="midas", tile=True)  # 120 > 1.5 × 32: tiles of 40 px
    assert any("tiled" in note for note in tiled.notes)
    expected = normalised_mean(image, "midas")
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert np.abs(tiled.disparity - expected).mean() < 0.02


def test_tiling_skipped_for_small_photos(tmp_path):
    estimate = estimate_onnx(scene(32, 48), mean_model(tmp_path), preset="depth-anything-v2", tile=True)
    assert any("tiling skipped" in note for note in estimate.notes)


def test_invalid_outputs_are_filled_or_refused(tmp_path):
    # sqrt of the normalised mean: NaN wherever the sRGB value is below 0.5 (midas normalisation).
    path = _save(tmp_path, [_mean(), helper.make_node("Sqrt", ["M"], ["Y"])], [1, 3, 32, 32])
    mostly_bright = np.full((32, 32, 3), srgb_to_linear(np.float32(0.8)), np.float32)
    mostly_bright[4:10, 4:10] = 0.01
    d = estimate_onnx(mostly_bright, path, preset="midas").disparity
    assert np.isfinite(d).all() and d.min() >= 0 and d.max() <= 1
    with pytest.raises(InputError, match="invalid"):
        estimate_onnx(np.full((32, 32, 3), 0.01, np.float32), path, preset="midas")


def test_missing_model_file(tmp_path):
    with pytest.raises(InputError, match="no such file.*downloads nothing"):
        estimate_onnx(scene(), tmp_path / "absent.onnx")
    with pytest.raises(InputError, match="downloads nothing"):
        estimate_onnx(scene(), None)
    with pytest.raises(InputError, match="folder"):
        estimate_onnx(scene(), tmp_path)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"PK\x03\x04 this is a zip of torch weights, not ONNX")
    with pytest.raises(InputError, match="not a usable ONNX file.*downloads nothing") as error:
        estimate_onnx(scene(), path)
    assert "\n" not in str(error.value)


def test_wrong_input_rank(tmp_path):
    path = _save(tmp_path, [helper.make_node("ReduceMean", ["X"], ["Y"], axes=[0], keepdims=0)], [3, "H", "W"],
                 output_rank=2)
    with pytest.raises(InputError, match="rank 3"):
        estimate_onnx(scene(), path)


def test_no_channel_axis(tmp_path):
    path = mean_model(tmp_path, [1, 1, 32, 32])
    with pytest.raises(InputError, match="3-channel"):
        estimate_onnx(scene(), path)


def test_unknown_preset_and_bad_image(tmp_path):
    path = mean_model(tmp_path)
    with pytest.raises(InputError, match="unknown ONNX depth preset"):
        estimate_onnx(scene(), path, preset="zoe")
    with pytest.raises(InputError, match="H×W×3"):
        estimate_onnx(np.zeros((8, 8), np.float32), path)


def test_onnxruntime_missing(tmp_path, monkeypatch):
    path = mean_model(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(InputError, match="pip install onnxruntime.*downloads nothing"):
        estimate_onnx(scene(), path)

"""D2F: the method's formulas (kernel, layer windows, compositing, W·I/W ratio, threshold, blend),
the networks, training stages, the renderer entry, ONNX export and bad input."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensblur.cli import main  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.lens import Lens  # noqa: E402
from lensblur.renderers import render_with  # noqa: E402
from lensblur.synth.dataset import generate  # noqa: E402
from lensblur.systems.d2f import model as d2f  # noqa: E402
from lensblur.systems.d2f.renderer import SHIPPED, load_d2f, predict  # noqa: E402
from lensblur.training.checkpoint import save_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def reference_kernel(r: int) -> np.ndarray:
    """The authors' soft disk written out independently: K = 2r + 1, k = ½ + ½·tanh(¼(r² − x² − y²) + ½)."""
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    k = 0.5 + 0.5 * np.tanh(0.25 * (r * r - x * x - y * y) + 0.5)
    return k / k.sum()


# ------------------------------------------------------------------------------ kernel and layers

@pytest.mark.parametrize("radius", [1, 3, 7, 34])
def test_soft_disk_kernel_is_the_authors_formula(radius):
    kernel = d2f.soft_disk_kernel(float(radius)).double().numpy()
    assert kernel.shape == (2 * radius + 1, 2 * radius + 1)
    np.testing.assert_allclose(kernel, reference_kernel(radius), rtol=1e-6, atol=1e-9)
    assert kernel[radius, radius] == kernel.max() and kernel[0, 0] == kernel.min()  # a disc, centred


def test_layer_radii_are_the_authors_list_at_768_and_scale_with_width():
    sizes = [2 * r + 1 for r in d2f.layer_radii(768)[1:]]
    assert sizes == [3, 5, 7, 11, 15, 19, 23, 27, 33, 39, 45, 53, 61, 69]
    assert d2f.layer_radii(384) == pytest.approx([r / 2 for r in d2f.AUTHOR_RADII])
    assert d2f.working_size(1024, 1536) == (512, 768)
    assert d2f.working_size(384, 576) == (192, 288)


def test_layer_windows():
    levels = d2f.layer_levels()
    assert len(levels) == 15 and levels[1] == pytest.approx(1 / 14)
    delta = 1 / 14
    values = torch.tensor([0.0, 3 * delta, 3.5 * delta, 7.5 * delta, 0.5]).view(1, 1, 1, 5)
    masks = [m.flatten() for m in d2f.layer_masks(values)]
    expected = [0.5 + 0.5 * np.tanh(100 * (delta - np.abs(values.flatten().numpy() - level))) for level in levels]
    for mask, want in zip(masks, expected):
        np.testing.assert_allclose(mask.numpy(), want, atol=1e-6)
    # exactly at level 3: window 3 is 1, its neighbours 0.5, the rest 0
    assert masks[3][1] == pytest.approx(1, abs=1e-6)
    assert masks[2][1] == pytest.approx(0.5, abs=1e-6) and masks[4][1] == pytest.approx(0.5, abs=1e-6)
    assert masks[5][1] < 1e-6
    # between levels 3 and 4: ≈ 1 in both
    assert masks[3][2] > 0.999 and masks[4][2] > 0.999 and masks[2][2] < 1e-3


def test_flat_defocus_renders_with_the_lower_layer_kernel():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 48, 64), dtype=np.float32))
    radii = d2f.layer_radii(768)
    defocus = torch.full((1, 1, 48, 64), 3.5 / 14)  # between levels 3 and 4: layer 3 is in front
    out = d2f.layered_render(image, defocus, radii)
    expected = d2f.disk_blur(image, d2f.soft_disk_kernel(radii[3]))
    torch.testing.assert_close(out, expected, atol=5e-4, rtol=0)  # windows are 0.9992, not 1, mid-level
    assert (out - d2f.disk_blur(image, d2f.soft_disk_kernel(radii[4]))).abs().max() > 0.02


def test_smaller_defocus_is_composited_in_front():
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((1, 3, 40, 80), dtype=np.float32))
    defocus = torch.ones(1, 1, 40, 80)
    defocus[..., :40] = 0.0  # left half sharp, right half the largest blur
    out = d2f.layered_render(image, defocus, d2f.layer_radii(768 // 8))
    # the sharp layer occludes the blurred one: no background bleeds into the sharp half
    torch.testing.assert_close(out[..., :40], image[..., :40], atol=1e-5, rtol=0)
    assert (out[..., 44:] - image[..., 44:]).abs().mean() > 0.05


@pytest.mark.parametrize("radius", [1.0, 2.6, 16.0])
def test_fft_and_direct_blur_agree(radius):
    x = torch.from_numpy(np.random.default_rng(2).random((1, 4, 50, 70), dtype=np.float32))
    kernel = d2f.soft_disk_kernel(radius)
    torch.testing.assert_close(d2f.disk_blur(x, kernel, "fft"), d2f.disk_blur(x, kernel, "direct"), atol=2e-5, rtol=0)


# ------------------------------------------------------------------------------ radiance weighting

def test_radiance_weights_boost_only_clipped_pixels():
    image = torch.tensor([[0.5, 0.2, 0.1], [1.0, 0.6, 0.2], [0.98, 0.98, 0.98]]).T.reshape(1, 3, 1, 3)
    learned = torch.full((1, 1, 1, 3), 0.4)
    weights = d2f.radiance_weights(image, learned)
    assert weights.shape == (1, 3, 1, 3)
    torch.testing.assert_close(weights[..., 0].flatten(), torch.full((3,), 0.4))
    torch.testing.assert_close(weights[..., 1].flatten(), 3 * image[..., 1].flatten() ** 5)
    torch.testing.assert_close(weights[..., 2].flatten(), torch.full((3,), 0.4))  # 0.98 < 0.99


def test_weighted_render_is_the_ratio_of_two_layered_renders():
    rng = np.random.default_rng(3)
    image = torch.from_numpy(rng.random((1, 3, 40, 56), dtype=np.float32))
    weights = torch.from_numpy(rng.uniform(0.05, 3, (1, 3, 40, 56)).astype(np.float32))
    defocus = torch.from_numpy(rng.random((1, 1, 40, 56), dtype=np.float32))
    radii = d2f.layer_radii(256)
    ratio = d2f.layered_render(weights * image, defocus, radii) / (d2f.layered_render(weights, defocus, radii) + 1e-10)
    out = d2f.weighted_render(image, weights, defocus, radii)
    torch.testing.assert_close(out, ratio, atol=1e-5, rtol=1e-5)
    # the weights matter: not the same as rendering the image itself
    assert (out - d2f.layered_render(image, defocus, radii)).abs().max() > 0.05


def test_clipped_light_makes_a_bright_disc():
    image = torch.full((1, 3, 41, 41), 0.2)
    image[..., 20, 20] = 1.0
    defocus = torch.full((1, 1, 41, 41), 7.5 / 14)
    learned = torch.full((1, 1, 41, 41), 0.5)
    radii = d2f.layer_radii(768)
    weighted = d2f.weighted_render(image, d2f.radiance_weights(image, learned), defocus, radii)
    plain = d2f.layered_render(image, defocus, radii)
    # the boosted light (weight 3 against 0.5) lifts its disc well above the plain average
    assert float(weighted[0, 0, 20, 20] - 0.2) > 4 * float(plain[0, 0, 20, 20] - 0.2) > 0


# ------------------------------------------------------------------------------ fusion

def test_adaptive_threshold_rule():
    tau = 1 / 8
    low = torch.tensor([0.05, 0.1, 0.9]).view(1, 1, 1, 3)  # β = 0.05 < τ → t = τ
    assert float(d2f.adaptive_threshold(low)) == pytest.approx(tau)
    high = torch.tensor([0.2, 0.3, 1.0]).view(1, 1, 1, 3)  # β = 0.2 ≥ τ → t = β + τ(α − β)
    assert float(d2f.adaptive_threshold(high)) == pytest.approx(0.2 + tau * 0.8)
    both = torch.cat([low, high])
    assert d2f.adaptive_threshold(both).flatten().tolist() == pytest.approx([tau, 0.3])
    assert d2f.initial_mask(high).flatten().tolist() == [1.0, 0.0, 0.0]
    assert d2f.initial_mask(low).flatten().tolist() == [1.0, 1.0, 0.0]


def test_fusion_blend():
    image = torch.full((1, 3, 2, 2), 0.8)
    bokeh = torch.full((1, 3, 2, 2), 0.2)
    soft = torch.tensor([[[[1.0, 0.0], [0.25, 1.7]]]])
    out = d2f.fuse(image, bokeh, soft)
    torch.testing.assert_close(out[0, 0], torch.tensor([[0.8, 0.2], [0.35, 0.8]]))
    torch.testing.assert_close(d2f.luminance(torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)).flatten(), torch.tensor([0.299]))


def test_stage_two_feeds_one_minus_defocus_and_luminance():
    torch.manual_seed(0)
    model = d2f.D2F(width=4, features=8)
    seen = {}
    model.refine.register_forward_pre_hook(lambda module, inputs: seen.update(x=inputs[0]))
    image = torch.rand(1, 3, 64, 96)
    defocus = torch.rand(1, 1, 32, 64)
    out, soft, first = model.stage_two(image, torch.rand(1, 3, 32, 64), defocus)
    up = d2f.resize(defocus, 64, 96)
    torch.testing.assert_close(seen["x"][:, :1], 1 - up)
    torch.testing.assert_close(seen["x"][:, 1:], d2f.luminance(image))
    assert out.shape == image.shape and soft.shape == first.shape == (1, 1, 64, 96)


# ------------------------------------------------------------------------------ networks, scale

def test_model_shapes_and_defocus_range():
    torch.manual_seed(0)
    model = d2f.D2F(width=4, features=8).eval()
    with torch.no_grad():
        out, defocus = model(torch.rand(1, 3, 100, 130))
    assert out.shape == (1, 3, 100, 130) and defocus.shape == (1, 1, 64, 64)
    assert float(defocus.min()) >= 0 and float(defocus.max()) <= 1
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_radius_defocus_round_trip():
    radii = np.array(d2f.layer_radii(192), np.float32)
    defocus = d2f.radius_to_defocus(radii, 192)
    np.testing.assert_allclose(d2f.defocus_radius(defocus, 192), radii)


# ------------------------------------------------------------------------------ training, CLI, export

@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("d2f-scenes")
    generate(folder, 2, 5, 64, 96, workers=1, focus="nearest")
    return folder


def _train(folder, out, *extra):
    return main(["train", "-q", "d2f", "--data", str(folder), "--out", str(out), "--threads", "1",
                 "--size", "64x96", "--crop", "64x96", "--batch", "2", "--width", "4", "--features", "8", *extra])


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("d2f-ckpt") / "d2f.pt"
    assert _train(scenes, out, "--steps", "2", "--defocus-weight", "0.5", "--grad-weight", "0.5") == 0
    ship = out.with_name("ship.pt")
    assert _train(scenes, out, "--stage", "2", "--steps", "2", "--resume", "--ship", str(ship),
                  "--prior-weight", "0.1", "--grad-weight", "1") == 0
    return ship


def test_training_runs_both_stages_in_order(trained):
    payload = torch.load(trained, weights_only=True)
    assert payload["system"] == "d2f" and payload["config"]["stage"] == 2 and payload["optimizer"] is None
    stages = [entry["stage"] for entry in payload["history"]]
    assert stages == [1, 1, 2, 2]
    assert {"defocus", "grad"} <= set(payload["history"][0]) and {"prior", "grad"} <= set(payload["history"][2])


def test_stage_two_trains_only_the_refine_cnn(scenes, tmp_path):
    out = tmp_path / "a.pt"
    assert _train(scenes, out, "--steps", "1") == 0
    before = torch.load(out, weights_only=True)["model"]
    assert _train(scenes, out, "--stage", "2", "--steps", "1", "--resume") == 0
    after = torch.load(out, weights_only=True)["model"]
    changed = {key.split(".")[0] for key in before if not torch.equal(before[key], after[key])}
    assert changed == {"refine"}


def test_stage_two_without_resume_is_a_one_line_error(scenes, tmp_path, capsys):
    assert _train(scenes, tmp_path / "x.pt", "--stage", "2") == 1
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and len(err.splitlines()) == 1


def test_renderer_entry_and_api(trained):
    from lensblur import api

    image = np.random.default_rng(4).random((70, 90, 3), dtype=np.float32)
    out = render_with("d2f", image, np.zeros((70, 90), np.float32), Lens(), checkpoint=str(trained))
    assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    via_api = api.render(image, np.zeros((70, 90), np.float32), renderer="d2f",
                         renderer_options={"checkpoint": str(trained)})
    np.testing.assert_allclose(via_api, out, atol=1e-6)
    bokeh, defocus = predict(load_d2f(trained), image, fusion=False)
    assert bokeh.shape == image.shape and defocus.shape == d2f.working_size(70, 90)


def test_onnx_export_matches_torch(trained, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "d2f.onnx"
    assert main(["export", "d2f", "--format", "onnx", "--out", str(path), "--checkpoint", str(trained),
                 "--size", "64x96"]) == 0
    assert "opset" in capsys.readouterr().out
    image = np.random.default_rng(5).random((1, 3, 64, 96), dtype=np.float32)
    image[..., 10:13, 20:23] = 1.0  # clipped pixels take the highlight branch
    model = load_d2f(trained)
    model.render_method = "direct"
    with torch.no_grad():
        want_bokeh, want_defocus = model(torch.from_numpy(image))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    bokeh, defocus = session.run(None, {"image": image})
    np.testing.assert_allclose(bokeh, want_bokeh.numpy(), atol=1e-3)
    np.testing.assert_allclose(defocus, want_defocus.numpy(), atol=1e-3)
    # an existing file is not replaced without --overwrite
    assert main(["export", "d2f", "--out", str(path), "--checkpoint", str(trained)]) == 1
    assert "exists" in capsys.readouterr().err


def test_mismatched_state_is_a_one_line_error(tmp_path):
    path = tmp_path / "wrong.pt"
    save_checkpoint(path, "d2f", {"model": {"width": 4, "features": 8}}, {"refine.net.0.weight": torch.zeros(1)})
    with pytest.raises(InputError, match="does not match"):
        load_d2f(path)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped checkpoint in this checkout")
def test_shipped_checkpoint_is_small_and_brings_the_photo_closer_to_the_bokeh():
    from lensblur.metrics import psnr
    from lensblur.synth import camera_image, make_scene, render_ground_truth
    from lensblur.synth.thinlens import encode_srgb8

    assert SHIPPED.stat().st_size < 5 * 2 ** 20
    scene = make_scene(np.random.default_rng([77, 0]), 192, 288, focus="nearest")
    photo, truth = camera_image(scene), encode_srgb8(render_ground_truth(scene))
    out, defocus = predict(load_d2f(), photo.astype(np.float32) / 255.0)
    assert out.shape == photo.shape and defocus.shape == d2f.working_size(192, 288)
    # a scene it never saw: the render is nearer the exact thin-lens image than the photo is
    assert psnr(np.round(out * 255).astype(np.uint8), truth) > psnr(photo, truth) + 2

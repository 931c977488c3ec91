"""DBSI and the saliency baseline: blending, shapes, training steps, CLI, shipped checkpoint."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensblur.cli import main  # noqa: E402
from lensblur.color import linear_to_srgb  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.lens import Lens  # noqa: E402
from lensblur.systems.dbsi.model import DBSI, blend, blend_array, depth_channels, gaussian_blur, predict  # noqa: E402
from lensblur.models.megadepth import MegaDepthHourglass, count_parameters  # noqa: E402
from lensblur.renderers import render_with  # noqa: E402
from lensblur.systems.dbsi.renderer import gaussian_sigma, load_dbsi, render_saliency_baseline  # noqa: E402
from lensblur.synth.dataset import generate  # noqa: E402
from lensblur.training.checkpoint import save_checkpoint  # noqa: E402
from lensblur.systems.dbsi import training as dbsi_training  # noqa: E402
from lensblur.systems.dbsi.training import negative_ssim_loss  # noqa: E402
from lensblur.commands import train as train_command  # noqa: E402

DATA = Path(__file__).parent / "data"
TINY_WIDTH = 0.0625  # 8 stem channels: fast enough for a test


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(**options):
    torch.manual_seed(0)
    return DBSI(width=TINY_WIDTH, **options)


def test_opencv_kernel_sigmas_and_blur_match_opencv():
    for size in (25, 45, 75):  # the σ OpenCV gives a k×k kernel without an explicit σ (truncated at ±3σ)
        kernel = cv2.getGaussianKernel(size, 0)[:, 0]
        taps = np.arange(size) - size // 2
        assert gaussian_sigma(size) == pytest.approx(np.sqrt((kernel * taps**2).sum()), rel=0.03)
    rng = np.random.default_rng(1)
    image = rng.random((40, 56, 3), dtype=np.float32)
    sigma = 2.7
    radius = int(np.ceil(3 * sigma))
    expected = cv2.GaussianBlur(image, (2 * radius + 1,) * 2, sigma, borderType=cv2.BORDER_REPLICATE)
    got = gaussian_blur(torch.from_numpy(image.transpose(2, 0, 1))[None], sigma)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_numpy_blend_matches_the_torch_blend():
    rng = np.random.default_rng(7)
    image = rng.random((30, 40, 3), dtype=np.float32)
    weights = torch.softmax(torch.from_numpy(rng.normal(size=(1, 3, 30, 40)).astype(np.float32)), dim=1)
    expected = blend(torch.from_numpy(image.transpose(2, 0, 1))[None], weights, [1.2, 4.0])
    got = blend_array(image, weights[0].permute(1, 2, 0).numpy(), [1.2, 4.0])
    np.testing.assert_allclose(got, expected[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_blend_is_equation_one():
    rng = np.random.default_rng(2)
    images = torch.from_numpy(rng.random((1, 3, 32, 32), dtype=np.float32))
    keep = torch.zeros(1, 3, 32, 32)
    keep[:, 0] = 1
    torch.testing.assert_close(blend(images, keep, [1.0, 3.0]), images)
    widest = torch.zeros(1, 3, 32, 32)
    widest[:, 2] = 1
    torch.testing.assert_close(blend(images, widest, [1.0, 3.0]), gaussian_blur(images, 3.0))


@pytest.mark.parametrize("kernels", [(25, 45, 75), (75,), (5, 25, 45)])
def test_shapes_and_softmax_weights_sum_to_one(kernels):
    model = tiny_model(kernels=kernels).eval()
    images = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        weights = model.weights(images)
        out = model(images)
    assert weights.shape == (2, 1 + len(kernels), 32, 48)
    assert out.shape == images.shape
    assert float(weights.min()) >= 0
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 32, 48), atol=1e-5, rtol=0)
    # a convex blend of the image and its blurs stays inside the input's range
    assert float(out.min()) >= float(images.min()) - 1e-5 and float(out.max()) <= float(images.max()) + 1e-5


def test_depth_conditioned_variant_needs_its_channels():
    model = tiny_model(depth_input=True).eval()
    images = torch.rand(1, 3, 32, 32)
    disparity = torch.rand(1, 1, 32, 32)
    conditioning = depth_channels(disparity, torch.tensor([0.5]), torch.tensor([8.0]), 32)
    assert conditioning.shape == (1, 2, 32, 32)
    # the CoC channel is K·(D − d_f) in pixels at 1024 width, over 32
    torch.testing.assert_close(conditioning[:, 1], (disparity[:, 0] - 0.5) * 8.0 * 1024 / 32 / 32)
    with torch.no_grad():
        assert model(images, conditioning).shape == images.shape
    with pytest.raises(InputError):
        model(images)
    with pytest.raises(InputError):
        tiny_model()(images, conditioning)


def test_hourglass_width_option():
    narrow = MegaDepthHourglass(width=0.25, in_channels=5)
    assert narrow.feature_channels == 16 and narrow.in_channels == 5
    assert count_parameters(narrow) < count_parameters(MegaDepthHourglass()) / 10
    assert narrow.forward_features(torch.rand(1, 5, 16, 32)).shape == (1, 16, 16, 32)
    with pytest.raises(InputError):
        narrow.forward_features(torch.rand(1, 3, 16, 32))
    with pytest.raises(InputError):
        MegaDepthHourglass(width=0)


@pytest.mark.parametrize("loss_name", ["l1", "ssim"])
def test_gradient_step_reduces_the_loss(loss_name):
    model = tiny_model()
    model.train()
    rng = np.random.default_rng(3)
    images = torch.from_numpy(rng.random((2, 3, 32, 32), dtype=np.float32))
    targets = gaussian_blur(images, 1.5)
    loss_fn = torch.nn.functional.l1_loss if loss_name == "l1" else negative_ssim_loss
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
    before = loss_fn(model(images), targets)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_fn(model(images), targets)
    assert float(after) < float(before.detach())


def test_negative_ssim_loss_is_zero_for_identical_images():
    images = torch.rand(1, 3, 24, 24)
    assert float(negative_ssim_loss(images, images)) == pytest.approx(0, abs=1e-5)
    assert float(negative_ssim_loss(images, torch.rand(1, 3, 24, 24))) > 0.5


@pytest.mark.parametrize("upsample", ["weights", "output"])
def test_predict_returns_input_size(upsample):
    model = tiny_model(depth_input=True)
    srgb = np.random.default_rng(4).random((50, 70, 3), dtype=np.float32)
    disparity = np.tile(np.linspace(0, 1, 70, dtype=np.float32), (50, 1))
    out = predict(model, srgb, disparity, 0.5, 10.0, (32, 48), upsample)
    assert out.shape == srgb.shape and out.dtype == np.float32
    with pytest.raises(InputError):
        predict(model, srgb, disparity, 0.5, 10.0, (30, 48), upsample)


def test_saliency_baseline_blends_by_the_subject_map():
    rng = np.random.default_rng(5)
    image = rng.random((64, 96, 3), dtype=np.float32)
    disparity = np.zeros((64, 96), np.float32)
    kept = render_saliency_baseline(image, disparity, Lens(), matte=np.ones((64, 96), np.float32))
    np.testing.assert_allclose(kept, image, atol=2e-3)
    blurred = render_saliency_baseline(image, disparity, Lens(), matte=np.zeros((64, 96), np.float32))
    assert blurred.std() < 0.5 * image.std()
    automatic = render_with("saliency-baseline", image, disparity, Lens())
    assert automatic.shape == image.shape and automatic.dtype == np.float32


def _tiny_scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dbsi-scenes")
    generate(folder, 3, 5, 32, 48, workers=0)
    return folder


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return _tiny_scenes(tmp_path_factory)


def _train(folder, out, *extra):
    return main(["train", "-q", "dbsi", "--data", str(folder), "--out", str(out), "--threads", "1",
                 "--size", "32x48", "--batch", "2", "--width", str(TINY_WIDTH), *extra])


class _InterruptingBar:
    """A progress bar that stops training (as Ctrl-C would) at its third step."""

    def __init__(self):
        self.steps = 0

    def update(self, count):
        self.steps += count
        if self.steps > 2:
            raise InputError("interrupted")

    def set_postfix(self, **values):
        pass


@contextmanager
def _interrupting_progress(total, description, quiet=False):
    yield _InterruptingBar()


def test_training_cli_resumes_exactly(scenes, tmp_path, capsys, monkeypatch):
    straight, split = tmp_path / "straight.pt", tmp_path / "split.pt"
    assert _train(scenes, straight, "--steps", "4", "--depth-input", "--kernels", "25,75") == 0
    with monkeypatch.context() as patch:
        patch.setattr(dbsi_training, "SAVE_EVERY", 2)
        patch.setattr(train_command, "progress_bar", _interrupting_progress)
        assert _train(scenes, split, "--steps", "4", "--depth-input", "--kernels", "25,75") == 1
    assert torch.load(split, weights_only=True)["step"] == 2
    assert _train(scenes, split, "--resume") == 0
    a, b = torch.load(straight, weights_only=True), torch.load(split, weights_only=True)
    assert b["step"] == 4 and len(b["history"]) == 4
    assert b["config"]["model"]["kernels"] == [25, 75] and b["config"]["model"]["depth_input"]
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key])
    # phase 2 continues from phase 1; the model options come from the checkpoint
    ship = tmp_path / "ship.pt"
    assert _train(scenes, split, "--phase", "2", "--steps", "1", "--resume", "--ship", str(ship)) == 0
    shipped = torch.load(ship, weights_only=True)
    assert shipped["config"]["phase"] == 2 and shipped["optimizer"] is None
    assert all(v.dtype == torch.float16 for v in shipped["model"].values() if torch.is_floating_point(v))
    image = np.random.default_rng(6).random((40, 60, 3), dtype=np.float32)
    out = render_with("dbsi", image, np.full((40, 60), 0.3, np.float32), Lens(blur=5, focus_disparity=0.3),
                      checkpoint=str(ship))
    assert out.shape == image.shape and np.isfinite(out).all()
    capsys.readouterr()
    assert _train(scenes, split, "--phase", "2", "--steps", "1", "--resume", "--kernels", "75") == 1
    assert "differs from the checkpoint" in capsys.readouterr().err


def test_phase_two_without_resume_is_a_one_line_error(scenes, tmp_path, capsys):
    assert _train(scenes, tmp_path / "x.pt", "--phase", "2") == 1
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and len(err.splitlines()) == 1


def _write_png(path, linear):
    cv2.imwrite(str(path), cv2.cvtColor((linear_to_srgb(linear) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))


def test_mismatched_state_is_a_one_line_error(tmp_path):
    path = tmp_path / "wrong.pt"
    config = {"model": {"kernels": [25, 45, 75], "width": TINY_WIDTH, "depth_input": False, "kernel_width": 1024}}
    save_checkpoint(path, "dbsi", config, {"backbone.0.weight": torch.zeros(1)})
    with pytest.raises(InputError, match="does not match"):
        load_dbsi(path)


def test_shipped_checkpoint_reproduces_the_stored_output():
    reference = np.load(DATA / "dbsi_reference.npz")
    meta = json.loads(str(reference["meta"]))
    model, train_size = load_dbsi()
    assert model.depth_input == meta["depth_input"] and list(train_size) == meta["train_size"]
    lens = Lens(blur=float(meta["blur"]), focus_disparity=float(meta["focus_disparity"]))
    out = render_with("dbsi", reference["image"], reference["disparity"], lens)
    np.testing.assert_allclose(out, reference["output"], atol=2e-3)
    # the stored output is a real render: blurred where the disparity is far from the focus
    far = np.abs(reference["disparity"] - lens.focus_disparity) > 0.3
    assert np.abs(out - reference["image"])[far].mean() > 0.01


# ------------------------------------------------------------- the paper's configuration and init

def _released_megadepth(path, width=1.0, rename=None):
    """A checkpoint laid out like MegaDepth's best_generalization_net_G.pth: the hourglass saved
    from a DataParallel wrapper (keys module.0.weight ... module.4.bias), random weights."""
    torch.manual_seed(3)
    hourglass = MegaDepthHourglass(width)
    state = {"module." + k: v for k, v in hourglass.state_dict().items() if not k.endswith("num_batches_tracked")}
    if rename:
        state[rename[1]] = state.pop(rename[0])
    torch.save(state, path)
    return hourglass.state_dict()


def test_paper_configuration_is_the_published_hourglass():
    from lensblur.systems.dbsi.model import CONFIGS

    model = build_config("paper")
    # section 3.1: the MegaDepth hourglass as released (5,357,153 parameters), its 64 → 1 last conv
    # replaced by a 3×3 conv with 1 + 3 outputs (section 3.2)
    assert model.backbone.width == 1.0 and model.backbone.feature_channels == 64
    assert tuple(model.backbone[0].weight.shape) == (128, 3, 7, 7)
    assert tuple(model.backbone.head.weight.shape) == (4, 64, 3, 3)
    assert count_parameters(model) == 5_357_153 - (64 * 9 + 1) + 4 * (64 * 9 + 1)
    assert CONFIGS["small"] == 0.125 and count_parameters(build_config("small")) < 100_000


def build_config(name):
    from lensblur.systems.dbsi.model import CONFIGS

    return DBSI(width=CONFIGS[name])


def test_init_from_megadepth_copies_every_layer_but_the_last(tmp_path):
    from lensblur.systems.dbsi.model import init_from_megadepth

    released = _released_megadepth(tmp_path / "best_generalization_net_G.pth")
    model = init_from_megadepth(build_config("paper"), tmp_path / "best_generalization_net_G.pth")
    own = model.backbone.state_dict()
    for key, value in released.items():
        if key.startswith("4.") or key.endswith("num_batches_tracked"):
            continue
        torch.testing.assert_close(own[key], value, msg=key)
    assert own["4.weight"].shape == (4, 64, 3, 3)
    # the depth-conditioned variant keeps the pretrained stem for RGB and starts its extra channels at 0
    depth = init_from_megadepth(DBSI(width=1.0, depth_input=True), tmp_path / "best_generalization_net_G.pth")
    stem = depth.backbone.state_dict()["0.weight"]
    torch.testing.assert_close(stem[:, :3], released["0.weight"])
    assert float(stem[:, 3:].abs().max()) == 0.0


@pytest.mark.parametrize("problem", ["small", "width", "renamed", "junk"])
def test_init_from_megadepth_mismatch_is_a_clear_error(tmp_path, problem):
    from lensblur.systems.dbsi.model import init_from_megadepth

    path = tmp_path / "weights.pth"
    if problem == "width":
        _released_megadepth(path, width=0.5)
    elif problem == "renamed":
        _released_megadepth(path, rename=("module.3.0.0.1.0.0.weight", "module.3.0.0.1.0.0.kernel"))
    elif problem == "junk":
        path.write_bytes(b"not a checkpoint")
    else:
        _released_megadepth(path)
    model = build_config("small" if problem == "small" else "paper")
    expected = {"small": "paper configuration", "width": "wrong shape: 0.weight", "renamed": "missing: 3.0.0.1.0.0.weight",
                "junk": "not a PyTorch checkpoint"}[problem]
    with pytest.raises(InputError, match=expected) as error:
        init_from_megadepth(model, path)
    assert len(str(error.value).splitlines()) == 1


def test_training_cli_paper_config_starts_from_megadepth(scenes, tmp_path, capsys):
    weights = tmp_path / "best_generalization_net_G.pth"
    released = _released_megadepth(weights)
    out = tmp_path / "paper.pt"
    assert main(["train", "-q", "dbsi", "--data", str(scenes), "--out", str(out), "--threads", "1",
                 "--config", "paper", "--init", f"megadepth:{weights}", "--size", "32x48", "--batch", "1",
                 "--steps", "1", "--lr", "1e-9", "1e-9"]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["config"]["model"]["width"] == 1.0 and saved["config"]["config"] == "paper"
    assert saved["config"]["init"] == "megadepth:best_generalization_net_G.pth"
    # one step at a negligible rate: the stem is still (almost) MegaDepth's
    torch.testing.assert_close(saved["model"]["backbone.0.weight"], released["0.weight"], atol=1e-6, rtol=0)
    # --init on the small network, or a bad spec, is a one-line error
    capsys.readouterr()
    assert main(["train", "-q", "dbsi", "--data", str(scenes), "--out", str(tmp_path / "s.pt"),
                 "--config", "small", "--init", f"megadepth:{weights}", "--size", "32x48", "--steps", "1"]) == 1
    assert "paper configuration" in capsys.readouterr().err


def test_paper_config_uses_the_papers_phase_sizes():
    import argparse as _argparse

    from lensblur.systems.dbsi.training import PAPER_SIZES, _phase_settings

    # section 4.3.2: phase 1 at 384×512, phases 2 and 3 at 768×1024
    assert PAPER_SIZES == {1: (384, 512), 2: (768, 1024), 3: (768, 1024)}
    for phase, size in PAPER_SIZES.items():
        args = _argparse.Namespace(phase=phase, config="paper", size=None, steps=None, batch=None, lr=None)
        assert tuple(_phase_settings(args)["size"]) == size


def test_shipped_image_only_network_is_the_papers_and_renders():
    model, train_size = load_dbsi("image")
    assert not model.depth_input and model.kernels == [25, 45, 75]
    rng = np.random.default_rng(4)
    image = cv2.GaussianBlur(rng.random((96, 128, 3), dtype=np.float32), (0, 0), 1.0)
    image[30:60, 40:80] = rng.random((30, 40, 3), dtype=np.float32)  # a textured patch
    out = render_with("dbsi-paper", image, np.zeros((96, 128), np.float32), Lens())
    assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # the paper's network ignores depth and lens: the same photo gives the same render
    again = render_with("dbsi-paper", image, np.ones((96, 128), np.float32), Lens(blur=30, focus_disparity=0.9))
    np.testing.assert_array_equal(out, again)
    # its output is a convex blend of Gaussian-blurred copies: smoother than the input, no new extremes
    assert np.abs(np.diff(out, axis=1)).mean() < np.abs(np.diff(image, axis=1)).mean()
    assert out.min() >= image.min() - 1e-3 and out.max() <= image.max() + 1e-3
    with pytest.raises(InputError, match="depth-conditioned"):
        render_with("dbsi-paper", image, np.zeros((96, 128), np.float32), Lens(), checkpoint="depth")


# ------------------------------------------- the disc-stack variant (default of --renderer dbsi)

def _prior_model(**options):
    from lensblur.systems.dbsi.model import DISC_KERNELS

    torch.manual_seed(0)
    return DBSI(kernels=DISC_KERNELS, width=TINY_WIDTH, depth_input=True, kernel_shape="disc", linear=True,
                prior=True, **options)


def test_analytic_prior_gives_the_bracketing_interpolation_at_step_zero():
    from lensblur.systems.dbsi.model import COC_UNIT, PRIOR_FLOOR

    model = _prior_model()
    levels = [0.0] + [(k - 1) / 2 for k in model.kernels]  # px at the kernel width
    # radii (px at 1024 width) on stack levels, between them, and beyond the last
    radii = [0.0, levels[1] / 2, levels[3], 0.25 * levels[4] + 0.75 * levels[5], levels[-1] + 20]
    expected = np.zeros((len(radii), len(levels)), np.float32)
    expected[0, 0] = 1
    expected[1, 0] = expected[1, 1] = 0.5
    expected[2, 3] = 1
    expected[3, 4], expected[3, 5] = 0.25, 0.75
    expected[4, -1] = 1
    width = 128
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.random((len(radii), 3, 32, width), dtype=np.float32))
    # a flat disparity whose signed CoC is the wanted radius (K in px of this 128-px image)
    offsets = torch.tensor(radii) * width / 1024 / 20.0
    conditioning = depth_channels(torch.full((len(radii), 1, 32, width), 0.5) + offsets.view(-1, 1, 1, 1),
                                  torch.full((len(radii),), 0.5), torch.full((len(radii),), 20.0), width)
    np.testing.assert_allclose(conditioning[:, 1, 0, 0].abs().numpy() * COC_UNIT, radii, rtol=1e-4, atol=1e-4)
    weights = model.weights(images, conditioning)[:, :, 5, 7].detach().numpy()
    np.testing.assert_allclose(weights, expected, atol=len(levels) * PRIOR_FLOOR)
    assert (weights.argmax(axis=1) == [0, 0, 3, 5, len(levels) - 1]).all()


def test_disc_stack_covers_the_engines_blur_radii(tmp_path):
    from lensblur.systems.dbsi.model import DISC_KERNELS, KERNEL_WIDTH

    folder = tmp_path / "mixed"
    generate(folder, 4, 17, 64, 96, workers=0, kind="mixed")
    largest = max(json.loads(p.read_text())["max_coc"] * KERNEL_WIDTH / 96 for p in folder.glob("*_meta.json"))
    radii = [(k - 1) / 2 for k in DISC_KERNELS]
    assert 0 < largest <= radii[-1]  # the widest disc reaches the largest blur of these scenes
    assert radii[0] * 384 / KERNEL_WIDTH <= 1.5  # the first step above sharp is a small blur
    # denser than the naive renderer's doubling radii: no wide gaps to interpolate over
    ratios = [b / a for a, b in zip(radii, radii[1:])]
    assert ratios[0] <= 2 and max(ratios[1:]) <= 1.5
    # the shipped default uses exactly this stack
    model, _ = load_dbsi()
    assert model.kernels == list(DISC_KERNELS) and model.kernel_shape == "disc" and model.linear and model.prior


def test_disc_blend_in_linear_light_is_the_thin_lens_blur_of_a_flat_scene():
    from lensblur.color import srgb_to_linear
    from lensblur.systems.dbsi.model import disc_blur_array

    model = _prior_model()
    rng = np.random.default_rng(2)
    srgb = cv2.GaussianBlur(rng.random((64, 96, 3), dtype=np.float32), (0, 0), 0.7)
    level = 4  # a flat scene whose |c| is exactly the 4th disc's radius
    radius = (model.kernels[level - 1] - 1) / 2 * 96 / 1024
    out = predict(model, srgb, np.full((64, 96), 0.6, np.float32), 0.5, radius / 0.1, (64, 96))
    truth = disc_blur_array(srgb_to_linear(srgb).astype(np.float32), radius)
    np.testing.assert_allclose(srgb_to_linear(out), truth, atol=0.02)
    # the torch blend (training) and the numpy blend (rendering) agree
    weights = torch.softmax(torch.randn(1, 1 + len(model.kernels), 64, 96), dim=1)
    image_t = torch.from_numpy(srgb.transpose(2, 0, 1))[None]
    torch_out = model.blend(image_t, weights)[0].permute(1, 2, 0).numpy()
    numpy_out = blend_array(srgb, weights[0].permute(1, 2, 0).numpy(), model.sigmas(96), "disc", True)
    np.testing.assert_allclose(torch_out, numpy_out, atol=2e-3)


def test_disc_checkpoint_round_trip_and_old_checkpoints_still_load(scenes, tmp_path):
    from lensblur.systems.dbsi.model import build

    out = tmp_path / "disc.pt"
    assert _train(scenes, out, "--steps", "2", "--depth-input", "--kernel-shape", "disc", "--linear", "--prior",
                  "--occlusion", "--kernels", "5,11,21") == 0
    stored = torch.load(out, weights_only=True)["config"]["model"]
    assert stored["kernel_shape"] == "disc" and stored["linear"] and stored["prior"] and stored["occlusion"]
    assert stored["kernels"] == [5, 11, 21]
    model, _ = load_dbsi(out)
    again = build(model.config())
    again.load_state_dict(model.state_dict())
    image = np.random.default_rng(3).random((40, 60, 3), dtype=np.float32)
    disparity = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (40, 1))
    np.testing.assert_array_equal(predict(model, image, disparity, 0.4, 6.0, (32, 48)),
                                  predict(again, image, disparity, 0.4, 6.0, (32, 48)))
    # a checkpoint written before these options is the paper-style Gaussian sRGB model
    old = build({"kernels": [25, 45, 75], "width": TINY_WIDTH, "depth_input": True, "kernel_width": 1024})
    assert old.kernel_shape == "gaussian" and not old.linear and not old.prior
    with pytest.raises(InputError, match="prior"):
        build({"kernels": [25, 45, 75], "width": TINY_WIDTH, "depth_input": False, "prior": True})
    with pytest.raises(InputError, match="prior"):
        build({"kernels": [5, 11], "width": TINY_WIDTH, "depth_input": True, "kernel_shape": "disc",
               "occlusion": True})


@pytest.mark.skipif(not (DATA.parent.parent.parent / "shared" / "samples" / "bokehme" / "13.jpg").exists(),
                    reason="shared samples absent")
def test_cli_and_api_render_a_real_photo_with_the_shipped_disc_model(tmp_path):
    import lensblur

    samples = DATA.parent.parent.parent / "shared" / "samples" / "bokehme"
    out = tmp_path / "out.png"
    photo = cv2.imread(str(samples / "13.jpg")).astype(np.float32)
    centre = (photo.shape[1] // 2, photo.shape[0] // 2)
    assert main(["render", str(samples / "13.jpg"), "--depth", str(samples / "13.png"), "--renderer", "dbsi",
                 "--blur", "12", "--focus", f"{centre[0]},{centre[1]}", "-o", str(out), "-q"]) == 0
    rendered = cv2.imread(str(out)).astype(np.float32)
    assert rendered.shape == photo.shape
    disparity = cv2.imread(str(samples / "13.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
    focus = float(disparity[centre[1], centre[0]])

    def detail(image, mask):
        return np.abs(cv2.Laplacian(image, cv2.CV_32F))[mask].mean()

    sharp = np.abs(disparity - focus) < 0.03
    far = np.abs(disparity - focus) > 0.4
    assert sharp.sum() > 1000 and far.sum() > 1000
    assert detail(rendered, far) < 0.5 * detail(photo, far)  # the background is blurred
    assert detail(rendered, sharp) > 0.6 * detail(photo, sharp)  # the focused subject is not
    assert abs(rendered.mean() - photo.mean()) < 3  # no grey haze or darkening overall
    api = lensblur.render(cv2.cvtColor(photo.astype(np.uint8), cv2.COLOR_BGR2RGB), disparity, blur=12,
                          focus=centre, renderer="dbsi")
    assert api.dtype == np.uint8  # the same render as the CLI's, up to the file's rounding
    assert np.abs(cv2.cvtColor(api, cv2.COLOR_RGB2BGR).astype(np.float32) - rendered).mean() < 1.0


def test_occlusion_prior_keeps_the_sharp_subject_out_of_the_blurred_background():
    from lensblur.color import srgb_to_linear
    from lensblur.systems.dbsi.model import OCCLUSION_SHARE, occlusion_cap

    # an in-focus bright square and a one-pixel in-focus wire in front of a dark background 12 px out of focus
    height, width = 96, 192
    disparity = np.full((height, width), 0.2, np.float32)
    disparity[32:64, 40:72] = 0.5
    disparity[:, 150] = 0.5
    srgb = np.full((height, width, 3), 0.1, np.float32)
    srgb[32:64, 40:72] = 1.0
    srgb[:, 150] = 1.0
    lens = (0.5, 40.0)  # focus disparity, K: |c| = 12 px in the background
    plain, occluding = _prior_model(), _prior_model(occlusion=True)
    outs = [predict(m, srgb, disparity, *lens, (96, 192)) for m in (plain, occluding)]
    halo = (slice(36, 60), slice(74, 80))  # background just right of the square
    glow = [srgb_to_linear(out[halo]).mean() for out in outs]
    assert glow[1] < 0.5 * glow[0]  # the halo is (mostly) gone
    np.testing.assert_allclose(outs[1][32:64, 44:68], 1.0, atol=0.01)  # the subject stays sharp
    # far from both, the background gets its full blur either way; a thin wire limits only the
    # smallest discs right next to it (it covers little of a larger one)
    np.testing.assert_allclose(outs[0][:, 100:130], outs[1][:, 100:130], atol=1e-5)
    np.testing.assert_allclose(outs[0][:, 155:170], outs[1][:, 155:170], atol=1e-5)
    # the cap itself: only behind the focus, only where sharper pixels cover more than the share
    signed = torch.from_numpy((disparity - lens[0]) * lens[1] * 1024 / width)[None, None]
    cap = occlusion_cap(signed, [0.0] + [(k - 1) / 2 for k in occluding.kernels], width / 1024)[0, 0].numpy()
    assert np.isinf(cap[32:64, 40:72]).all() and np.isinf(cap[:, 100:130]).all() and np.isinf(cap[:, 155:]).all()
    assert np.isfinite(cap[halo]).all() and (cap[halo] < np.abs(signed[0, 0].numpy()[halo])).all()
    assert 0 < OCCLUSION_SHARE < 0.5


def test_blurred_foreground_spreads_over_the_sharp_background_behind_its_edge():
    from lensblur.systems.dbsi.model import foreground_floor, occlusion_cap

    width = 192
    levels = [0.0] + [(k - 1) / 2 for k in _prior_model().kernels]
    signed = torch.zeros(1, 1, 96, width)  # an in-focus background...
    signed[..., 20:76, 20:80] = 40.0  # ...behind a near square blurred by 40 px at 1024 width (7.5 px here)
    floor = foreground_floor(signed, levels, width / 1024)[0, 0].numpy()
    assert (floor[40:56, 81:84] > 0).all()  # right outside the edge: gathers over the blurred square
    assert (floor[:, 100:] == 0).all() and (floor[85:, :] == 0).all()  # beyond its reach: stays sharp
    assert floor.max() <= 40.0  # never more blur than the foreground's own
    assert np.isinf(occlusion_cap(signed, levels, width / 1024).numpy()).all()  # nothing behind the focus

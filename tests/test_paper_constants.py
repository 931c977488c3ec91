"""The papers' hyper-parameters, pinned: each test fails when a published setting changes.

Every test names the paper and the section or equation the value comes from (papers in
../shared/papers). Where the paper gives no value and the project chose one, the test says so:
it then pins the project's documented choice. Behaviour is checked where it is cheap (the
optimizer a training run builds, the loss a phase uses, a loss's value on known errors), so that
changing a value where it is used, not only the named constant, fails too.
"""

from __future__ import annotations

import argparse
import inspect
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensblur.cli import main  # noqa: E402
from lensblur.synth.dataset import generate  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper-scenes")
    generate(folder, 2, 9, 32, 48, workers=0)
    return folder


# ------------------------------------------------------------------------------------ DBSI (Dutta et al.)

def test_dbsi_kernel_set_is_25_45_75():
    """Section 3.2 and Table 3: n = 3 Gaussian kernels of 25×25, 45×45 and 75×75."""
    from lensblur.systems.dbsi.model import DBSI, PAPER_KERNELS
    from lensblur.systems.dbsi.training import _model_config

    assert PAPER_KERNELS == (25, 45, 75)
    assert DBSI(width=0.0625).kernels == [25, 45, 75]
    args = argparse.Namespace(kernels=None, width=None, depth_input=False, kernel_width=None, config=None)
    assert _model_config(args, None)["kernels"] == [25, 45, 75]


def test_dbsi_phases_losses_sizes_and_learning_rates():
    """Section 4.3.2: phase 1 at a small size with L1 (Eq. 3), phase 2 at twice that size with L1,
    phase 3 fine-tuned with −SSIM (Eq. 4) at the phase-2 size; section 4.3.3: the learning rate
    starts at 1e-3 and is decreased to 1e-5. (The CPU sizes 96×128 / 192×256 keep the paper's 1:2
    ratio; --config paper uses 384×512 / 768×1024, tested in test_dbsi.py.)"""
    from lensblur.systems.dbsi.training import PHASES

    assert [PHASES[p][5] for p in (1, 2, 3)] == ["l1", "l1", "ssim"]
    (h1, w1), (h2, w2), (h3, w3) = (PHASES[p][0] for p in (1, 2, 3))
    assert (h2, w2) == (2 * h1, 2 * w1) and (h3, w3) == (h2, w2) and w1 * 3 == h1 * 4
    assert PHASES[1][3] == 1e-3 and PHASES[3][4] == 1e-5
    assert PHASES[1][4] == PHASES[2][3] and PHASES[2][4] == PHASES[3][3]  # one continuous decay


def _dbsi_run(scenes, out, *extra):
    return main(["train", "-q", "dbsi", "--data", str(scenes), "--out", str(out), "--threads", "1",
                 "--size", "32x48", "--batch", "1", "--width", "0.0625", "--steps", "1", *extra])


def test_dbsi_adam_betas_and_phase_three_loss(scenes, tmp_path):
    """Section 4.3.3: Adam with β1 = 0.9, β2 = 0.999. Section 4.3.2: phase 3 minimises −SSIM
    (Eq. 4), phases 1–2 L1 (Eq. 3): the loss a run records is recomputed here from its batch."""
    from lensblur.systems.dbsi.model import build
    from lensblur.systems.dbsi.training import make_batch
    from lensblur.training.data import load_pairs
    from lensblur.training.losses import negative_ssim_loss

    out = tmp_path / "dbsi.pt"
    rates = ["--lr", "1e-12", "1e-12"]  # the weights stay (numerically) those that computed the loss
    assert _dbsi_run(scenes, out, *rates) == 0
    saved = torch.load(out, weights_only=True)
    assert tuple(saved["optimizer"]["param_groups"][0]["betas"]) == (0.9, 0.999)
    assert _dbsi_run(scenes, out, "--phase", "2", "--resume", *rates) == 0
    assert _dbsi_run(scenes, out, "--phase", "3", "--resume", *rates) == 0
    saved = torch.load(out, weights_only=True)
    model = build(saved["config"]["model"])
    model.load_state_dict(saved["model"])
    model.train()  # the recorded loss was computed in training mode (batch statistics)
    pairs = load_pairs(str(scenes), size=(32, 48))
    losses = {}
    for phase in (2, 3):
        rng = np.random.default_rng([0, phase, 0])
        images, targets, _ = make_batch(pairs, rng.choice(len(pairs), size=1, replace=False), rng, False, 1024)
        with torch.no_grad():
            output = model(images)
        losses[phase] = (float(torch.nn.functional.l1_loss(output, targets)), float(negative_ssim_loss(output, targets)))
    recorded = {entry["phase"]: entry["loss"] for entry in saved["history"]}
    assert recorded[2] == pytest.approx(losses[2][0], abs=1e-4) and recorded[2] != pytest.approx(losses[2][1], abs=1e-3)
    assert recorded[3] == pytest.approx(losses[3][1], abs=1e-4) and recorded[3] != pytest.approx(losses[3][0], abs=1e-3)


# -------------------------------------------------------------------------------- DeepLens (Wang et al.)

def test_deeplens_normalised_loss_alpha_is_one_and_a_half():
    """Section 3.2.4, Eq. 5: J_f = Σ|X − Y|^(α+1) / Σ|X − Y|^α, "α is empirically set to 1.5"."""
    from lensblur.systems.deeplens.model import normalised_loss

    error = torch.tensor([0.1, 0.4, 0.8])
    expected = float((error ** 2.5).sum() / (error ** 1.5).sum())
    assert float(normalised_loss(error, torch.zeros(3))) == pytest.approx(expected, rel=1e-6)
    # the training loop uses the default α for both the low- and high-resolution terms (Eq. 6)
    from lensblur.systems.deeplens import training

    source = inspect.getsource(training.train_render)
    assert "normalised_loss(low, target_low)" in source and "normalised_loss(high, targets)" in source


def test_deeplens_feature_channels_are_32():
    """Section 5.3 (Fig. 12): quality saturates at 32 feature channels, "we adopt 32 channels"."""
    from lensblur.systems.deeplens.model import DEFAULT_CONFIG, DeepLensRenderer

    assert DEFAULT_CONFIG["features"] == 32
    model = DeepLensRenderer(dict(DEFAULT_CONFIG))
    features = model.features(torch.rand(1, 3, 16, 16))
    assert features.shape[:3] == (1, 3, 32)


def test_deeplens_pyramid_pooling_bins_are_1_2_4_8():
    """Section 3.1: a pyramid pooling module (Zhao et al. 2017) with bins 1, 2, 4 and 8 after the
    encoder; checked on the layer the depth module builds and on what it pools to."""
    from lensblur.systems.deeplens.depth import DepthPredictor

    pyramid = DepthPredictor("small").pyramid
    assert tuple(pyramid.bins) == (1, 2, 4, 8) and len(pyramid.branches) == 4
    seen = []
    hooks = [branch.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
             for branch in pyramid.branches]
    pyramid(torch.rand(1, pyramid.branches[0][0].in_channels, 16, 16))
    for hook in hooks:
        hook.remove()
    assert seen == [(1, 1), (2, 2), (4, 4), (8, 8)]


def test_deeplens_training_defaults_beta_and_corruption():
    """Eq. 6: J_f(L) + β·J_f(H), β = 1 (the paper leaves β open; equal weights are the project's
    reading). Section 4.2: the foreground depth is "randomly corrupted through dilation or erosion";
    the radius (up to 3 px) is the project's choice, the paper gives none."""
    from lensblur.systems.deeplens import training

    parser = argparse.ArgumentParser()
    training.add_arguments(parser)
    defaults = parser.parse_args([])
    assert defaults.beta == 1.0 and defaults.corrupt == 3 and defaults.l1 == 0.0
    # radius 3 really dilates or erodes by up to 3 px
    rng = np.random.default_rng(0)
    disparity = np.zeros((21, 21), np.float32)
    disparity[10, 10] = 1.0
    grown = [int((training.corrupt_disparity(rng, disparity, defaults.corrupt) > 0).sum()) for _ in range(40)]
    import cv2

    assert max(grown) == int(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)).sum())  # a radius-3 disc


# ------------------------------------------------------------------------------------ Xu et al. 2018

def test_xu_layers_k_and_lambda():
    """Section 4.1: "we set K = 6 and λ = 10" for the graph cut of Eq. 7."""
    from lensblur.systems.xu_portrait import depth_layers, renderer

    assert depth_layers.LAYERS == 6 and depth_layers.SMOOTHNESS == 10.0
    for function in (depth_layers.split_depth_layers, renderer.blur_layers):
        parameters = inspect.signature(function).parameters
        assert parameters["layers"].default == 6 and parameters["smoothness"].default == 10.0
    # K = 6 layers come out of a map with more than six depths
    ramp = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (20, 1))
    assert depth_layers.split_depth_layers(ramp).count == 6


def test_xu_equation_8_as_printed_is_the_default():
    """Eq. 8: u(l|z) = ‖z − C_l‖ / σ_l² (shifted so each pixel's best layer costs 0)."""
    from lensblur.systems.xu_portrait import depth_layers, renderer

    assert depth_layers.ENERGY == "paper"
    assert inspect.signature(renderer.render_portrait).parameters["energy"].default == "paper"
    z = np.array([[0.1, 0.5]], np.float32)
    centres, sigmas = np.array([0.1, 0.6], np.float32), np.array([0.05, 0.1], np.float32)
    cost = depth_layers.paper_unaries(z, centres, sigmas)
    raw = np.abs(z[None] - centres[:, None, None]) / sigmas[:, None, None] ** 2
    np.testing.assert_allclose(cost, raw - raw.min(axis=0), rtol=1e-5)
    assert cost[1, 0, 1] == pytest.approx(0.0) and cost[0, 0, 1] == pytest.approx(0.4 / 0.0025 - 0.1 / 0.01, rel=1e-5)


@pytest.mark.parametrize("axis", [0, 1])
def test_xu_equation_9_sobel_weights_in_both_directions(axis):
    """Eq. 9: e = 1(l_i ≠ l_j)·exp(−‖f_S(z)_i→j‖), f_S the Sobel response across the edge, for
    horizontal and vertical neighbours alike. A step of height h gives a 3×3 Sobel response 4h."""
    from lensblur.systems.xu_portrait.depth_layers import sobel_edge_weights

    z = np.zeros((12, 12), np.float32)
    z[6:, :] = 0.3
    if axis == 1:
        z = np.ascontiguousarray(z.T)
    right, down = sobel_edge_weights(z)
    across, along = (down, right) if axis == 0 else (right, down)
    step = across[5, 3] if axis == 0 else across[3, 5]
    assert step == pytest.approx(math.exp(-4 * 0.3), rel=1e-5)
    flat = across[2, 3] if axis == 0 else across[3, 2]
    assert flat == pytest.approx(1.0) and along[3, 3] == pytest.approx(1.0)


def test_xu_trimap_band_and_feathering():
    """Section 4.1: KNN matting on a trimap whose unknown band is ±10 px around the segmentation
    boundary. Eq. 10 feathers the layers with a Gaussian g whose σ the paper does not give: the
    project's σ is 0.2 % of the image diagonal (at least 1 px)."""
    from lensblur.systems.xu_portrait import knn_matting, renderer

    assert renderer.MATTING_BAND == 10
    assert inspect.signature(renderer.knn_alpha).parameters["band"].default == 10
    assert renderer.FEATHER_FRACTION == 0.002
    # the band is really ±10 px: alpha is exactly 0 or 1 farther than that from the boundary
    rng = np.random.default_rng(1)
    image = rng.random((64, 64, 3)).astype(np.float32)
    segmentation = np.zeros((64, 64), bool)
    segmentation[:, 32:] = True
    alpha = renderer.knn_alpha(image, segmentation)
    assert set(np.unique(alpha[:, :32 - 10 - 1])) <= {0.0} and set(np.unique(alpha[:, 32 + 10 + 1:])) <= {1.0}
    assert ((alpha[:, 22:43] > 0) & (alpha[:, 22:43] < 1)).any()
    assert knn_matting is not None


def test_xu_spn_loss_weights():
    """Eqs. 1–3 summed for the SPN: cross-entropy (Eq. 1) + 0.1 × ranking loss (Eq. 2) + 10 × body
    consistency (Eq. 3) + 5 × L1 on the disparity (not in the paper). The paper gives no weights:
    these pin the project's documented choice (docs/portrait-rnn.md)."""
    from lensblur.systems.xu_portrait import spn
    from lensblur.systems.xu_portrait.training import spn_loss

    parts = {"segmentation_loss": 0.0, "ranking_loss": 0.0, "body_consistency_loss": 0.0}
    originals = {name: getattr(spn, name) for name in parts}
    disparity = torch.linspace(0, 1, 64).view(1, 1, 8, 8)
    segmentation = (disparity > 0.5).float()
    batch = (torch.zeros(1, 3, 8, 8), segmentation, disparity, segmentation, disparity)

    def model(encoded, seg0, disp0, offset=0.0):
        return torch.zeros(1, 1, 8, 8), disp0 + offset

    try:
        for name, value in (("segmentation_loss", 1.0), ("ranking_loss", 1.0), ("body_consistency_loss", 1.0)):
            for other in parts:
                setattr(spn, other, (lambda v: (lambda *a, **k: torch.tensor(v)))(1.0 if other == name else 0.0))
            parts[name] = float(spn_loss(model, batch, torch.Generator().manual_seed(0)))
        for other in parts:
            setattr(spn, other, lambda *a, **k: torch.tensor(0.0))
        l1 = float(spn_loss(lambda e, s, d: model(e, s, d, 0.1), batch, torch.Generator().manual_seed(0)))
    finally:
        for name, function in originals.items():
            setattr(spn, name, function)
    assert parts == pytest.approx({"segmentation_loss": 1.0, "ranking_loss": 0.1, "body_consistency_loss": 10.0})
    assert l1 == pytest.approx(5 * 0.1, rel=1e-5)


# ---------------------------------------------------------------------------------- BGGAN (Qian et al.)

def test_bggan_critic_depths_and_gradient_penalty():
    """Section 2.2: the critic combines PatchGANs of different receptive fields (70×70 among
    them), trained as WGAN-GP; the penalty weight 10 is Gulrajani et al.'s (the paper gives none).
    Section 2.1: three stride-2 convolutions per stage and nine residual blocks."""
    from lensblur.systems.bggan import losses, model

    assert model.PATCH_DEPTHS == (2, 3, 4) and model.receptive_field(3) == 70
    assert [model.receptive_field(d) for d in model.PATCH_DEPTHS] == [34, 70, 142]
    assert model.DOWNSAMPLINGS == 3 and model.RESIDUAL_BLOCKS == 9
    assert losses.GRADIENT_PENALTY == 10.0
    critic = model.MultiReceptiveFieldCritic()
    assert len(critic.critics) == 3


# -------------------------------------------------------------------------------------- D2F (Luo et al.)

def test_d2f_renderer_constants_from_the_authors_code():
    """D2F's released code (papers/d2f-method-notes.md): layer window m = ½ + ½·tanh(100·(Δ − |D − ℓ|))
    (§3.3), highlight weight 3·I^5 where a channel reaches 0.99 (§4.2), mask threshold τ = 1/8
    (§5.1), normalisation ε = 1e-10 (§3.4). Only the abstract of the paper is available."""
    from lensblur.systems.d2f import model

    assert model.WINDOW_SHARPNESS == 100.0 and model.SATURATION == 0.99 and model.THRESHOLD_TAU == 0.125
    assert model.HIGHLIGHT_GAIN == 3.0 and model.HIGHLIGHT_EXPONENT == 5.0 and model.EPSILON == 1e-10
    image = torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    learned = torch.full((1, 1, 1, 1), 0.3)
    np.testing.assert_allclose(model.radiance_weights(image, learned).flatten().numpy(),
                               [3.0, 3 * 0.5 ** 5, 3 * 0.2 ** 5], rtol=1e-6)
    dim = torch.tensor([0.98, 0.5, 0.2]).view(1, 3, 1, 1)
    np.testing.assert_allclose(model.radiance_weights(dim, learned).flatten().numpy(), [0.3] * 3)
    defocus = torch.tensor([0.2, 1.0]).view(1, 1, 1, 2)
    assert float(model.adaptive_threshold(defocus)) == pytest.approx(0.2 + 0.125 * 0.8)
    assert float(model.adaptive_threshold(defocus * 0.5)) == pytest.approx(0.125)
    level = torch.full((1, 1, 1, 1), model.layer_levels()[3])
    window = model.layer_masks(level)[3]
    assert float(window) == pytest.approx(0.5 + 0.5 * math.tanh(100 / 14), rel=1e-6)

"""MegaDepth hourglass: checkpoint layout, loading, shapes, and the "megadepth" estimator."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensblur.color import srgb_to_linear  # noqa: E402
from lensblur.depth import get_estimator  # noqa: E402
from lensblur.depth.megadepth import estimate_megadepth, network_size  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.models.megadepth import (  # noqa: E402
    FEATURE_CHANNELS, MegaDepthHourglass, count_parameters, load_megadepth, load_state)

# Learnable parameters of the released hourglass as rebuilt from the authors' pytorch_DIW_scratch.py
# (inner batch norms have no affine weight/bias); computed from this architecture.
OFFICIAL_PARAMETERS = 5_357_153

# Keys and shapes read off the official nested Sequential (without the DataParallel "module.").
OFFICIAL_KEYS = {
    "0.weight": (128, 3, 7, 7),
    "1.weight": (128,),
    "1.running_var": (128,),
    "3.0.0.1.0.0.weight": (32, 128, 1, 1),            # Channels4, pooled path, 1st inception, 1×1
    "3.0.0.1.3.3.weight": (32, 32, 7, 7),             # ... its 7×7 branch
    "3.0.1.0.3.3.weight": (16, 64, 11, 11),           # Channels4 skip path, 11×11 branch
    "3.0.0.3.0.1.1.3.3.weight": (32, 64, 11, 11),     # Channels3 skip path, 2nd inception, 11×11
    "3.0.0.3.0.0.3.0.0.1.3.3.weight": (64, 64, 11, 11),         # Channels2 skip, 11×11
    "3.0.0.3.0.0.3.0.1.3.0.1.1.3.3.weight": (64, 32, 7, 7),     # Channels1 pooled, 2nd inception
    "3.0.0.3.0.0.3.0.1.3.0.1.1.3.4.running_mean": (64,),
    "4.weight": (1, FEATURE_CHANNELS, 3, 3),
    "4.bias": (1,),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(0)
    model = MegaDepthHourglass()
    with torch.no_grad():  # non-trivial running statistics so that eval mode is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def official_state(model, prefix="module."):
    """The model's weights as the released file stores them: prefixed, without BN counters."""
    return {prefix + k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def test_parameter_count_and_official_keys():
    model = MegaDepthHourglass()
    assert count_parameters(model) == OFFICIAL_PARAMETERS
    state = model.state_dict()
    for key, shape in OFFICIAL_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    # inner batch norms carry only running statistics, like the Torch7-converted original
    assert "3.0.0.1.0.1.weight" not in state and "3.0.0.1.0.1.running_mean" in state


@pytest.mark.parametrize("prefix, legacy", [("module.", True), ("module.", False), ("", False),
                                            ("netG.module.", False), ("model.", False)])
def test_official_layout_round_trip(tmp_path, random_model, prefix, legacy):
    path = tmp_path / "best_generalization_net_G.pth"
    # legacy: the pre-1.6 (non-zip) serialisation the 2018 release was written with
    torch.save(official_state(random_model, prefix), path, _use_new_zipfile_serialization=not legacy)
    loaded = load_megadepth(path)
    assert not loaded.training
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x), random_model(x))


def test_training_checkpoint_wrapper(tmp_path, random_model):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": official_state(random_model), "epoch": 3}, path)
    load_megadepth(path)


def test_renamed_key_is_named(random_model):
    state = official_state(random_model)
    state["module.3.0.0.1.0.0.weights"] = state.pop("module.3.0.0.1.0.0.weight")
    with pytest.raises(InputError, match=r"missing: 3\.0\.0\.1\.0\.0\.weight.*unexpected: 3\.0\.0\.1\.0\.0\.weights"):
        load_state(MegaDepthHourglass(), state)


def test_missing_key_is_named(random_model):
    state = official_state(random_model)
    del state["module.4.bias"]
    with pytest.raises(InputError, match=r"missing: 4\.bias"):
        load_state(MegaDepthHourglass(), state)


def test_wrong_shape_is_named(tmp_path, random_model):
    state = official_state(random_model)
    state["module.4.weight"] = torch.zeros(1, 32, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"wrong shape: 4\.weight \(1, 32, 3, 3\) \(expected \(1, 64, 3, 3\)\)") as info:
        load_megadepth(path)
    assert "\n" not in str(info.value)


def test_missing_and_junk_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_megadepth(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint\n" * 10)
    with pytest.raises(InputError, match="not a PyTorch checkpoint") as info:
        load_megadepth(junk)
    assert "\n" not in str(info.value)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(InputError, match="not a MegaDepth checkpoint"):
        load_megadepth(tensor)
    pickled = tmp_path / "whole_module.pth"
    torch.save(MegaDepthHourglass(), pickled)  # a pickled module, refused by weights_only loading
    with pytest.raises(InputError, match="pickled objects") as info:
        load_megadepth(pickled)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        estimate_megadepth(np.zeros((32, 48, 3), np.float32), model_path=tmp_path / "absent.pth")


@pytest.mark.parametrize("size", [(16, 16), (32, 48), (64, 32)])
def test_output_shape_and_features(random_model, size):
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        features = random_model.forward_features(x)
        out = random_model(x)
    assert features.shape == (1, FEATURE_CHANNELS, *size)
    assert out.shape == (1, 1, *size)
    assert torch.equal(random_model.head(features), out)  # DBSI re-heads exactly these features


def test_deterministic_eval(random_model):
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        first, second = random_model(x), random_model(x)
    assert torch.equal(first, second)
    # eval mode uses the running statistics: a batch of one gives the same as within a batch
    with torch.no_grad():
        batched = random_model(torch.cat([x, torch.rand(1, 3, 32, 48)]))[:1]
    torch.testing.assert_close(batched, first, rtol=1e-4, atol=1e-5)


def test_size_not_multiple_of_16(random_model):
    with pytest.raises(InputError, match="multiples of 16"):
        random_model(torch.rand(1, 3, 40, 48))


def brightness_model(gain: float) -> MegaDepthHourglass:
    """Weights that make log-depth = −gain·(mean sRGB) exactly (up to BN's eps): brighter = nearer.

    Stem channel 0 = mean of R, G, B (centre tap); every BN is the identity; the full-resolution
    skip inception of Channels4 passes channel 0 through its 1×1 branch; all other paths are zero;
    the final conv's centre tap multiplies it by −gain.
    """
    model = MegaDepthHourglass()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model[0].weight[0, :, 3, 3] = 1.0 / 3.0
        model[1].weight.fill_(1.0)
        model[3][0][1][0][0][0].weight[0, 0, 0, 0] = 1.0   # Channels4 skip, inception 1×1 branch
        model.head.weight[0, 0, 1, 1] = -gain
        model.head.bias.fill_(0.7)
    return model.eval()


def test_known_function_through_network():
    model = brightness_model(2.0)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        out = model(x)[0, 0]
    torch.testing.assert_close(out, 0.7 - 2.0 * x[0].mean(0), rtol=0, atol=1e-4)


def test_estimator_orientation_and_range(tmp_path):
    gain = 2.0
    path = tmp_path / "brightness.pth"
    torch.save(official_state(brightness_model(gain)), path)
    height, width = 48, 72
    srgb_ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    image = np.repeat(srgb_to_linear(srgb_ramp)[..., None], 3, axis=2)
    estimate = get_estimator("megadepth")(image, model_path=str(path), input_size=(32, 48))
    disparity = estimate.disparity
    assert disparity.shape == (height, width) and disparity.dtype == np.float32
    assert disparity.min() >= 0.0 and disparity.max() <= 1.0
    # brighter = nearer by construction: disparity grows left to right, nearest at the right edge
    row = disparity[height // 2]
    assert np.all(np.diff(row) >= -1e-6) and row[-1] > 0.97 and row[0] < 0.03
    # and it follows D = (e^{g s} − e^{g s0}) / (e^{g s1} − e^{g s0}) of the sRGB value s (the
    # estimator must sRGB-encode: on linear values it would be off by up to 0.2)
    expected = (np.exp(gain * srgb_ramp) - 1.0) / (np.exp(gain) - 1.0)
    np.testing.assert_allclose(disparity, expected, atol=0.03)
    assert estimate.notes and "MegaDepth" in estimate.notes[0]


def test_estimator_portrait_size_and_errors(tmp_path):
    from lensblur.depth import megadepth as estimator
    from lensblur.models import megadepth as network

    assert estimator.SIZE_MULTIPLE == network.SIZE_MULTIPLE
    assert network_size(3000, 4000) == (384, 512)
    assert network_size(4000, 3000) == (512, 384)
    with pytest.raises(InputError, match="multiples of 16"):
        network_size(100, 100, (100, 128))
    with pytest.raises(InputError, match="weights file"):
        estimate_megadepth(np.zeros((8, 8, 3), np.float32))


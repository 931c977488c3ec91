"""portrait-rnn: the recursive filter, the SPN and its losses, training steps, the shipped
checkpoint, the renderer through the API and the CLI, and the person-like synthetic scenes."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensblur import api  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.lens import Lens  # noqa: E402
from lensblur.systems.xu_portrait.rnn_model import PortraitRNN, encode_srgb, filter_inputs  # noqa: E402
from lensblur.systems.xu_portrait.recursive_filter import DIRECTIONS, RecursiveFilterNet, linear_recursion  # noqa: E402
from lensblur.systems.xu_portrait.spn import (SpatialPropagationNet, body_consistency_loss, ranking_loss,  # noqa: E402
                                 segmentation_loss, three_way_propagation)
from lensblur.renderers import render_with  # noqa: E402
from lensblur.synth.people import make_portrait_scene, person_silhouette  # noqa: E402
from lensblur.synth.thinlens import camera_image, visible_disparity  # noqa: E402
from lensblur.systems.xu_portrait import training as trainer  # noqa: E402
from lensblur.training.checkpoint import SYSTEMS_DIR, save_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "portrait_rnn_reference.npz"
SHIPPED = SYSTEMS_DIR / "xu_portrait" / "weights" / "portrait_rnn.pt"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loop_recursion(x, w, direction):
    """h[i] = (1 − w)x + w h[i−1] written out step by step with plain torch ops."""
    horizontal = direction in ("left_right", "right_left")
    reverse = direction in ("right_left", "bottom_top")
    xs, ws = (x, w) if horizontal else (x.transpose(2, 3), w.transpose(2, 3))
    if reverse:
        xs, ws = xs.flip(3), ws.flip(3)
    hs = [xs[..., 0]]
    for i in range(1, xs.shape[3]):
        hs.append((1 - ws[..., i]) * xs[..., i] + ws[..., i] * hs[-1])
    h = torch.stack(hs, 3)
    if reverse:
        h = h.flip(3)
    return h if horizontal else h.transpose(2, 3)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_linear_recursion_matches_the_recurrence_and_its_gradient(direction):
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 5, 7, generator=generator, requires_grad=True)
    w = (0.95 * torch.rand(2, 3, 5, 7, generator=generator)).requires_grad_()
    fast, slow = linear_recursion(x, w, direction), _loop_recursion(x, w, direction)
    assert torch.allclose(fast, slow, atol=1e-5)
    probe = torch.randn(fast.shape, generator=generator)
    grads_fast = torch.autograd.grad((fast * probe).sum(), [x, w])
    grads_slow = torch.autograd.grad((slow * probe).sum(), [x, w])
    for a, b in zip(grads_fast, grads_slow):
        assert torch.allclose(a, b, atol=1e-4)


def test_recursion_with_zero_weight_is_identity_and_high_weight_smooths():
    x = torch.zeros(1, 1, 1, 21)
    x[..., 10] = 1.0
    assert torch.equal(linear_recursion(x, torch.zeros_like(x), "left_right"), x)
    smooth = linear_recursion(linear_recursion(x, torch.full_like(x, 0.8), "left_right"),
                              torch.full_like(x, 0.8), "right_left")
    assert float(smooth.max()) < 0.5 and float(smooth[..., 5]) > 0 and float(smooth[..., 15]) > 0


def test_three_way_propagation_gradient_matches_numerical():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(1, 1, 4, 5, generator=generator, dtype=torch.float64)
    affinity = torch.randn(1, 3, 4, 5, generator=generator, dtype=torch.float64)
    # the kernels run in float32: compare against central differences with a loose tolerance
    for direction in DIRECTIONS:
        a = affinity.clone().requires_grad_()
        out = three_way_propagation(x.float(), a.float(), direction)
        probe = torch.randn(out.shape, generator=generator)
        (grad,) = torch.autograd.grad((out * probe).sum(), [a])
        index = (0, 1, 2, 3)
        step = 1e-3
        plus, minus = affinity.clone(), affinity.clone()
        plus[index] += step
        minus[index] -= step
        numeric = ((three_way_propagation(x.float(), plus.float(), direction) * probe).sum()
                   - (three_way_propagation(x.float(), minus.float(), direction) * probe).sum()) / (2 * step)
        assert abs(float(grad[index]) - float(numeric)) < 1e-2 * max(1.0, abs(float(numeric)))


def _filter_inputs(height=24, width=32, seed=0):
    rng = np.random.default_rng(seed)
    image = (rng.uniform(0, 1, (height, width, 3)) ** 2).astype(np.float32)
    disparity = np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))
    segmentation = (disparity > 0.7).astype(np.float32)
    return filter_inputs(image, disparity, segmentation, 0.85, 12.0, linear=image)


def test_filter_output_shape_and_determinism():
    torch.manual_seed(0)
    model = RecursiveFilterNet(width=8).eval()
    inputs = _filter_inputs(23, 37)  # odd sizes exercise the padding of the guidance CNN
    with torch.no_grad():
        first, second = model(*inputs), model(*inputs)
    assert first.shape == (1, 3, 23, 37)
    assert torch.equal(first, second)
    assert torch.isfinite(first).all()


def test_untrained_filter_keeps_the_subject_and_blurs_the_background():
    torch.manual_seed(0)
    model = RecursiveFilterNet(width=8).eval()
    inputs = _filter_inputs()
    with torch.no_grad():
        out = model(*inputs)
    image, segmentation = inputs[0], inputs[3]
    subject = segmentation.expand_as(image) > 0.5
    assert float((out[subject] - image[subject]).abs().mean()) < 0.02
    background = ~subject
    assert float(out[background].std()) < 0.7 * float(image[background].std())


def test_a_gradient_step_reduces_the_filter_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    model = RecursiveFilterNet(width=8)
    inputs = _filter_inputs()
    target = encode_srgb(torch.nn.functional.avg_pool2d(inputs[0], 5, stride=1, padding=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    with torch.no_grad():
        before = float(trainer.filter_loss(model, inputs, target))
    for _ in range(5):
        loss = trainer.filter_loss(model, inputs, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert float(trainer.filter_loss(model, inputs, target)) < before


def test_a_gradient_step_reduces_the_spn_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    scene, matte = make_portrait_scene(np.random.default_rng(3), 32, 48)
    example = {"image": camera_image(scene), "matte": matte, "disparity": visible_disparity(scene)}
    batch = trainer.spn_batch(rng, [example], 2, 32)
    model = SpatialPropagationNet(width=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

    def loss():
        return trainer.spn_loss(model, batch, torch.Generator().manual_seed(0), pairs=64)

    with torch.no_grad():
        before = float(loss())
    for _ in range(5):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    with torch.no_grad():
        assert float(loss()) < before


def test_ranking_loss_orders_pairs():
    far, near = torch.tensor([5.0, 8.0]), torch.tensor([0.0, 1.0])
    gamma = torch.tensor([1.0, 1.0])  # i (first) is farther
    assert float(ranking_loss(far, near, gamma)) < 0.01     # right order, wide margin: ~0
    assert float(ranking_loss(near, far, gamma)) > 4.0      # reversed: grows with the gap
    assert float(ranking_loss(near, far, -gamma)) < 0.01    # γ = −1 flips the meaning
    assert abs(float(ranking_loss(near, near, gamma)) - np.log(2)) < 1e-6  # a tie costs log 2


def test_body_consistency_hinge_allows_small_differences_only():
    a = torch.tensor([0.50, 0.50])
    assert float(body_consistency_loss(a, torch.tensor([0.51, 0.49]), margin=1e-3)) == 0.0
    assert float(body_consistency_loss(a, torch.tensor([0.70, 0.50]), margin=1e-3)) == pytest.approx(
        (0.2 ** 2 - 1e-3) / 2, rel=1e-4)


def test_segmentation_loss_prefers_the_right_mask():
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    right, wrong = 6 * (2 * target - 1), -6 * (2 * target - 1)
    assert float(segmentation_loss(right, target)) < 0.01 < 5 < float(segmentation_loss(wrong, target))


def test_spn_output_shapes():
    model = SpatialPropagationNet(width=4).eval()
    encoded = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        logits, disparity = model(encoded, torch.rand(1, 1, 20, 30), torch.rand(1, 1, 20, 30))
    assert logits.shape == disparity.shape == (1, 1, 20, 30)
    assert torch.isfinite(logits).all() and torch.isfinite(disparity).all()


def test_degraded_maps_stay_in_range_and_differ():
    rng = np.random.default_rng(0)
    mask = person_silhouette(rng, 64, 96)
    coarse = trainer.degrade_segmentation(rng, mask)
    assert coarse.shape == mask.shape and coarse.min() >= 0 and coarse.max() <= 1
    assert np.abs(coarse - mask).mean() > 0.005
    disparity = np.where(mask > 0.5, 0.9, 0.2).astype(np.float32)
    assert np.abs(trainer.degrade_disparity(rng, disparity) - disparity).mean() > 0.005


def test_portrait_scenes_are_deterministic_with_the_person_in_focus_in_front():
    first, alpha = make_portrait_scene(np.random.default_rng(7), 48, 64)
    second, alpha2 = make_portrait_scene(np.random.default_rng(7), 48, 64)
    assert np.array_equal(alpha, alpha2) and np.array_equal(camera_image(first), camera_image(second))
    assert 0.02 < alpha.mean() < 0.9 and alpha.min() >= 0 and alpha.max() <= 1
    person = first.layers[-1]
    assert person.alpha is alpha and first.focus_disparity == pytest.approx(float(person.disparity[0, 0]))
    assert all(float(layer.disparity.max()) < first.focus_disparity for layer in first.layers[:-1])


def _tiny_checkpoint(path):
    torch.manual_seed(0)
    model = PortraitRNN({"width": 4}, {"width": 4})
    config = {**model.config(), "target": "naive"}
    save_checkpoint(path, "portrait-rnn", config, model.state_dict())
    return path


def _scene(height=40, width=56, seed=4):
    scene, matte = make_portrait_scene(np.random.default_rng(seed), height, width)
    image = camera_image(scene)
    lens = Lens(blur=float(scene.blur), focus_disparity=float(scene.focus_disparity))
    return image, visible_disparity(scene), matte, lens


def test_renderer_through_the_api_with_a_checkpoint(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    image8, disparity, matte, lens = _scene()
    out = api.render(image8, disparity, lens=lens, renderer="portrait-rnn", matte=matte,
                     renderer_options={"checkpoint": str(checkpoint)})
    assert out.shape == image8.shape and out.dtype == np.uint8
    subject = matte > 0.99
    assert np.abs(out[subject].astype(int) - image8[subject].astype(int)).mean() < 3
    assert not np.array_equal(out[~subject], image8[~subject])
    refined = render_with("portrait-rnn", image8.astype(np.float32) / 255, disparity, lens, matte=matte,
                          checkpoint=str(checkpoint), refine=True)
    assert refined.shape == image8.shape and refined.dtype == np.float32 and np.isfinite(refined).all()


def test_renderer_rejects_bad_checkpoints_and_inputs(tmp_path):
    image8, disparity, matte, lens = _scene()
    image = image8.astype(np.float32) / 255
    with pytest.raises(InputError, match="no such file"):
        render_with("portrait-rnn", image, disparity, lens, checkpoint=str(tmp_path / "missing.pt"))
    other = tmp_path / "other.pt"
    save_checkpoint(other, "dbsi", {}, {})
    with pytest.raises(InputError, match="not 'portrait-rnn'"):
        render_with("portrait-rnn", image, disparity, lens, checkpoint=str(other))
    with pytest.raises(InputError, match="disparity shape"):
        render_with("portrait-rnn", image, disparity[:-1], lens, checkpoint=str(other))


def test_everything_in_focus_returns_the_input(tmp_path):
    image8, disparity, matte, _ = _scene()
    image = image8.astype(np.float32) / 255
    out = render_with("portrait-rnn", image, disparity, Lens(blur=0.0), checkpoint=str(tmp_path / "unused.pt"))
    assert np.array_equal(out, image)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped checkpoint not built yet")
def test_shipped_checkpoint_reproduces_the_stored_output():
    stored = np.load(REFERENCE)
    lens = Lens(blur=float(stored["blur"]), focus_disparity=float(stored["focus"]))
    image = stored["image8"].astype(np.float32) / 255
    from lensblur.color import srgb_to_linear

    out = render_with("portrait-rnn", srgb_to_linear(image), stored["disparity"], lens, matte=stored["matte"])
    assert out.shape == stored["output"].shape
    assert np.abs(out - stored["output"]).max() < 2e-3
    from lensblur.training.checkpoint import load_checkpoint

    config = load_checkpoint(SHIPPED, "portrait-rnn")["config"]
    assert config["target"] == "portrait"  # the shipped filter learned the graph-cut renderer
    assert SHIPPED.stat().st_size < 5 * 2**20


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_trains_a_tiny_checkpoint_and_renders_with_it(tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    result = run_cli("train", "portrait-rnn", "--data", tmp_path / "data", "--out", checkpoint, "--target", "naive",
                     "--scenes", "2", "--size", "40x48", "--spn-steps", "2", "--filter-steps", "2", "--batch", "1",
                     "--crop", "32", "--filter-crop", "32", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert checkpoint.is_file() and "target: naive" in result.stdout
    image8, disparity, _, lens = _scene()
    cv2.imwrite(str(tmp_path / "in.png"), image8[..., ::-1])
    cv2.imwrite(str(tmp_path / "depth.png"), np.round(disparity * 65535).astype(np.uint16))
    out = tmp_path / "out.png"
    result = run_cli("render", tmp_path / "in.png", "--depth", tmp_path / "depth.png", "-o", out,
                     "--renderer", "portrait-rnn", "--checkpoint", checkpoint, "--blur", "8")
    assert result.returncode == 0, result.stderr
    written = cv2.imread(str(out))
    assert written.shape == image8.shape and not np.array_equal(written[..., ::-1], image8)
    bad = run_cli("render", tmp_path / "in.png", "--depth", tmp_path / "depth.png", "-o", tmp_path / "bad.png",
                  "--renderer", "portrait-rnn", "--checkpoint", tmp_path / "missing.pt")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "missing.pt" in bad.stderr


def test_spn_paper_merge_takes_the_maximum_of_the_four_scans(monkeypatch):
    """Section 3.1 (after Liu et al. 2017): the four directions' propagations are combined by
    their maximum; merge="max" selects that, the default mixes them by learned softmax weights."""
    from lensblur.systems.xu_portrait import spn as spn_module
    from lensblur.systems.xu_portrait.recursive_filter import DIRECTIONS

    offsets = {direction: 0.1 * (index + 1) for index, direction in enumerate(DIRECTIONS)}
    monkeypatch.setattr(spn_module, "three_way_propagation", lambda x, p, direction: x + offsets[direction])
    encoded, seg, disp = torch.rand(1, 3, 16, 24), torch.rand(1, 1, 16, 24), torch.rand(1, 1, 16, 24)
    torch.manual_seed(0)
    paper = SpatialPropagationNet(width=4, merge="max").eval()
    with torch.no_grad():
        logits, disparity = paper(encoded, seg, disp)
        mixed = SpatialPropagationNet(width=4).eval()(encoded, seg, disp)[1]
    torch.testing.assert_close(disparity, disp + max(offsets.values()))
    torch.testing.assert_close(logits, spn_module.LOGIT_SCALE * (2 * seg - 1) + max(offsets.values()))
    assert float((mixed - disp).max()) < max(offsets.values()) - 1e-3  # a mix stays below the largest scan
    assert paper.config["merge"] == "max"
    with pytest.raises(ValueError, match="merge"):
        SpatialPropagationNet(merge="mean")

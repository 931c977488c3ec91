"""DeepLens: network shapes, training steps, the shipped checkpoint, guided upsampling to any
size, aperture control, the interactive session and bad checkpoints.

The stored reference output (tests/data/deeplens_reference.npz) is rewritten, after retraining
the shipped checkpoint, with ``python tests/test_deeplens.py --regenerate``.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensblur.cli import main as cli_main  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.lens import Lens  # noqa: E402
from lensblur.models.deeplens import (DeepLensRenderer, FeatureExtractor, downsample,  # noqa: E402
                                      normalised_loss)
from lensblur.models.deeplens_depth import DepthPredictor, depth_loss  # noqa: E402
from lensblur.models.deeplens_session import DeepLensSession, choose_levels  # noqa: E402
from lensblur.renderers import render_with  # noqa: E402
from lensblur.synth.dataset import generate  # noqa: E402
from lensblur.training.checkpoint import load_checkpoint, save_checkpoint, shipped_checkpoint  # noqa: E402
from lensblur.training.deeplens import corrupt_disparity, load_depth_pairs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "deeplens_reference.npz"
torch.set_num_threads(1)


def reference_case():
    """A 48×64 linear image (texture, a near square in front of a far ramp) and its disparity."""
    rng = np.random.default_rng(5)
    height, width = 48, 64
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([0.5 + 0.4 * np.sin(x / 3.0), 0.5 + 0.4 * np.cos(y / 2.5), rng.uniform(0.1, 0.9, (height, width))],
                     -1).astype(np.float32)
    disparity = (0.2 * x / width).astype(np.float32)
    square = (abs(y - 24) < 12) & (abs(x - 30) < 14)
    disparity[square] = 0.9
    image[square] = [0.9, 0.2, 0.1]
    return image, disparity


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deeplens-scenes")
    generate(folder, 2, 31, 48, 64, workers=1)
    return folder


def test_shapes():
    torch.manual_seed(0)
    model = DeepLensRenderer({"features": 16, "kernel_width": 8, "upsampler_width": 8})
    features = FeatureExtractor(16)(torch.rand(2, 3, 20, 24))
    assert features.shape == (2, 3, 16, 20, 24)
    low, high = model(torch.rand(2, 3, 33, 41), torch.randn(2, 1, 33, 41) * 4, levels=1)
    assert low.shape == (2, 3, 17, 21) and high.shape == (2, 3, 33, 41)
    depth, segmentation = DepthPredictor("small")(torch.rand(1, 3, 40, 56))
    assert depth.shape == segmentation.shape == (1, 1, 40, 56)
    assert 0 <= float(depth.detach().min()) and float(depth.detach().max()) <= 1


def test_normalised_loss_weights_large_errors():
    target = torch.zeros(100)
    spread = torch.full((100,), 0.1)
    peaked = torch.zeros(100)
    peaked[0] = 10.0          # same L1 (mean 0.1) but concentrated in one pixel
    assert abs(float(spread.sub(target).abs().mean()) - float(peaked.abs().mean())) < 1e-6
    assert float(normalised_loss(peaked, target)) > 50 * float(normalised_loss(spread, target))
    assert float(normalised_loss(target, target)) == 0.0


def test_a_gradient_step_reduces_the_loss_on_a_tiny_batch():
    torch.manual_seed(1)
    model = DeepLensRenderer({"features": 16, "kernel_width": 8, "upsampler_width": 8, "r_max": 3.0})
    image = torch.rand(2, 3, 32, 32)
    target = torch.nn.functional.avg_pool2d(image, 5, 1, 2, count_include_pad=False)
    coc = torch.full((2, 1, 32, 32), 4.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_now():
        low, high = model(image, coc)
        return normalised_loss(low, downsample(target, low.shape[-2:])) + normalised_loss(high, target)

    before = loss_now()
    for _ in range(3):
        optimizer.zero_grad()
        loss = loss_now()
        loss.backward()
        optimizer.step()
    assert float(loss_now().detach()) < 0.95 * float(before.detach())

    depth_model = DepthPredictor("small")
    depth_optimizer = torch.optim.Adam(depth_model.parameters(), lr=1e-3)
    disparity_gt = torch.rand(2, 1, 32, 32)
    mask_gt = (disparity_gt > 0.5).float()
    flags = torch.tensor([True, True])

    def depth_now():
        return depth_loss(*depth_model(image), disparity_gt, mask_gt, flags, flags)

    first = depth_now()
    for _ in range(3):
        depth_optimizer.zero_grad()
        depth_now().backward()
        depth_optimizer.step()
    assert float(depth_now()) < float(first)


def test_guided_upsampler_reaches_an_arbitrary_size():
    model = DeepLensRenderer({"features": 16, "kernel_width": 8, "upsampler_width": 8})
    with torch.no_grad():
        out = model.guided_upsample(torch.rand(1, 3, 37, 53), torch.rand(1, 3, 300, 451),
                                    torch.randn(1, 1, 300, 451) * 5)
    assert out.shape == (1, 3, 300, 451)
    assert torch.isfinite(out).all()


def test_levels_follow_blur_and_size():
    assert choose_levels(384, 576, 10.0, 6.0) == 1
    assert choose_levels(384, 576, 24.0, 6.0) == 2
    assert choose_levels(1536, 2048, 1.0, 6.0) == 2      # long side brought to 512
    assert choose_levels(12, 12, 50.0, 6.0) == 0         # too small to halve


def test_shipped_checkpoint_reproduces_the_stored_output():
    path = shipped_checkpoint("deeplens")
    assert path.stat().st_size < 5_000_000
    stored = np.load(REFERENCE)
    image, disparity = reference_case()
    out = DeepLensSession(image, disparity).render(float(stored["focus"]), float(stored["blur"]))
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, stored["output"], atol=2e-3)


def test_aperture_scaling_is_monotonic():
    image, disparity = reference_case()
    session = DeepLensSession(image, disparity)
    distances = [float(np.abs(session.render(0.9, blur) - image).mean()) for blur in (0.0, 2.0, 5.0, 10.0)]
    assert all(a < b for a, b in zip(distances, distances[1:])), distances
    sharp = np.abs(session.render(0.9, 10.0) - image)[disparity == 0.9].mean()
    assert sharp < 0.5 * distances[-1]             # the focused square stays closer to the input


def test_session_rerender_matches_the_one_shot_renderer():
    image, disparity = reference_case()
    session = DeepLensSession(image, disparity)
    session.render(0.9, 8.0)
    again = session.render(0.1, 6.0)
    one_shot = render_with("deeplens", image, disparity, Lens(blur=6.0, focus_disparity=0.1))
    np.testing.assert_allclose(again, one_shot, atol=1e-6)
    assert not np.allclose(again, session.render(0.9, 8.0), atol=1e-3)


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    image, disparity = reference_case()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.pt"
    save_checkpoint(other, "dbsi", {}, {"w": torch.zeros(1)})
    mismatched = tmp_path / "mismatched.pt"
    save_checkpoint(mismatched, "deeplens", {"module": "render"}, {"w": torch.zeros(1)})
    for path in (garbage, other, mismatched, tmp_path / "missing.pt"):
        with pytest.raises(InputError) as error:
            render_with("deeplens", image, disparity, Lens(), checkpoint=str(path))
        assert "\n" not in str(error.value) and str(path.name) in str(error.value)

    picture = tmp_path / "in.png"
    depth = tmp_path / "depth.png"
    import cv2

    cv2.imwrite(str(picture), (image * 255).astype(np.uint8))
    cv2.imwrite(str(depth), (disparity * 255).astype(np.uint8))
    result = subprocess.run([sys.executable, "-m", "lensblur", "render", str(picture), "--depth", str(depth),
                             "--renderer", "deeplens", "--checkpoint", str(garbage), "-o", str(tmp_path / "o.png")],
                            capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "o.png").exists()


def test_train_resume_and_fixed_seed(scenes, tmp_path, capsys):
    common = ["train", "-q", "deeplens", "--data", str(scenes), "--threads", "1", "--batch", "2", "--crop", "32x32"]
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    assert cli_main(common + ["--out", str(first), "--steps", "2"]) == 0
    assert cli_main(common + ["--out", str(first), "--steps", "3", "--resume"]) == 0
    assert cli_main(common + ["--out", str(second), "--steps", "3"]) == 0
    a, b = load_checkpoint(first, "deeplens"), load_checkpoint(second, "deeplens")
    assert a["step"] == b["step"] == 3 and a["config"]["r_max"] > 0
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], atol=1e-5, rtol=1e-4)
    out = render_with("deeplens", *reference_case(), Lens(blur=5.0, focus_disparity=0.9), checkpoint=str(first))
    assert out.shape == (48, 64, 3)
    assert "steps: 3" in capsys.readouterr().out


def test_depth_module_data_and_training(tmp_path, capsys):
    import cv2

    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / f"{name}_image.png"), rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
        depth = np.full((40, 48), 5000, np.uint16)
        depth[10:30, 10:30] = 1000                               # a near square (smaller depth)
        cv2.imwrite(str(tmp_path / f"{name}_depth.png"), depth)
    cv2.imwrite(str(tmp_path / "a_mask.png"), ((depth == 1000) * 255).astype(np.uint8))
    examples = load_depth_pairs(tmp_path, (32, 32))
    assert [e["has_mask"] for e in examples] == [True, False]
    assert examples[0]["disparity"].max() == 1.0 and examples[0]["disparity"][16, 16] == 1.0
    assert examples[0]["disparity"][0, 0] == 0.0
    out = tmp_path / "depth.pt"
    assert cli_main(["train", "-q", "deeplens", "--module", "depth", "--data", str(tmp_path), "--out", str(out),
                     "--steps", "2", "--batch", "2", "--crop", "32x32", "--threads", "1"]) == 0
    assert load_checkpoint(out, "deeplens")["config"]["module"] == "depth"
    with pytest.raises(InputError, match="depth"):
        render_with("deeplens", *reference_case(), Lens(), checkpoint=str(out))
    assert "module: depth" in capsys.readouterr().out


def test_depth_corruption_moves_only_edges():
    disparity = np.zeros((40, 40), np.float32)
    disparity[10:30, 10:30] = 0.8
    changed = [corrupt_disparity(np.random.default_rng(seed), disparity, 3) for seed in range(12)]
    assert any((c > 0).sum() > (disparity > 0).sum() for c in changed)       # some dilated
    assert any((c > 0).sum() < (disparity > 0).sum() for c in changed)       # some eroded
    for c in changed:
        assert set(np.unique(c)) <= {0.0, np.float32(0.8)}
        assert c[20, 20] == np.float32(0.8) and c[0, 0] == 0.0


if __name__ == "__main__" and "--regenerate" in sys.argv:
    torch.set_num_threads(1)
    picture, disparity_map = reference_case()
    focus, blur = 0.9, 8.0
    output = DeepLensSession(picture, disparity_map).render(focus, blur)
    np.savez_compressed(REFERENCE, output=output.astype(np.float32), focus=focus, blur=blur)
    print(f"wrote {REFERENCE}")

"""The shipped learned checkpoints load, stay small, and DeepLens renders from the image alone."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from lensblur import api  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.synth import mixed  # noqa: E402
from lensblur.synth.dataset import scene_rng, srgb8_to_linear  # noqa: E402
from lensblur.synth.thinlens import camera_image, visible_disparity  # noqa: E402
from lensblur.training.checkpoint import SYSTEMS_DIR, load_checkpoint  # noqa: E402

SHIPPED = {"dbsi-depth": "dbsi", "dbsi-image": "dbsi", "deeplens": "deeplens", "deeplens-depth": "deeplens"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_loads_and_is_small(name):
    path = SYSTEMS_DIR / SHIPPED[name] / "weights" / f"{name}.pt"
    assert path.stat().st_size < 3_000_000
    payload = load_checkpoint(path, SHIPPED[name])
    assert payload["step"] > 0 and payload["history"]


def test_shipped_renderers_load():
    from lensblur.systems.dbsi.renderer import load_dbsi
    from lensblur.systems.deeplens.depth_estimator import load_depth_module
    from lensblur.systems.deeplens.session import load_renderer

    assert load_renderer().r_max > 0
    for variant in ("depth", "image"):
        assert load_dbsi(variant) is not None
    model, size = load_depth_module()
    assert model.backbone == "small" and len(size) == 2
    payload = load_checkpoint(SYSTEMS_DIR / "deeplens" / "weights" / "deeplens-depth.pt", "deeplens")
    assert payload["config"]["module"] == "depth" and payload["optimizer"] is None


def _scene_image(index=0, height=256, width=384):
    scene, subject, _ = mixed.make_mixed_scene(scene_rng(777, index), height, width)
    return camera_image(scene), visible_disparity(scene), subject


def test_depth_module_predicts_depth_that_follows_the_truth():
    """A weak bar on purpose (the shipped module saw 225 steps; docs/deeplens.md): its disparity
    must correlate with the true one on unseen scenes, which a constant or random map does not."""
    from lensblur.systems.deeplens.depth_estimator import predict

    correlations = []
    for index in range(8):
        image, truth, _ = _scene_image(index)
        predicted, segmentation = predict(srgb8_to_linear(image))
        assert predicted.shape == truth.shape and segmentation.shape == truth.shape
        assert 0 <= predicted.min() and predicted.max() <= 1 and predicted.std() > 0
        correlations.append(np.corrcoef(predicted.ravel(), truth.ravel())[0, 1])
    assert np.mean(correlations) > 0.2, correlations


def test_api_renders_deeplens_from_the_image_alone():
    image, _, subject = _scene_image(1)
    out = api.render(image, None, renderer="deeplens", blur=12.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    change = np.abs(out.astype(np.float32) - image.astype(np.float32)).mean(axis=2)
    assert change.mean() > 1.0                                   # it did blur something
    with pytest.raises(InputError, match="only deeplens"):
        api.render(image, None, renderer="scatter")


def test_cli_renders_deeplens_from_the_image_alone(tmp_path):
    image, _, _ = _scene_image(2)
    source = tmp_path / "photo.png"
    cv2.imwrite(str(source), image[..., ::-1])
    before = source.read_bytes()
    out = tmp_path / "out.png"
    result = subprocess.run([sys.executable, "-m", "lensblur", "render", str(source), "-o", str(out),
                             "--renderer", "deeplens", "--blur", "12", "-v"],
                            capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    assert "DeepLens depth module" in result.stderr and "Traceback" not in result.stderr
    rendered = cv2.imread(str(out))
    assert rendered.shape == image.shape and np.abs(rendered.astype(int) - image[..., ::-1]).mean() > 1.0
    assert source.read_bytes() == before

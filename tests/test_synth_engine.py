"""The training-data engine (``lensblur synth --kind mixed``, lensblur.synth.mixed)."""

import json

import cv2
import numpy as np
import pytest

from lensblur.cli import main as cli_main
from lensblur.synth import mixed
from lensblur.synth.dataset import generate, scene_rng
from lensblur.synth.scene import _SUPERSAMPLE, _draw_blob
from lensblur.synth.thinlens import camera_image, render_ground_truth, render_pinhole, visible_disparity


def test_same_seed_gives_byte_identical_files_on_any_worker_count(tmp_path):
    generate(tmp_path / "a", 3, 7, 48, 72, workers=0, kind="mixed")
    assert cli_main(["synth", "-q", str(tmp_path / "b"), "--kind", "mixed", "--count", "3", "--seed", "7",
                     "--size", "48x72", "--workers", "0"]) == 0
    generate(tmp_path / "c", 3, 8, 48, 72, workers=0, kind="mixed")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {n.split("_", 1)[1] for n in names} == {"image.png", "disparity.png", "gt.png", "mask.png", "meta.json"}
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "0000_image.png").read_bytes() != (tmp_path / "c" / "0000_image.png").read_bytes()
    meta = json.loads((tmp_path / "a" / "0001_meta.json").read_text())
    assert meta["kind"] == "mixed" and set(meta["objects"]) <= set(mixed.OBJECT_KINDS)


def test_scenes_vary_backgrounds_objects_and_surfaces():
    infos = [mixed.make_mixed_scene(scene_rng(3, i), 48, 72)[2] for i in range(40)]
    assert len({info["background"] for info in infos}) >= 10
    assert {kind for info in infos for kind in info["objects"]} == set(mixed.OBJECT_KINDS)
    assert {info["surface"] for info in infos} == {"none", "floor", "wall"}
    assert any(info["lamps"] for info in infos) and not all(info["lamps"] for info in infos)


def test_every_background_source_loads_as_srgb_rgb():
    for name in mixed.BACKGROUNDS:
        picture = mixed._skimage_picture(name)
        assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.float32, name
        assert 0 <= picture.min() and picture.max() <= 1 and picture.max() > picture.min(), name


def test_alpha_is_fractional_along_hair():
    rng = np.random.default_rng(0)
    height, width = 96, 128
    body = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)
    _draw_blob(rng, body, 0.3)
    furry = body.copy()
    mixed.fur_edge(rng, furry, 200, 8.0)
    small = [cv2.resize(m.astype(np.float32) / 255, (width, height), interpolation=cv2.INTER_AREA) for m in (body, furry)]
    outside = cv2.dilate((small[0] > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) == 0
    hair = small[1][outside & (small[1] > 0.01)]
    assert hair.size > 200                                # the strands reach out of the body
    assert np.mean(hair < 0.95) > 0.9                     # and are mostly partial coverage,
    assert 0.05 < np.median(hair) < 0.7                   # not a binary cut-out


def test_tilted_plane_and_floor_depth_are_linear():
    plane = mixed.tilted_plane(40, 60, 0.1, 0.4, angle=30.0).astype(np.float64)
    assert plane.min() == pytest.approx(0.1, abs=1e-6) and plane.max() == pytest.approx(0.4, abs=1e-6)
    assert np.abs(np.diff(plane, 2, axis=0)).max() < 1e-5 and np.abs(np.diff(plane, 2, axis=1)).max() < 1e-5
    assert np.diff(plane, axis=1).mean() > 0 and np.diff(plane, axis=0).mean() > 0
    floor = mixed._surface(np.random.default_rng(4), 64, 96, "floor", 0.2, 0.6)
    rows = np.flatnonzero(floor.alpha[:, 0] >= 1)
    column = floor.disparity[rows, 0].astype(np.float64)
    assert len(rows) > 10 and np.allclose(floor.disparity, floor.disparity[:, :1])
    assert np.abs(np.diff(column, 2)).max() < 1e-5 and column[-1] == pytest.approx(0.6, abs=1e-5)
    wall = mixed._surface(np.random.default_rng(5), 64, 96, "wall", 0.2, 0.6)
    assert np.allclose(wall.disparity, wall.disparity[:1, :])
    covered = np.flatnonzero(wall.alpha[0] >= 1)
    assert np.abs(np.diff(wall.disparity[0, covered].astype(np.float64), 2)).max() < 1e-5


def test_lights_are_clipped_in_the_input_and_hdr_in_the_truth():
    index = next(i for i in range(50) if mixed.make_mixed_scene(scene_rng(11, i), 64, 96)[2]["lamps"])
    scene, _, info = mixed.make_mixed_scene(scene_rng(11, index), 64, 96)
    radiance = render_pinhole(scene)
    lamps = radiance.max(axis=2) > 1.5
    assert lamps.any()
    image = camera_image(scene)
    assert (image[lamps] == 255).any(axis=1).all()            # the camera clips every lamp pixel
    truth = render_ground_truth(scene)
    assert truth.max() > 1.5                                 # the truth keeps their energy (HDR)
    assert truth.sum() == pytest.approx(radiance.sum(), rel=0.05)


def test_subject_mask_is_the_nearest_object():
    scene, subject, _ = mixed.make_mixed_scene(scene_rng(2, 0), 64, 96)
    nearest = scene.layers[-1]
    assert np.array_equal(subject, nearest.alpha) and subject.max() > 0.5
    visible = visible_disparity(scene)
    assert np.allclose(visible[subject > 0.5], nearest.disparity[0, 0])
    assert all(float(layer.disparity.max()) < float(nearest.disparity.min()) for layer in scene.layers[:-1])

"""Item 9 of issue 13: ``lensblur eval`` on malformed dataset folders ends with its own clear error."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_clean_failure, run_cli


@pytest.fixture()
def dataset(tmp_path):
    """A folders-layout dataset of one 32×24 scene (image, disparity, ground truth)."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / "a_image.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 32), (24, 1)).astype(np.uint8)).save(folder / "a_disparity.png")
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / "a_gt.png")
    return folder


def run_eval(dataset, tmp_path, *extra):
    return run_cli("eval", "-q", "--data", dataset, "--renderer", "identity", "--out", tmp_path / "results", *extra)


def test_a_good_folder_is_scored(dataset, tmp_path):
    result = run_eval(dataset, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "results" / "results.json").read_text())["images"][0]["renderer"] == "identity"


@pytest.mark.parametrize("meta, words", [
    ("{broken", ["a_meta.json", "JSON"]),
    ("[1, 2, 3]", ["a_meta.json", "object"]),
    ('{"blur": "lots"}', ["a_meta.json", "blur"]),
    ('{"blur": NaN}', ["a_meta.json", "blur"]),
    ('{"focus_disparity": [0.5]}', ["a_meta.json", "focus_disparity"]),
    ('{"aperture": {"petals": 6}}', ["a_meta.json", "aperture"]),
    ('{"aperture": "hexagon"}', ["a_meta.json", "aperture"]),
])
def test_malformed_meta_json(dataset, tmp_path, meta, words):
    (dataset / "a_meta.json").write_text(meta)
    assert_clean_failure(run_eval(dataset, tmp_path), *words)
    assert not (tmp_path / "results").exists()


def test_out_pointing_at_a_file(dataset, tmp_path):
    (tmp_path / "results").write_text("not a folder")
    assert_clean_failure(run_eval(dataset, tmp_path), "results", "folder")
    assert (tmp_path / "results").read_text() == "not a folder"


def test_unknown_renderer_is_refused(dataset, tmp_path):
    result = run_cli("eval", "-q", "--data", dataset, "--renderer", "bogus", "--out", tmp_path / "results")
    assert_clean_failure(result, "bogus")
    assert not (tmp_path / "results").exists()


def test_ground_truth_of_another_size(dataset, tmp_path):
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(dataset / "a_gt.png")
    assert_clean_failure(run_eval(dataset, tmp_path), "a_gt.png", "64×48", "32×24")

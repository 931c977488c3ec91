"""The shared training pieces: checkpoints, data helpers, the ``lensblur train`` command shell,
and renderer options."""

import numpy as np
import pytest

from lensblur.errors import InputError
from lensblur.lens import Lens
from lensblur.renderers import render_with
from lensblur.training import data
from lensblur.training.checkpoint import load_checkpoint, save_checkpoint

torch = pytest.importorskip("torch")


def test_checkpoint_round_trip(tmp_path):
    state = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    path = save_checkpoint(tmp_path / "model.pt", "dbsi", {"kernels": [25, 45, 75]}, state, step=7,
                           history=[{"step": 7, "loss": 0.25}])
    payload = load_checkpoint(path, "dbsi")
    assert payload["step"] == 7
    assert payload["config"] == {"kernels": [25, 45, 75]}
    assert payload["history"][0]["loss"] == 0.25
    assert torch.equal(payload["model"]["weight"], state["weight"])
    assert not list(tmp_path.glob(".*part*")), "temporary file left behind"


def test_checkpoint_of_another_system_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", "deeplens", {}, {"w": torch.zeros(1)})
    with pytest.raises(InputError, match="is for 'deeplens', not 'dbsi'"):
        load_checkpoint(path, "dbsi")


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04broken zip"])
def test_corrupt_checkpoint_gives_one_line_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a PyTorch checkpoint") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


class _Payload:
    """An arbitrary class: unpickling it would run code from the file."""


def test_pickled_objects_are_not_loaded(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"format": "lensblur-checkpoint", "object": _Payload()}, path)
    with pytest.raises(InputError, match="pickled objects"):
        load_checkpoint(path)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="no 'lensblur-checkpoint' marker"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_checkpoint(tmp_path / "none.pt")


def test_random_crop_takes_the_same_window_of_every_array():
    rng = np.random.default_rng(3)
    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    twin = image * 2
    crop, twin_crop = data.random_crop(rng, [image, twin], 8, 10)
    assert crop.shape == (8, 10)
    np.testing.assert_array_equal(twin_crop, crop * 2)
    top, left = divmod(int(crop[0, 0]), 30)
    np.testing.assert_array_equal(crop, image[top:top + 8, left:left + 10])


def test_random_flips_apply_the_same_flip_to_every_array():
    rng = np.random.default_rng(0)
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    seen = set()
    for _ in range(40):
        flipped, twin = data.random_flips(rng, [image, image + 100])
        np.testing.assert_array_equal(twin, flipped + 100)
        assert flipped.flags.c_contiguous
        seen.add(tuple(flipped.ravel()))
    assert len(seen) == 4  # identity, horizontal, vertical, both


def test_resize_pair_scales_the_blur_with_the_width():
    pair = data.TrainingPair("x", np.zeros((40, 60, 3), np.float32), np.zeros((40, 60, 3), np.float32),
                             np.zeros((40, 60), np.float32), 0.5, 12.0)
    small = data.resize_pair(pair, 20, 30)
    assert small.image.shape == (20, 30, 3) and small.disparity.shape == (20, 30)
    assert small.blur == pytest.approx(6.0)


def test_load_pairs_reads_a_synthetic_folder(tmp_path):
    from lensblur.synth.dataset import generate

    generate(tmp_path, 2, seed=5, height=24, width=32, workers=0)
    pairs = data.load_pairs(tmp_path)
    assert [pair.name for pair in pairs] == ["0000", "0001"]
    for pair in pairs:
        assert pair.image.shape == pair.target.shape == (24, 32, 3)
        assert 0 <= pair.image.min() and pair.image.max() <= 1
        assert pair.disparity.shape == (24, 32) and pair.blur > 0


def test_renderer_options_are_checked_against_the_signature():
    image = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="takes no checkpoint option"):
        render_with("naive", image, np.zeros((8, 8), np.float32), Lens(blur=2.0, focus_disparity=0.5),
                    checkpoint="x.pt")


class _Bar:
    def __init__(self):
        self.updates, self.postfix = 0, None

    def update(self, n):
        self.updates += n

    def set_postfix(self, **values):
        self.postfix = values


def test_descend_steps_on_a_finite_loss_and_refuses_a_diverged_one():
    import torch

    from lensblur.training import descend

    weight = torch.nn.Parameter(torch.tensor([2.0]))
    optimizer = torch.optim.SGD([weight], lr=0.25)
    recent, bar = [], _Bar()
    value = descend(optimizer, (weight ** 2).sum(), recent, bar, "phase 1 step 0")
    assert value == pytest.approx(4.0) and recent == [value]
    assert weight.item() == pytest.approx(1.0)  # 2 − 0.25 · 2·2
    assert bar.updates == 1 and bar.postfix == {"loss": "4.0000"}
    with pytest.raises(InputError, match=r"^training diverged at phase 1 step 1 \(loss nan\)$"):
        descend(optimizer, (weight * float("nan")).sum(), recent, bar, "phase 1 step 1")
    assert weight.item() == pytest.approx(1.0) and recent == [value] and bar.updates == 1


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
@pytest.mark.parametrize("renderer, other_system", [("dbsi", "deeplens"), ("d2f", "dbsi"), ("bggan", "dbsi"),
                                                    ("deeplens", "dbsi")])
def test_render_with_a_bad_checkpoint_is_a_one_line_error(tmp_path, capsys, renderer, other_system, content):
    """A file that is not a checkpoint, or a valid checkpoint of another system, given to a
    learned renderer: one line on stderr, exit 1, no output."""
    import cv2

    from lensblur.cli import main

    bad = tmp_path / "bad.pt"
    if content is None:
        save_checkpoint(bad, other_system, {}, {"w": torch.zeros(1)})
    else:
        bad.write_bytes(content)
    cv2.imwrite(str(tmp_path / "in.png"), np.full((32, 32, 3), 128, np.uint8))
    np.save(tmp_path / "d.npy", np.full((32, 32), 0.5, np.float32))
    code = main(["render", str(tmp_path / "in.png"), "--depth", str(tmp_path / "d.npy"), "--renderer", renderer,
                 "--checkpoint", str(bad), "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "checkpoint" in err, err
    assert not (tmp_path / "out.png").exists()

import argparse
import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from lensblur import evaluate
from lensblur.commands import eval as eval_command
from lensblur.synth.dataset import generate


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    generate(folder, 3, 11, 48, 64, workers=0)
    return folder


def _eval_args(data, out, renderers, **extra):
    args = dict(data=str(data), renderer=renderers, out=str(out), limit=None, layout="auto", split="all",
                disparity_dir=None, blur=None, focus=None, sheet=2, lpips=None, quiet=True, workers=0,
                scheduler=None)
    args.update(extra)
    return argparse.Namespace(**args)


def test_eval_writes_table_csv_json_and_sheet(tiny_set, tmp_path, capsys):
    out = tmp_path / "out"
    assert eval_command.run(_eval_args(tiny_set, out, ["identity", "naive", "no-such-renderer"])) == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "identity" in printed and "naive" in printed
    assert "no-such-renderer skipped" in printed
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 6
    summary = json.load(open(out / "results.json"))["summary"]
    scores = {entry["renderer"]: entry for entry in summary}
    assert scores["naive"]["psnr"] > scores["identity"]["psnr"]
    sheet = cv2.imread(str(out / "sheet.png"))
    assert sheet is not None and sheet.shape[0] > 2 * 48


def test_folder_layout_without_metadata(tiny_set, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    for path in tiny_set.glob("0000_*.png"):
        shutil.copy(path, folder / path.name.replace("0000", "shot"))
    assert evaluate.detect_layout(folder) == "folders"
    samples = list(evaluate.iter_samples(folder, blur=7.0, focus=0.4))
    assert len(samples) == 1 and samples[0].lens.blur == 7.0 and samples[0].lens.focus_disparity == 0.4


def test_ebb_layout_and_val294_split(tmp_path):
    for part in ("original", "bokeh"):
        (tmp_path / "train" / part).mkdir(parents=True)
        for number in (3, 4399, 4400):
            cv2.imwrite(str(tmp_path / "train" / part / f"{number}.jpg"), np.full((16, 24, 3), 128, np.uint8))
    assert evaluate.detect_layout(tmp_path) == "ebb"
    assert [s.name for s in evaluate.iter_samples(tmp_path, split="val294")] == ["4400"]
    samples = list(evaluate.iter_samples(tmp_path))
    assert [s.name for s in samples] == ["3", "4399", "4400"]
    results, _ = evaluate.evaluate(samples, ["identity"])
    assert any("flat map" in note for note in results.notes)

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
    args = dict(data=str(data), renderer=renderers, out=str(out), limit=None, layout="auto", split="all", protocol=None,
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


# ------------------------------------------------------------------------- the papers' protocols

def _ebb_folder(root, numbers, nested=False, size=(48, 64)):
    """A tiny EBB!-layout folder: original/N.jpg and bokeh/N.jpg pairs (under train/ if nested);
    the bokeh image is a blurred copy of the original."""
    base = root / "train" if nested else root
    rng = np.random.default_rng(5)
    for number in numbers:
        photo = (rng.random((*size, 3)) * 255).astype(np.uint8)
        photo = cv2.GaussianBlur(photo, (0, 0), 1.5)
        for part, image in (("original", photo), ("bokeh", cv2.GaussianBlur(photo, (0, 0), 4))):
            (base / part).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(base / part / f"{number}.jpg"), image)
    return root


def test_ebb_reader_takes_original_and_bokeh_folders_directly(tmp_path):
    folder = _ebb_folder(tmp_path, [12, 4400, 4693, 4694])
    (folder / "original" / "7.jpg").write_bytes((folder / "original" / "12.jpg").read_bytes())  # no bokeh pair
    assert evaluate.detect_layout(folder) == "ebb"
    assert [s.name for s in evaluate.iter_samples(folder)] == ["12", "4400", "4693", "4694"]
    assert [s.name for s in evaluate.iter_samples(folder, split="val294")] == ["4400", "4693"]
    assert [s.name for s in evaluate.iter_samples(folder, split="train4400")] == ["12", "4694"]
    sample = next(evaluate.iter_samples(folder))
    assert sample.gt.shape == (48, 64, 3) and sample.gt.dtype == np.uint8 and not sample.has_disparity


def test_protocol_tables_have_the_papers_shape_and_numbers():
    from lensblur import protocols

    summary = [{"renderer": "saliency-baseline", "psnr": 20.0, "ssim": 0.7, "images": 2},
               {"renderer": "dbsi-paper", "psnr": 21.5, "ssim": 0.75, "images": 2}]
    header, rows = protocols.table_cells(protocols.PROTOCOLS["dbsi-val294"], summary, "x")
    # DBSI Table 1 (section 5.3): the paper's two rows with PSNR / SSIM / LPIPS beside ours
    assert [r[0] for r in rows] == ["Baseline (SCRN)", "Proposed"]
    assert rows[1] == ["Proposed", "dbsi-paper", "21.50", "23.45", "0.7500", "0.8675", protocols.LPIPS_MISSING, "0.2463"]
    assert rows[0][3:8:2] == ["22.53", "0.8330", "0.3251"]
    # DeepLens Table 2 and Xu Table 2: methods across, metrics down, the paper's figures as printed
    header, rows = protocols.table_cells(protocols.PROTOCOLS["deeplens"], [], "x")
    assert header[1:5] == ["Direct Regression", "Aperture", "MegaDepth + [Yang et al.]", "Ours"]
    assert rows[1][1:5] == ["25.84", "26.88", "26.67", "28.235"] and rows[3][1:5] == ["0.815", "0.844", "0.836", "0.908"]
    assert rows[0][1] == "not implemented" and rows[0][4] == "not run"
    header, rows = protocols.table_cells(protocols.PROTOCOLS["xu"], [], "x")
    assert rows[1][1:5] == ["31.55", "33.55", "37.35", "40.74"] and rows[3][4] == "0.9868"
    text = protocols.format_text(protocols.PROTOCOLS["xu"], [], "synth data, 2 images")
    assert "not comparable" in text and "Baidu" in text


def test_dbsi_val294_protocol_on_an_ebb_folder(tmp_path, capsys):
    folder = _ebb_folder(tmp_path / "EBB", [5, 4400, 4401], nested=True)
    out = tmp_path / "out"
    assert eval_command.run(_eval_args(folder, out, None, protocol="dbsi-val294")) == 0
    printed = capsys.readouterr().out
    assert "2 images" in printed and "EBB! Val294" in printed  # image 5 is training data, not Val294
    assert "Baseline (SCRN)" in printed and "22.53" in printed and "n/a (no weights)" in printed
    summary = {e["renderer"]: e for e in json.load(open(out / "results.json"))["summary"]}
    assert set(summary) == {"saliency-baseline", "dbsi-paper"}
    assert all(np.isfinite(e["psnr"]) and 0 < e["ssim"] <= 1 for e in summary.values())
    table = (out / "protocol.md").read_text()
    assert "| Proposed | dbsi-paper |" in table and f"{summary['dbsi-paper']['psnr']:.2f}" in table
    assert "comparable" not in table.split("\n- ")[1]  # on Val294 itself the paper's numbers are comparable


def test_protocol_with_lpips_weights_reports_lpips(tmp_path, capsys):
    pytest.importorskip("torch")
    from test_metrics import _tiny_lpips_weights  # the random AlexNet-layout file the metric tests build

    weights = _tiny_lpips_weights(tmp_path / "lpips.pt")
    folder = _ebb_folder(tmp_path / "EBB", [4400])
    from lensblur import protocols

    protocol, results, label = protocols.run_protocol("dbsi-val294", folder, lpips_weights=str(weights))
    assert label == "EBB! Val294, 1 images"
    entry = {e["renderer"]: e for e in results.summary}["dbsi-paper"]
    assert np.isfinite(entry["lpips"]) and entry["lpips"] >= 0
    assert protocols.LPIPS_MISSING not in protocols.format_text(protocol, results.summary, label)


def test_protocol_and_renderer_together_is_a_one_line_error(tiny_set, tmp_path):
    from lensblur.errors import InputError

    with pytest.raises(InputError, match="--protocol chooses"):
        eval_command.run(_eval_args(tiny_set, tmp_path / "o", ["naive"], protocol="xu"))


def test_deeplens_and_xu_protocols_on_synthetic_scenes(tiny_set, tmp_path, capsys):
    pytest.importorskip("torch")
    from lensblur import protocols

    for name, ours in (("deeplens", "deeplens"), ("xu", "portrait-rnn")):
        protocol, results, label = protocols.run_protocol(name, tiny_set, limit=1)
        scored = {e["renderer"]: e for e in results.summary}
        assert ours in scored and np.isfinite(scored[ours]["psnr"]), results.notes
        text = protocols.format_text(protocol, results.summary, label)
        assert f"{scored[ours]['psnr']:.2f}" in text and "synth data, 1 images" in text


def test_markdown_table_with_a_description_column():
    from lensblur.evaluate import format_markdown

    rows = [{"renderer": "naive", "psnr": 27.6}, {"renderer": "scatter", "psnr": 34.1}]
    lines = format_markdown(rows, {"naive": "blend of blurred copies"}).splitlines()
    assert lines[0] == "| renderer | PSNR | what |" and lines[1] == "|---|---:|---|"
    assert lines[2].endswith("| blend of blurred copies |") and lines[3].endswith("|  |")
    assert format_markdown(rows).splitlines()[0] == "| renderer | PSNR |"

"""The command line end to end, through a subprocess: success and every kind of bad input.

Each failure must print exactly one line on stderr, exit non-zero, print no traceback and
leave no output file behind.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.jpg"
EXAMPLE_DEPTH = REPO / "examples" / "astronaut_disparity.png"


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_clean_failure(result, code, *words):
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.uniform(0, 255, (60, 80, 3))).astype(np.uint8)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), image)
    depth = np.zeros((60, 80), np.uint16)
    depth[20:40, 30:50] = 60000
    cv2.imwrite(str(tmp_path / "depth.png"), depth)
    return path, tmp_path / "depth.png"


def test_version_and_help():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("lensblur ")
    for command in ("render", "info", "depth", "synth", "eval"):
        result = run_cli(command, "--help")
        assert result.returncode == 0, result.stderr
        assert "examples:" in result.stdout


def test_usage_error_exits_2(tmp_path):
    result = run_cli("render", "x.jpg")  # -o and --depth missing
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_render_the_readme_example(tmp_path):
    out = tmp_path / "out.jpg"
    result = run_cli("render", EXAMPLE, "--depth", EXAMPLE_DEPTH, "--focus", "228,110", "--blur", "40", "-o", out)
    assert result.returncode == 0, result.stderr
    rendered = cv2.imread(str(out)).astype(np.float32)
    original = cv2.imread(str(EXAMPLE)).astype(np.float32)
    assert rendered.shape == original.shape
    face = (slice(80, 140), slice(190, 270))
    background = (slice(0, 200), slice(0, 90))  # the flag, far behind her
    def detail(img, region):
        return np.abs(cv2.Laplacian(img[region], cv2.CV_32F)).mean()
    assert detail(rendered, face) > 0.8 * detail(original, face)          # subject stays sharp
    assert detail(rendered, background) < 0.35 * detail(original, background)  # background melts


def test_render_with_camera_settings_shape_and_grain(photo, tmp_path):
    image, depth = photo
    out = tmp_path / "cam.png"
    result = run_cli("render", image, "--depth", depth, "--f-number", "1.4", "--focal-length", "50",
                     "--sensor-width", "36", "--near", "1", "--far", "10", "--focus", "40,30",
                     "--shape", "blades:6:15", "--grain", "auto", "--rim", "0.3", "--cat-eye", "0.5", "-q", "-o", out)
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(out)).shape == (60, 80, 3)


def test_refuses_existing_output_and_the_input(photo):
    image, depth = photo
    result = run_cli("render", image, "--depth", depth, "-o", image, "--overwrite")
    assert_clean_failure(result, 1)
    out = image.parent / "exists.png"
    out.write_bytes(b"keep me")
    result = run_cli("render", image, "--depth", depth, "-o", out)
    assert_clean_failure(result, 1, "exists")
    assert out.read_bytes() == b"keep me"


def _bad_inputs(tmp_path, photo):
    image, depth = photo
    zero = tmp_path / "zero.jpg"
    zero.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    ok, encoded = cv2.imencode(".jpg", cv2.imread(str(image)))
    truncated.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    text = tmp_path / "text.jpg"
    text.write_text("this is not a picture\n")
    wrong_aspect = tmp_path / "wide_depth.png"
    cv2.imwrite(str(wrong_aspect), np.zeros((60, 200), np.uint16))
    nan_depth = tmp_path / "nan_depth.npy"
    np.save(nan_depth, np.full((60, 80), np.nan, np.float32))
    return {
        "zero-byte image": ([zero, "--depth", depth], "zero.jpg"),
        "truncated jpeg": ([truncated, "--depth", depth], "truncated.jpg"),
        "text named .jpg": ([text, "--depth", depth], "text.jpg"),
        "missing image": ([tmp_path / "missing.jpg", "--depth", depth], "missing.jpg"),
        "wrong aspect depth": ([image, "--depth", wrong_aspect], "aspect"),
        "nan depth": ([image, "--depth", nan_depth], "nan_depth.npy"),
        "missing depth": ([image, "--depth", tmp_path / "nope.png"], "nope.png"),
    }


@pytest.mark.parametrize("case", ["zero-byte image", "truncated jpeg", "text named .jpg", "missing image",
                                  "wrong aspect depth", "nan depth", "missing depth"])
def test_bad_input_gives_one_line_and_no_output(case, photo, tmp_path):
    args, word = _bad_inputs(tmp_path, photo)[case]
    out = tmp_path / "out.png"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    result = run_cli("render", *args, "-o", out)
    assert_clean_failure(result, 1, word)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in before)  # no temp files
    for path, mtime in before.items():  # inputs untouched
        assert path.stat().st_mtime_ns == mtime


def test_missing_output_folder(photo, tmp_path):
    image, depth = photo
    result = run_cli("render", image, "--depth", depth, "-o", tmp_path / "no" / "such" / "out.png")
    assert_clean_failure(result, 1)
    assert not (tmp_path / "no").exists()


def test_unwritable_output(photo, tmp_path):
    image, depth = photo
    if os.geteuid() == 0:
        target = Path("/proc/lensblur-test-output.png")  # nothing can be created in /proc, even by root
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "out.png"
    result = run_cli("render", image, "--depth", depth, "-o", target)
    assert_clean_failure(result, 1)
    assert not target.exists()


def test_unsupported_output_format(photo, tmp_path):
    image, depth = photo
    result = run_cli("render", image, "--depth", depth, "-o", tmp_path / "out.xyz")
    assert_clean_failure(result, 1)
    assert not (tmp_path / "out.xyz").exists()


def test_info_and_depth_commands(photo, tmp_path):
    image, depth = photo
    result = run_cli("info", image)
    assert result.returncode == 0, result.stderr
    assert "width: 80" in result.stdout and "height: 60" in result.stdout
    result = run_cli("info", tmp_path / "missing.png")
    assert_clean_failure(result, 1, "missing.png")
    out, preview = tmp_path / "d.png", tmp_path / "p.png"
    result = run_cli("depth", image, "--depth", depth, "-o", out, "--preview", preview)
    assert result.returncode == 0, result.stderr
    disparity = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert disparity.dtype == np.uint16 and disparity.shape == (60, 80)
    assert disparity[30, 40] > disparity[5, 5]
    assert cv2.imread(str(preview)).shape == (60, 80, 3)


SAMPLES = REPO.parent / "shared" / "samples"


def test_photo_without_embedded_depth_is_estimated_or_refused_when_embedded_is_required(photo, tmp_path):
    image, _ = photo
    result = run_cli("render", image, "-o", tmp_path / "out.png", "-v", "-q", "--focus", "auto")
    assert result.returncode == 0, result.stderr
    assert "automatic estimate" in result.stderr and "suggested focus" in result.stderr
    assert cv2.imread(str(tmp_path / "out.png")).shape == (60, 80, 3)
    result = run_cli("render", image, "--depth", "embedded", "-o", tmp_path / "out2.png")
    assert_clean_failure(result, 1, "no depth map")
    assert not (tmp_path / "out2.png").exists()


@pytest.mark.skipif(not (SAMPLES / "google" / "lens_blur_dahlias.jpg").exists(), reason="shared samples absent")
def test_render_uses_depth_and_sharp_original_embedded_by_a_phone(tmp_path):
    sample = SAMPLES / "google" / "lens_blur_dahlias.jpg"
    info = run_cli("info", sample)
    assert info.returncode == 0 and "GDepth" in info.stdout and "GImage" in info.stdout
    out = tmp_path / "dahlias.jpg"
    result = run_cli("render", sample, "-o", out, "-v", "-q")
    assert result.returncode == 0, result.stderr
    assert "GDepth" in result.stderr and "sharp original" in result.stderr
    rendered = cv2.imread(str(out)).astype(np.float32)
    assert rendered.shape[:2] == (2048, 1536)
    # the dahlia the phone focused on stays sharp, the garden behind it is blurred
    def detail(region):
        return np.abs(cv2.Laplacian(rendered[region], cv2.CV_32F)).mean()
    flower = (slice(950, 1250), slice(300, 650))
    garden = (slice(100, 400), slice(900, 1400))
    assert detail(flower) > 2 * detail(garden)


@pytest.mark.skipif(not (SAMPLES / "apple" / "image-with-matte.jpg").exists(), reason="shared samples absent")
def test_render_iphone_portrait_with_embedded_disparity_and_matte(tmp_path):
    out = tmp_path / "portrait.jpg"
    result = run_cli("render", SAMPLES / "apple" / "image-with-matte.jpg", "-o", out, "-v", "-q")
    assert result.returncode == 0, result.stderr
    assert "Apple MPF disparity" in result.stderr
    assert cv2.imread(str(out)).shape[:2] == (4032, 3024)


def test_render_and_depth_with_an_onnx_depth_model(photo, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    # a tiny "depth network": disparity = mean of the normalised channels (brighter = nearer)
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None] * 4)
    graph = helper.make_graph([helper.make_node("ReduceMean", ["X"], ["Y"], axes=[1], keepdims=1)], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "tiny.onnx"))
    image = np.zeros((60, 80, 3), np.uint8)
    image[20:40, 30:50] = 255  # a bright, hence near, square
    cv2.imwrite(str(tmp_path / "square.png"), image)
    out = tmp_path / "d.png"
    result = run_cli("depth", tmp_path / "square.png", "--depth-model", tmp_path / "tiny.onnx", "--depth-preset",
                     "midas", "-o", out, "-v")
    assert result.returncode == 0, result.stderr
    assert "tiny.onnx" in result.stderr
    disparity = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert disparity[30, 40] > 60000 and disparity[5, 5] < 5000
    result = run_cli("render", tmp_path / "square.png", "--depth-model", tmp_path / "tiny.onnx", "-o",
                     tmp_path / "r.png", "-q")
    assert result.returncode == 0, result.stderr
    result = run_cli("render", tmp_path / "square.png", "--depth-model", tmp_path / "missing.onnx", "-o",
                     tmp_path / "r2.png")
    assert_clean_failure(result, 1, "missing.onnx")
    assert not (tmp_path / "r2.png").exists()


def test_info_says_which_depth_and_focus_render_would_use():
    result = run_cli("info", EXAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    import json
    info = json.loads(result.stdout)
    assert info["width"] == 512 and info["embedded"] == []
    assert info["depth_used"] in ("automatic estimate",) or info["depth_used"].startswith("none")
    if info["depth_used"] == "automatic estimate":
        assert info["why"], "the estimate explains its choice"

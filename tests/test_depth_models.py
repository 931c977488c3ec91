"""A depth model set once (lensblur config, LENSBLUR_DEPTH_MODEL) and used by every command, the API
and the web app: tiny models with Depth Anything V2's and MiDaS's ONNX conventions and a tiny
DeepLens depth checkpoint, all built here. The settings folder is a tmp one (conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from lensblur import config  # noqa: E402
from lensblur.depth.model_choice import ENV_MODEL, ENV_PRESET, check_model, parse_model, resolve_model  # noqa: E402
from lensblur.depth_source import estimate_depth  # noqa: E402
from lensblur.errors import InputError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _onnx(path: Path, input_name: str, input_shape, output_shape, negate: bool = False) -> Path:
    """Disparity = (−)channel mean of the normalised input, output of rank len(output_shape)."""
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)
    y = helper.make_tensor_value_info("depth", TensorProto.FLOAT, output_shape)
    keep = 1 if len(output_shape) == 4 else 0
    nodes = [helper.make_node("ReduceMean", [input_name], ["M" if negate else "depth"], axes=[1], keepdims=keep)]
    if negate:
        nodes.append(helper.make_node("Neg", ["M"], ["depth"]))
    model = helper.make_model(helper.make_graph(nodes, "tiny-depth", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def depth_anything_like(path: Path, negate: bool = False) -> Path:
    """Depth Anything V2's export convention: input 'image' 1×3×H×W (dynamic H, W), output 1×H×W."""
    return _onnx(path, "image", [1, 3, "height", "width"], [1, "height", "width"], negate)


def midas_like(path: Path) -> Path:
    """MiDaS's export convention: a fixed square input 1×3×64×64 (letterboxed), output 1×64×64."""
    return _onnx(path, "0", [1, 3, 64, 64], [1, 64, 64])


def deeplens_checkpoint(path: Path) -> Path:
    """A DeepLens depth module checkpoint (small backbone, random weights) as train writes it."""
    torch = pytest.importorskip("torch")
    from lensblur.systems.deeplens.depth import DepthPredictor
    from lensblur.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = DepthPredictor("small")
    save_checkpoint(path, "deeplens", {"module": "depth", "backbone": "small", "size": [32, 40]},
                    model.state_dict())
    return path


def square_photo(folder: Path) -> tuple[Path, np.ndarray]:
    """A dark 60×80 photo with a bright (so, for the tiny models, near) square."""
    image = np.full((60, 80, 3), 30, np.uint8)
    image[20:40, 30:50] = 230
    path = folder / "square.png"
    cv2.imwrite(str(path), image)
    from lensblur.io.images import read_image
    return path, read_image(path).pixels


def run_cli(*args, env=None):
    environment = dict(os.environ, PYTHONPATH=str(REPO / "src"), **(env or {}))
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=300)


def one_line_failure(result, *words):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# ------------------------------------------------------------------------------------------ API


@pytest.mark.parametrize("build,preset", [(depth_anything_like, None), (midas_like, "midas")])
def test_onnx_models_of_both_conventions_find_the_near_square(tmp_path, build, preset):
    model = build(tmp_path / "model.onnx")
    _, pixels = square_photo(tmp_path)
    choice = estimate_depth(pixels, str(model), preset)
    assert choice.disparity.shape == (60, 80)
    assert choice.disparity[30, 40] > 0.9 and choice.disparity[5, 5] < 0.1
    assert choice.source.startswith(f"model {model}") and "set by --depth-model" in choice.source


def test_a_deeplens_depth_checkpoint_is_a_depth_model(tmp_path):
    checkpoint = deeplens_checkpoint(tmp_path / "deeplens_depth.pt")
    _, pixels = square_photo(tmp_path)
    for written in (f"deeplens:{checkpoint}", str(checkpoint)):  # a bare .pt means deeplens
        choice = estimate_depth(pixels, written)
        assert choice.disparity.shape == (60, 80) and np.isfinite(choice.disparity).all()
        assert choice.disparity.min() == 0 and choice.disparity.max() == 1
        assert "deeplens" in choice.source
    # the same as running the module by hand at the size the estimator chose
    import torch

    from lensblur.color import linear_to_srgb
    from lensblur.systems.deeplens.depth_estimator import load_depth_module, network_size

    module, trained = load_depth_module(checkpoint)
    rows, cols = network_size(60, 80, trained)
    assert (rows % 8, cols % 8) == (0, 0) and abs(rows * cols - 32 * 40) <= 0.3 * 32 * 40
    small = cv2.resize(linear_to_srgb(pixels), (cols, rows), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        direct = module(torch.from_numpy(small.transpose(2, 0, 1).copy())[None])[0][0, 0].numpy()
    direct = cv2.resize(direct, (80, 60), interpolation=cv2.INTER_LINEAR)
    direct = (direct - direct.min()) / (direct.max() - direct.min())
    assert np.abs(choice.disparity - direct).max() < 1e-4


def test_a_deeplens_rendering_checkpoint_is_refused_as_a_depth_model():
    shipped = REPO / "src" / "lensblur" / "systems" / "deeplens" / "weights" / "deeplens.pt"
    with pytest.raises(InputError, match="rendering checkpoint, not a depth one"):
        check_model(parse_model(f"deeplens:{shipped}"))


def test_precedence_option_then_environment_then_settings_then_estimate(tmp_path, monkeypatch):
    in_file = depth_anything_like(tmp_path / "in_file.onnx")
    in_env = depth_anything_like(tmp_path / "in_env.onnx", negate=True)
    on_line = midas_like(tmp_path / "on_line.onnx")
    assert resolve_model() is None  # nothing set: the weight-free estimate
    config.save({"depth-model": str(in_file)})
    assert resolve_model().path == str(in_file) and resolve_model().origin.startswith("settings file")
    monkeypatch.setenv(ENV_MODEL, str(in_env))
    assert resolve_model().path == str(in_env) and resolve_model().origin == ENV_MODEL
    chosen = resolve_model(str(on_line), "midas")
    assert (chosen.path, chosen.preset, chosen.origin) == (str(on_line), "midas", "--depth-model")
    assert resolve_model("none") is None and resolve_model("NONE") is None
    # and the estimate follows: the environment's model is the negated one (bright = far)
    _, pixels = square_photo(tmp_path)
    by_env = estimate_depth(pixels)
    assert by_env.disparity[30, 40] < 0.1 and "set by LENSBLUR_DEPTH_MODEL" in by_env.source
    monkeypatch.delenv(ENV_MODEL)
    by_file = estimate_depth(pixels)
    assert by_file.disparity[30, 40] > 0.9 and "set by settings file" in by_file.source
    assert estimate_depth(pixels, "none").source == "automatic estimate"


def test_a_preset_comes_with_its_model(tmp_path, monkeypatch):
    model = depth_anything_like(tmp_path / "m.onnx")
    config.save({"depth-model": str(model), "depth-preset": "midas"})
    assert resolve_model().preset == "midas"
    monkeypatch.setenv(ENV_MODEL, str(model))  # the file's preset does not apply to the env's model
    assert resolve_model().preset is None
    monkeypatch.setenv(ENV_PRESET, "midas-small")
    assert resolve_model().preset == "midas-small"
    assert resolve_model(None, "metric-depth").preset == "metric-depth"  # the option wins
    with pytest.raises(InputError, match="for ONNX models"):
        parse_model("deeplens:x.pt", "midas")


def test_a_broken_configured_model_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    config.save({"depth-model": str(broken)})
    _, pixels = square_photo(tmp_path)
    with pytest.raises(InputError, match="settings file .*config.toml") as error:
        estimate_depth(pixels)
    assert "\n" not in str(error.value) and "broken.onnx" in str(error.value)
    monkeypatch.setenv(ENV_MODEL, str(tmp_path / "missing.onnx"))
    with pytest.raises(InputError, match="no such file.*LENSBLUR_DEPTH_MODEL"):
        estimate_depth(pixels)


def test_settings_file_round_trip_and_its_errors(tmp_path):
    awkward = str(tmp_path / 'a "quoted" \\ päth\tx.onnx')
    path = config.save({"depth-model": awkward, "depth-preset": "midas"})
    assert path == Path(os.environ["XDG_CONFIG_HOME"]) / "lensblur" / "config.toml"
    assert config.load() == {"depth-model": awkward, "depth-preset": "midas"}
    path.write_text('depth-model = "unterminated\n')
    with pytest.raises(InputError, match="not valid TOML"):
        config.load()
    path.write_text('colour = "red"\n')
    with pytest.raises(InputError, match="unknown key 'colour'"):
        config.load()
    path.write_text("depth-model = 3\n")
    with pytest.raises(InputError, match="must be a string"):
        config.load()


def test_the_api_uses_the_configured_model(tmp_path):
    import lensblur

    model = depth_anything_like(tmp_path / "m.onnx")
    config.save({"depth-model": str(model)})
    _, pixels = square_photo(tmp_path)
    estimate = lensblur.estimate_depth(pixels)
    assert estimate.disparity[30, 40] > 0.9 and estimate.disparity[5, 5] < 0.1
    assert any("m.onnx" in note for note in estimate.notes)


# ------------------------------------------------------------------------------------------ CLI


def test_config_command_round_trip_and_validation(tmp_path):
    model = midas_like(tmp_path / "midas.onnx")
    result = run_cli("config", "set", "depth-model", model, "--preset", "midas")
    assert result.returncode == 0, result.stderr
    assert config.load() == {"depth-model": str(model), "depth-preset": "midas"}
    result = run_cli("config", "get", "depth-model")
    assert result.returncode == 0 and result.stdout.strip() == str(model)
    listing = run_cli("config", "list", env={ENV_MODEL: "/elsewhere/x.onnx"}).stdout
    assert f"depth-model = {model}" in listing and "LENSBLUR_DEPTH_MODEL = /elsewhere/x.onnx" in listing
    assert "model /elsewhere/x.onnx" in listing  # what is in use: the environment's
    # validation on set: the file must load and run as a depth model; nothing is stored otherwise
    (tmp_path / "text.onnx").write_text("hello")
    one_line_failure(run_cli("config", "set", "depth-model", tmp_path / "text.onnx"), "not a usable ONNX file")
    rank3 = _onnx(tmp_path / "rank3.onnx", "x", [1, 3, 8], [1, 8])
    one_line_failure(run_cli("config", "set", "depth-model", rank3), "rank 3")
    one_line_failure(run_cli("config", "set", "depth-model", tmp_path / "weights.bin"), "deeplens:PATH")
    one_line_failure(run_cli("config", "set", "depth-preset", "dpt"), "unknown ONNX depth preset")
    assert config.load()["depth-model"] == str(model)
    assert run_cli("config", "unset", "depth-model").returncode == 0
    assert config.load() == {}
    one_line_failure(run_cli("config", "get", "depth-model"), "not set")


def test_every_command_uses_the_configured_model(tmp_path):
    photo, _ = square_photo(tmp_path)
    model = depth_anything_like(tmp_path / "da2.onnx")
    assert run_cli("config", "set", "depth-model", model).returncode == 0
    result = run_cli("depth", photo, "-o", tmp_path / "d.png", "-v")
    assert result.returncode == 0, result.stderr
    assert f"depth: model {model} (onnx, preset depth-anything-v2; set by settings file" in result.stderr
    disparity = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert disparity[30, 40] > 60000 and disparity[5, 5] < 5000
    result = run_cli("render", photo, "-o", tmp_path / "r.png", "-v", "-q")
    assert result.returncode == 0 and "set by settings file" in result.stderr, result.stderr
    info = json.loads(run_cli("info", photo, "--json").stdout)
    assert info["depth_used"].startswith(f"model {model}")
    result = run_cli("batch", photo, "-o", tmp_path / "out", "--workers", "0", "-q")
    assert result.returncode == 0, result.stderr
    row = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[-1])
    assert row["status"] == "done" and row["depth_source"].startswith(f"model {model}")
    # --depth-model none: the weight-free estimate in spite of the settings
    info = json.loads(run_cli("info", photo, "--json", "--depth-model", "none").stdout)
    assert info["depth_used"] == "automatic estimate"


def test_environment_overrides_the_settings_and_the_option_overrides_both(tmp_path):
    photo, _ = square_photo(tmp_path)
    near_bright = depth_anything_like(tmp_path / "near_bright.onnx")
    far_bright = depth_anything_like(tmp_path / "far_bright.onnx", negate=True)
    config.save({"depth-model": str(near_bright)})
    result = run_cli("depth", photo, "-o", tmp_path / "env.png", env={ENV_MODEL: str(far_bright)})
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "env.png"), cv2.IMREAD_UNCHANGED)[30, 40] < 5000
    result = run_cli("depth", photo, "-o", tmp_path / "opt.png", "--depth-model", near_bright,
                     env={ENV_MODEL: str(far_bright)})
    assert cv2.imread(str(tmp_path / "opt.png"), cv2.IMREAD_UNCHANGED)[30, 40] > 60000


def test_a_broken_configured_model_fails_each_command_in_one_line(tmp_path):
    photo, _ = square_photo(tmp_path)
    config.save({"depth-model": str(tmp_path / "gone.onnx")})
    for args in (["render", photo, "-o", tmp_path / "r.png"], ["depth", photo, "-o", tmp_path / "d.png"],
                 ["batch", photo, "-o", tmp_path / "out", "--workers", "0"]):
        one_line_failure(run_cli(*args), "gone.onnx", "no such file")
    assert not (tmp_path / "r.png").exists() and not (tmp_path / "d.png").exists()
    info = json.loads(run_cli("info", photo, "--json").stdout)
    assert info["depth_used"].startswith("none (") and "gone.onnx" in info["depth_used"]
    # a photo with its own depth map does not need the model
    result = run_cli("render", REPO / "examples" / "astronaut.jpg", "--depth",
                     REPO / "examples" / "astronaut_disparity.png", "-o", tmp_path / "r.png", "-q")
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------ web


def test_web_app_uses_the_configured_model_under_concurrent_uploads(tmp_path):
    import io
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image
    from starlette.testclient import TestClient

    from lensblur.web.app import create_app

    config.save({"depth-model": str(depth_anything_like(tmp_path / "web.onnx"))})
    photos = []
    for shade in (60, 120, 180, 240):
        image = np.full((48, 64, 3), 20, np.uint8)
        image[10:30, 20:40] = shade
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        photos.append(buffer.getvalue())
    app = create_app(max_upload_bytes=2_000_000, max_pixels=1_000_000, temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        def upload(data):
            response = client.post("/api/sessions?name=p.png", content=data)
            assert response.status_code == 201, response.text
            sid = response.json()["id"]
            return response.json(), client.get(f"/api/sessions/{sid}/preview", params={"blur": 4})

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(upload, photos * 2))
    for info, preview in results:
        assert info["depth_source"].startswith(f"model {tmp_path / 'web.onnx'}"), info["depth_source"]
        assert info["focus_disparity"] > 0.9  # the centre lies in the square the model calls nearest
        assert preview.status_code in (200, 204)


def test_a_renderers_own_depth_model_comes_after_everything_set(tmp_path, monkeypatch):
    """--renderer deeplens brings its depth module, but only where nothing is given or set, and
    never over an explicit --depth-model none; batch resolves it the same way for its workers."""
    from lensblur.depth.model_choice import own_depth_model, resolve_for_workers

    fallback = own_depth_model("deeplens")
    assert own_depth_model("scatter") is None
    own = resolve_model(None, None, fallback)
    assert own.kind == "deeplens" and own.path.endswith("deeplens-depth.pt") and own.origin == "the renderer"
    assert resolve_model("none", None, fallback) is None
    assert resolve_for_workers(None, None, fallback).path == str(Path(own.path).resolve())
    assert resolve_for_workers("none", None, fallback) == "none"
    configured = depth_anything_like(tmp_path / "set.onnx")
    config.save({"depth-model": str(configured)})
    assert resolve_model(None, None, fallback).path == str(configured)
    monkeypatch.setenv(ENV_MODEL, str(configured))
    assert resolve_for_workers(None, None, fallback).path == str(configured.resolve())

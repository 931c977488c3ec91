"""BGGAN: Glass-Net pinned to the paper, the critic, the losses, the VGG19 loader, the pooled
instance norm and its ONNX export, training and rendering through the CLI and the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from lensblur.cli import main  # noqa: E402
from lensblur.errors import InputError  # noqa: E402
from lensblur.lens import Lens  # noqa: E402
from lensblur.renderers import render_with  # noqa: E402
from lensblur.synth.dataset import generate  # noqa: E402
from lensblur.synth.scene import make_scene  # noqa: E402
from lensblur.systems.bggan import losses  # noqa: E402
from lensblur.systems.bggan import training as bggan_training  # noqa: E402
from lensblur.systems.bggan.model import (STAGE_CHANNELS, GlassNet, GlassStage, MultiReceptiveFieldCritic,  # noqa: E402
                                          PatchCritic, PooledInstanceNorm, ResidualBlock, VGG19Features,
                                          load_vgg19, receptive_field)
from lensblur.systems.bggan.renderer import render_srgb  # noqa: E402
from lensblur.training.checkpoint import save_checkpoint, shipped_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = 0.125  # 2/16 and 4/32 channels: fast enough for a test


# ------------------------------------------------------------------------------ paper's numbers

def test_stage_channel_counts_are_the_papers():
    assert STAGE_CHANNELS == ((16, 128), (32, 256))
    net = GlassNet()
    assert net.stage1.widths == [16, 32, 64, 128] and net.stage2.widths == [32, 64, 128, 256]
    assert net.stage1.blocks[0].body[0].weight.shape == (128, 128, 3, 3)
    assert net.stage2.blocks[-1].body[3].weight.shape == (256, 256, 3, 3)
    assert net.stage1.input[0].in_channels == 3 and net.stage2.input[0].in_channels == 3
    assert net.stage1.output.out_channels == 3 and net.stage2.output.out_channels == 3


def test_nine_residual_blocks_in_the_papers_layer_order():
    net = GlassNet()
    for stage in (net.stage1, net.stage2):
        assert len(stage.blocks) == 9
        for block in stage.blocks:
            kinds = [type(layer) for layer in block.body]
            assert kinds == [nn.Conv2d, nn.ReLU, PooledInstanceNorm, nn.Conv2d, nn.ReLU]


def test_three_stride_two_convolutions_and_transposed_convolutions_with_concat_skips():
    stage = GlassStage(16, 128)
    assert [layer[0].stride for layer in stage.down] == [(2, 2)] * 3
    assert [type(layer[0]) for layer in stage.up] == [nn.ConvTranspose2d] * 3
    assert [layer[0].stride for layer in stage.up] == [(2, 2)] * 3
    # the decoder layers after the first read their input concatenated with the mirrored encoder map
    assert [layer[0].in_channels for layer in stage.up] == [128, 128, 64]
    assert stage.output.in_channels == 32
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    out = stage(x)
    assert out.shape == x.shape and out.abs().max() <= 1  # tanh output


def test_stage_one_predicts_the_residual_and_stage_two_refines_it():
    torch.manual_seed(0)
    net = GlassNet(TINY).eval()
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    rough, out = net.stages(image)
    torch.testing.assert_close(rough, image - net.stage1(image))
    torch.testing.assert_close(out, net.stage2(rough))
    torch.testing.assert_close(net(image), out)


def test_loss_weights_are_the_papers():
    assert losses.FINETUNE_WEIGHTS == {"l1": 0.5, "ssim": 0.05, "vgg": 0.1, "adv": 1.0}
    assert losses.PRETRAIN_WEIGHTS == {"l1": 1.0, "ssim": 1.0}
    torch.manual_seed(1)
    out, target = torch.rand(1, 3, 24, 24) * 2 - 1, torch.rand(1, 3, 24, 24) * 2 - 1
    features = nn.Conv2d(3, 2, 3)
    critic = MultiReceptiveFieldCritic(depths=(1,), channels=2)
    total, parts = losses.hybrid_loss(out, target, features, critic)
    expected = 0.5 * parts["l1"] + 0.05 * parts["ssim"] + 0.1 * parts["vgg"] + parts["adv"]
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(parts["adv"], -critic(out).mean())                      # Eq. 2
    torch.testing.assert_close(parts["vgg"], (features(out) - features(target)).abs().mean())  # Eq. 1
    without, parts7 = losses.hybrid_loss(out, target, features, None)                  # Eq. 7
    assert "adv" not in parts7
    torch.testing.assert_close(without, 0.5 * parts7["l1"] + 0.05 * parts7["ssim"] + 0.1 * parts7["vgg"])
    assert float(losses.ssim_term(target, target)) == pytest.approx(0, abs=1e-5)


def test_adam_betas_and_learning_rate_are_the_papers(tmp_path, scenes, monkeypatch):
    assert losses.ADAM_BETAS == (0.0, 0.9) and losses.LEARNING_RATE == 1e-4
    seen = []
    real_adam = torch.optim.Adam

    def recording_adam(params, **options):
        seen.append(options)
        return real_adam(params, **options)

    monkeypatch.setattr(torch.optim, "Adam", recording_adam)
    pre = tmp_path / "pre.pt"
    assert _train(scenes, pre, "--steps", "1") == 0
    assert _train(scenes, tmp_path / "ft.pt", "--phase", "finetune", "--init", str(pre), "--steps", "1") == 0
    assert len(seen) == 3  # generator (pretrain), generator and critic (finetune)
    assert all(o["betas"] == (0.0, 0.9) and o["lr"] == 1e-4 for o in seen)


# ------------------------------------------------------------------------------ normalisation

def test_pooled_instance_norm_equals_instance_norm():
    x = torch.randn(2, 5, 12, 20) * 3 + 1
    torch.testing.assert_close(PooledInstanceNorm()(x), nn.functional.instance_norm(x, eps=1e-5),
                               atol=1e-5, rtol=1e-5)


def test_the_cli_starts_without_importing_torch():
    import os
    import subprocess
    import sys

    code = ("import sys\nfrom lensblur.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n"
            "    pass\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr
    from lensblur.systems.bggan.model import NORMS

    assert bggan_training.NORM_CHOICES == NORMS


@pytest.mark.parametrize("norm, kind", [("batch", nn.BatchNorm2d), ("none", nn.Identity),
                                        ("instance", PooledInstanceNorm)])
def test_normalisation_ablations(norm, kind):
    block = ResidualBlock(8, norm)
    assert isinstance(block.body[2], kind)
    assert GlassNet(TINY, norm=norm).config["norm"] == norm
    with pytest.raises(ValueError):
        GlassNet(TINY, norm="layer")


# ------------------------------------------------------------------------------ critic

@pytest.mark.parametrize("depth, field", [(2, 34), (3, 70), (4, 142)])
def test_patch_critic_receptive_field(depth, field):
    assert receptive_field(depth) == field
    torch.manual_seed(0)
    critic = PatchCritic(depth, channels=2)
    for layer in critic.net:
        if isinstance(layer, nn.Conv2d):
            nn.init.constant_(layer.weight, 0.1)
    size = field + 64
    image = torch.zeros(1, 3, size, size, requires_grad=True)
    scores = critic(image)
    centre = scores[0, 0, scores.shape[2] // 2, scores.shape[3] // 2]
    gradient, = torch.autograd.grad(centre, image)
    rows = torch.nonzero(gradient.abs().sum(dim=(0, 1, 3)))
    assert int(rows.max() - rows.min() + 1) == field


def test_gradient_penalty_vanishes_for_a_unit_gradient_critic():
    weight = torch.rand(1, 3, 8, 8)
    weight /= weight.norm()

    def critic(x):
        return (x * weight).sum(dim=(1, 2, 3))

    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    assert float(losses.gradient_penalty(critic, real, fake)) == pytest.approx(0, abs=1e-6)
    assert float(losses.gradient_penalty(lambda x: 3 * critic(x), real, fake)) == pytest.approx(4, rel=1e-4)


def test_multi_receptive_field_critic_scores_each_image():
    critic = MultiReceptiveFieldCritic(channels=2)
    assert len(critic.critics) == 3
    assert critic(torch.rand(2, 3, 64, 64)).shape == (2,)


# ------------------------------------------------------------------------------ VGG19

TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def test_vgg19_stack_has_torchvisions_names_and_ends_at_relu5_4():
    model = VGG19Features(width=1 / 32)
    names = sorted({int(key.split(".")[1]) for key in model.state_dict()})
    assert names == TORCHVISION_CONV_INDICES
    assert len(model.features) == 36 and isinstance(model.features[35], nn.ReLU)  # relu5_4
    assert VGG19Features().features[34].weight.shape == (512, 512, 3, 3)            # conv5_4


def test_vgg19_loader_reads_a_torchvision_layout_file(tmp_path):
    torch.manual_seed(3)
    source = VGG19Features(width=1 / 32)
    for parameter in source.parameters():
        nn.init.normal_(parameter, std=0.3)
    state = {f"features.{k.split('.', 1)[1]}": v for k, v in source.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)   # torchvision files hold the classifier too
    path = tmp_path / "vgg19-tiny.pth"
    torch.save(state, path)
    loaded = load_vgg19(torch.load(path, weights_only=True), width=1 / 32)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(loaded(image), source(image))
    assert not any(p.requires_grad for p in loaded.parameters())
    del state["features.34.weight"]
    with pytest.raises(ValueError, match="features.34.weight"):
        load_vgg19(state, width=1 / 32)
    with pytest.raises(ValueError, match="VGG19 needs"):
        load_vgg19({**source.state_dict(), "features.0.weight": torch.zeros(1, 3, 3, 3)}, width=1 / 32)


def test_vgg_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not torch")
    with pytest.raises(InputError, match="VGG19 weights"):
        bggan_training.load_vgg_file(str(bad), "cpu")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(InputError, match="not a torchvision VGG19"):
        bggan_training.load_vgg_file(str(tmp_path / "wrong.pth"), "cpu")


# ------------------------------------------------------------------------------ export

def _tiny_checkpoint(path, norm="instance"):
    torch.manual_seed(4)
    net = GlassNet(TINY, norm=norm)
    if norm == "batch":  # non-trivial running statistics
        net.train()
        net(torch.rand(2, 3, 16, 16))
    save_checkpoint(path, "bggan", {"model": net.config, "scene_short_side": 32}, net.state_dict())
    return path


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_onnx_export_matches_torch_and_holds_no_norm_or_reduce_op(tmp_path, norm):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from lensblur.systems.bggan.export import FORBIDDEN_OPS, export_onnx, graph_ops
    from lensblur.systems.bggan.renderer import load_bggan

    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt", norm)
    summary = export_onnx(checkpoint, tmp_path / "g.onnx", 32, 48)
    ops = graph_ops(tmp_path / "g.onnx")
    assert not set(ops) & set(FORBIDDEN_OPS), ops
    assert "InstanceNormalization" not in ops and not any(op.startswith("Reduce") for op in ops)
    assert ops["ConvTranspose"] == 6 and ops["Tanh"] == 2
    if norm == "instance":
        assert ops["AveragePool"] == 2 * 2 * 9  # mean and variance in each of 18 residual blocks
    assert summary["size"] == "32x48"
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 48)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": image})[0]
    model, _ = load_bggan(checkpoint)
    with torch.no_grad():
        want = model(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_export_cli(tmp_path, capsys):
    pytest.importorskip("onnx")
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "g.onnx"
    assert main(["export", "bggan", "--format", "onnx", "--out", str(out), "--checkpoint", str(checkpoint),
                 "--size", "16x24"]) == 0
    assert out.is_file() and "AveragePool" in capsys.readouterr().out
    assert main(["export", "bggan", "--out", str(out), "--checkpoint", str(checkpoint), "--size", "16x24"]) != 0
    assert "already exists" in capsys.readouterr().err
    bad = tmp_path / "h.onnx"
    assert main(["export", "bggan", "--out", str(bad), "--checkpoint", str(checkpoint), "--size", "15x24"]) == 1
    err = capsys.readouterr().err.strip()
    assert "multiples of 8" in err and len(err.splitlines()) == 1 and not bad.exists()


# ------------------------------------------------------------------------------ training and rendering

@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bggan-scenes")
    generate(folder, 3, 5, 64, 80, workers=0, focus="nearest")
    return folder


def _train(folder, out, *extra):
    return main(["train", "-q", "bggan", "--data", str(folder), "--out", str(out), "--threads", "1",
                 "--crop", "64x64", "--batch", "2", "--width", str(TINY), "--critic-channels", "2", *extra])


def test_train_finetune_and_render_through_cli_and_api(scenes, tmp_path, capsys):
    pre, tuned, ship = tmp_path / "pre.pt", tmp_path / "ft.pt", tmp_path / "ship.pt"
    assert _train(scenes, pre, "--steps", "2") == 0
    assert _train(scenes, tuned, "--phase", "finetune", "--init", str(pre), "--steps", "2", "--ship", str(ship)) == 0
    summary = capsys.readouterr().out
    assert "dropped: no --vgg weights" in summary and "WGAN-GP" in summary
    payload = torch.load(tuned, weights_only=True)
    assert payload["config"]["scene_short_side"] == 64 and payload["config"]["discriminator"]
    assert "critic" in payload["optimizer"]
    shipped = torch.load(ship, weights_only=True)
    assert shipped["optimizer"] is None
    assert all(v.dtype == torch.float16 for v in shipped["model"].values() if torch.is_floating_point(v))
    # the API
    image = np.random.default_rng(6).random((40, 60, 3), dtype=np.float32)
    out = render_with("bggan", image, np.zeros((40, 60), np.float32), Lens(), checkpoint=str(ship))
    assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # the CLI
    import cv2

    photo, result = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(photo), (image * 255).astype(np.uint8))
    assert main(["render", str(photo), "--renderer", "bggan", "--checkpoint", str(ship), "-o", str(result),
                 "-q"]) == 0
    assert cv2.imread(str(result)).shape == (40, 60, 3)


def test_trains_on_the_ebb_folder_layout(tmp_path, capsys):
    import cv2

    rng = np.random.default_rng(8)
    for kind in ("original", "bokeh"):
        (tmp_path / "EBB" / "train" / kind).mkdir(parents=True)
    for number in range(2):
        photo = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "EBB" / "train" / "original" / f"{number}.jpg"), photo)
        cv2.imwrite(str(tmp_path / "EBB" / "train" / "bokeh" / f"{number}.jpg"), cv2.GaussianBlur(photo, (9, 9), 3))
    out = tmp_path / "ebb.pt"
    assert _train(tmp_path / "EBB", out, "--steps", "1", "--load-size", "64x80") == 0
    assert "examples: 2" in capsys.readouterr().out
    assert torch.load(out, weights_only=True)["config"]["scene_short_side"] == 64


def test_resume_continues_and_phases_are_checked(scenes, tmp_path, capsys):
    out = tmp_path / "run.pt"
    assert _train(scenes, out, "--steps", "1") == 0
    assert _train(scenes, out, "--steps", "2", "--resume") == 0
    assert torch.load(out, weights_only=True)["step"] == 2
    capsys.readouterr()
    assert _train(scenes, tmp_path / "x.pt", "--phase", "finetune") == 1
    err = capsys.readouterr().err.strip()
    assert "--init" in err and len(err.splitlines()) == 1
    assert _train(scenes, out, "--phase", "finetune", "--resume") == 1
    assert "not 'finetune'" in capsys.readouterr().err
    assert _train(scenes, tmp_path / "y.pt", "--crop", "72x72") == 1
    assert "smaller than --crop" in capsys.readouterr().err
    assert _train(scenes, tmp_path / "z.pt", "--phase", "finetune", "--init", str(out), "--crop", "32x32") == 1
    assert "at least 64x64" in capsys.readouterr().err
    assert _train(scenes, tmp_path / "w.pt", "--device", "gpu?") == 1
    assert "not a torch device" in capsys.readouterr().err


def test_work_scale_keeps_full_resolution_detail_where_the_network_changes_nothing():
    class Unchanged(nn.Module):
        def forward(self, x):
            return x

    srgb = np.random.default_rng(2).random((48, 72, 3), dtype=np.float32)
    np.testing.assert_allclose(render_srgb(Unchanged(), srgb, 16), srgb, atol=1e-6)

    class Flat(nn.Module):  # blurs everything to grey
        def forward(self, x):
            return torch.zeros_like(x)

    flat = render_srgb(Flat(), srgb * 0.3, 16)
    np.testing.assert_allclose(flat, 0.5, atol=1e-2)  # no input detail survives where it blurred


def test_shipped_checkpoint_is_small_and_renders():
    path = shipped_checkpoint("bggan")
    assert path.stat().st_size < 5 * 1024 * 1024
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["model"]["norm"] == "instance" and payload["config"]["scene_short_side"] > 0
    image = np.random.default_rng(1).random((64, 96, 3), dtype=np.float32)
    out = render_with("bggan", image, np.zeros((64, 96), np.float32), Lens())
    assert out.shape == image.shape and np.isfinite(out).all()
    assert not np.allclose(out, image, atol=1e-3)


def test_bad_checkpoint_is_a_one_line_error(tmp_path):
    from lensblur.systems.bggan.renderer import load_bggan

    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, "bggan", {"model": {"width": TINY}}, {"stage1.input.0.weight": torch.zeros(1)})
    with pytest.raises(InputError, match="does not match"):
        load_bggan(wrong)
    with pytest.raises(InputError, match="no such file"):
        load_bggan(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------ data

def test_nearest_focus_scenes_focus_the_nearest_subject_and_change_nothing_else():
    any_focus = make_scene(np.random.default_rng(9), 32, 48)
    nearest = make_scene(np.random.default_rng(9), 32, 48, focus="nearest")
    nearest_layer = max(float(layer.disparity.max()) for layer in nearest.layers)
    assert nearest.focus_disparity == pytest.approx(nearest_layer)
    assert len(any_focus.layers) == len(nearest.layers)
    for a, b in zip(any_focus.layers, nearest.layers):
        np.testing.assert_array_equal(a.rgb, b.rgb)
    with pytest.raises(InputError):
        make_scene(np.random.default_rng(9), 32, 48, focus="far")

"""``lensblur train portrait-rnn``: the SPN and the recursive filter of Xu et al. (2018).

Data (``--data DIR``, made on the first run and reused): portrait scenes from
:mod:`lensblur.synth.people` (a person in focus in front of the project's synthetic backgrounds,
textures from scikit-image's bundled photos) plus a share of the project's ordinary synthetic
scenes focused on a foreground layer. Each example stores the camera image, the exact disparity,
the exact segmentation (person alpha, or the focused layer's) and the lens, and the target: the
output of the renderer the filter learns (``--target``, default ``portrait``, the graph-cut
renderer; ``naive`` only as a stand-in while developing), given the exact disparity and matte.

Stage 1 trains the SPN on coarse maps made by degrading the exact ones (downsampling, blur,
noise, erosion/dilation) with Eq. 1 (cross-entropy), Eq. 2 (ranking on point pairs), Eq. 3 (body
consistency hinge) and an L1 disparity term (our data has dense ground truth). Stage 2 trains
the recursive filter on the exact maps to reproduce the target (L1 in sRGB). Both land in one
checkpoint; ``--stage`` trains one of them (the other is kept from ``--resume``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from lensblur.errors import InputError

HELP = "train the portrait-rnn SPN and recursive filter to reproduce the portrait renderer"
SYSTEM = "portrait-rnn"
DATA_VERSION = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``lensblur train portrait-rnn`` (the common ones come from the train command)."""
    parser.add_argument("--target", default="portrait", help="renderer the filter learns (default portrait)")
    parser.add_argument("--scenes", type=int, default=160,
                        help="scenes generated into --data when missing (default 160)")
    parser.add_argument("--size", default="192x288", help="scene size HxW (default 192x288)")
    parser.add_argument("--stage", default="both", choices=["both", "spn", "filter"], help="what to train")
    parser.add_argument("--spn-steps", type=int, default=800, help="SPN steps (default 800)")
    parser.add_argument("--filter-steps", type=int, default=1500, help="filter steps (default 1500)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    parser.add_argument("--crop", type=int, default=128, help="SPN crop side in pixels (default 128)")
    parser.add_argument("--filter-crop", type=int, default=128, help="filter crop side in pixels (default 128)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    parser.add_argument("--spn-width", type=int, default=12, metavar="N",
                        help="SPN guidance CNN base width (default 12; a new model only)")
    parser.add_argument("--spn-merge", choices=["softmax", "max"], default="softmax",
                        help="combine the SPN's four scan directions by a learned softmax mix (default) or by "
                             "their maximum, as the paper (after Liu et al.) does; a new model only")


def train(args: argparse.Namespace, progress) -> dict:
    """Generate or load the data, train the chosen stages, write ``args.out``; returns a summary."""
    import torch

    from lensblur.systems.xu_portrait.rnn_model import PortraitRNN
    from lensblur.training.checkpoint import load_checkpoint, save_checkpoint

    height, width = parse_size(args.size)
    torch.manual_seed(args.seed)
    examples = load_or_make_examples(args.data, args.scenes, args.seed, height, width, args.target, progress,
                                     limit=args.limit)
    model = PortraitRNN(spn={"width": args.spn_width, "merge": args.spn_merge})
    history, step_spn, step_filter = [], 0, 0
    if args.resume:
        payload = load_checkpoint(args.out, SYSTEM)
        model = PortraitRNN.from_checkpoint(payload)
        history = list(payload["history"])
        step_spn = int(payload["config"].get("spn_steps", 0))
        step_filter = int(payload["config"].get("filter_steps", 0))
        if payload["config"].get("target") not in (None, args.target):
            raise InputError(f"{args.out} learned {payload['config'].get('target')!r}, not {args.target!r}")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    summary = {"examples": len(examples), "target": args.target}
    if args.stage in ("both", "spn"):
        losses = fit_spn(model.spn, examples, rng, args.spn_steps, args.batch, args.crop, args.lr, progress)
        step_spn += args.spn_steps
        history += [{"stage": "spn", "step": i, "loss": v} for i, v in enumerate(losses) if i % 50 == 0]
        summary["spn loss (last 100)"] = f"{np.mean(losses[-100:]):.4f}"
    if args.stage in ("both", "filter"):
        losses = fit_filter(model.filter, examples, rng, args.filter_steps, args.batch, args.filter_crop, args.lr,
                            progress)
        step_filter += args.filter_steps
        history += [{"stage": "filter", "step": i, "loss": v} for i, v in enumerate(losses) if i % 50 == 0]
        summary["filter L1 (last 100)"] = f"{np.mean(losses[-100:]):.4f}"
    config = {**model.config(), "target": args.target, "spn_steps": step_spn, "filter_steps": step_filter,
              "size": [height, width], "scenes": len(examples), "seed": args.seed,
              "target_source": ",".join(sorted({str(example["target_source"]) for example in examples}))}
    state = {key: value.to(torch.float16) if value.is_floating_point() else value
             for key, value in model.state_dict().items()}
    save_checkpoint(args.out, SYSTEM, config, state, step=step_spn + step_filter, history=history)
    summary["minutes"] = f"{(time.perf_counter() - started) / 60:.1f}"
    summary["checkpoint"] = str(args.out)
    return summary


def target_fingerprint(name: str) -> str:
    """sha256 (first 16 hex digits) of the source of the renderer ``name``: its module and the
    lensblur.renderers / lensblur.systems.* modules it imports. Stored with every example and in the checkpoint, so
    one can tell which version of the target the filter learned."""
    import hashlib
    import importlib
    import re

    from lensblur.renderers import _MODULES

    module = importlib.import_module(_MODULES.get(name, "lensblur.renderers"))
    source = Path(module.__file__).read_bytes()
    digest = hashlib.sha256(source)
    for helper in sorted(set(re.findall(rb"from (lensblur\.(?:renderers|systems\.\w+)\.\w+) import", source))):
        helper_module = importlib.import_module(helper.decode())
        digest.update(Path(helper_module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' → (H, W); InputError for anything else."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"size must look like 192x288, got {text!r}") from None
    if height < 32 or width < 32:
        raise InputError("size must be at least 32x32")
    return height, width


# ------------------------------------------------------------------------------------------ data

def make_example(index: int, seed: int, height: int, width: int, target: str) -> dict:
    """One training example as plain arrays (see the module docstring); deterministic in
    (seed, index). Every fifth example is an ordinary synthetic scene, the rest portraits."""
    from lensblur.lens import Lens
    from lensblur.renderers import get_renderer
    from lensblur.synth.people import make_portrait_scene
    from lensblur.synth.scene import make_scene
    from lensblur.synth.thinlens import camera_image, visible_disparity

    rng = np.random.default_rng([int(seed), int(index), 7])
    if index % 5 == 4:
        while True:
            scene = make_scene(rng, height, width)
            if any(abs(float(layer.disparity.flat[0]) - scene.focus_disparity) < 1e-6 for layer in scene.layers[1:]):
                break
        matte = focused_coverage(scene)
    else:
        scene, matte = make_portrait_scene(rng, height, width)
    srgb8 = camera_image(scene)
    disparity = visible_disparity(scene)
    lens = Lens(blur=float(scene.blur), focus_disparity=float(scene.focus_disparity), aperture=scene.aperture)
    from lensblur.synth.dataset import srgb8_to_linear

    linear = srgb8_to_linear(srgb8)
    rendered = get_renderer(target)(linear, disparity, lens, matte=matte)
    from lensblur.color import linear_to_srgb

    return {"image": srgb8, "disparity": disparity.astype(np.float32), "matte": matte.astype(np.float32),
            "target": np.round(linear_to_srgb(rendered) * 65535).astype(np.uint16),
            "focus": np.float32(scene.focus_disparity), "blur": np.float32(scene.blur),
            "target_source": np.array(target_fingerprint(target))}


def focused_coverage(scene) -> np.ndarray:
    """Visible coverage (float32 H×W in [0, 1]) of the layers at the focus disparity."""
    coverage = np.zeros(scene.shape, np.float32)
    for layer in scene.layers[1:]:
        in_focus = abs(float(layer.disparity.flat[0]) - scene.focus_disparity) < 1e-6
        coverage = layer.alpha * float(in_focus) + (1 - layer.alpha) * coverage
    return coverage


def load_or_make_examples(folder, count: int, seed: int, height: int, width: int, target: str, progress,
                          limit: int | None = None) -> list[dict]:
    """The examples cached in ``folder`` (``{target}-{seed}-{H}x{W}-NNNN.npz``), made when missing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = min(count, limit) if limit else count
    examples = []
    with progress(count, f"examples ({target})") as bar:
        for index in range(count):
            path = folder / f"v{DATA_VERSION}-{target}-{seed}-{height}x{width}-{index:04d}.npz"
            if path.is_file():
                with np.load(path) as stored:
                    example = {key: stored[key] for key in stored.files}
            else:
                example = make_example(index, seed, height, width, target)
                np.savez_compressed(path, **example)
            examples.append(example)
            bar.update()
    return examples


def degrade_segmentation(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A coarse version of an exact mask (float32 H×W in [0, 1]) as a segmentation network
    would give: detail lost by downsampling, boundary shifted by erosion/dilation, blurred, noisy."""
    height, width = mask.shape
    factor = rng.uniform(3, 10)
    small = cv2.resize(mask, (max(2, int(width / factor)), max(2, int(height / factor))), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    radius = int(rng.integers(-3, 4))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
        coarse = (cv2.dilate if radius > 0 else cv2.erode)(coarse, kernel)
    coarse = cv2.GaussianBlur(coarse, (0, 0), rng.uniform(0.5, 3.0))
    coarse = coarse + smooth_noise(rng, height, width, rng.uniform(0.0, 0.15))
    return np.clip(coarse, 0, 1).astype(np.float32)


def degrade_disparity(rng: np.random.Generator, disparity: np.ndarray) -> np.ndarray:
    """A coarse disparity (float32 H×W in [0, 1]): low resolution, blurred edges, smooth noise."""
    height, width = disparity.shape
    factor = rng.uniform(4, 12)
    small = cv2.resize(disparity, (max(2, int(width / factor)), max(2, int(height / factor))),
                       interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    coarse = cv2.GaussianBlur(coarse, (0, 0), rng.uniform(1.0, 4.0))
    coarse = coarse + smooth_noise(rng, height, width, rng.uniform(0.0, 0.04))
    return np.clip(coarse, 0, 1).astype(np.float32)


def smooth_noise(rng: np.random.Generator, height: int, width: int, amplitude: float) -> np.ndarray:
    """Low-frequency noise (float32 H×W), standard deviation about ``amplitude``."""
    cells = rng.normal(0, amplitude, size=(max(2, height // 16), max(2, width // 16))).astype(np.float32)
    return cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)


# -------------------------------------------------------------------------------------- training

def spn_batch(rng, examples, batch: int, crop: int):
    """(encoded, coarse seg, coarse disparity, exact seg, exact disparity) tensors of random crops."""
    import torch

    from lensblur.training.data import random_crop, random_flips

    rows = []
    for _ in range(batch):
        example = examples[int(rng.integers(len(examples)))]
        arrays = [example["image"].astype(np.float32) / 255.0, example["matte"], example["disparity"]]
        image, matte, disparity = random_flips(rng, random_crop(rng, arrays, crop, crop), vertical=False)
        rows.append((image, degrade_segmentation(rng, matte), degrade_disparity(rng, disparity), matte, disparity))
    stack = [torch.from_numpy(np.stack([row[i] for row in rows])) for i in range(5)]
    encoded = stack[0].permute(0, 3, 1, 2).contiguous()
    return (encoded,) + tuple(t[:, None] for t in stack[1:])


def spn_loss(model, batch, generator, pairs: int = 256, body_margin: float = 1e-4):
    """Total SPN loss: Eq. 1 + Eq. 2 (depth z = −disparity) + Eq. 3 + L1 on the disparity."""
    import torch

    from lensblur.systems.xu_portrait.spn import body_consistency_loss, ranking_loss, sample_pairs, segmentation_loss

    encoded, seg0, disp0, seg, disp = batch
    logits, refined = model(encoded, seg0, disp0)
    n = encoded.shape[0]
    flat_gt, flat_z = disp.reshape(n, -1), -refined.reshape(n, -1)
    first, second = sample_pairs(generator, torch.ones_like(seg[:, 0], dtype=torch.bool), pairs)
    gt_i, gt_j = flat_gt.gather(1, first), flat_gt.gather(1, second)
    ordered = (gt_i - gt_j).abs() > 0.02
    gamma = torch.where(gt_i < gt_j, 1.0, -1.0)  # i farther (smaller disparity) than j → +1
    z_i, z_j = flat_z.gather(1, first), flat_z.gather(1, second)
    rank = ranking_loss(z_i[ordered] * 20, z_j[ordered] * 20, gamma[ordered]) if ordered.any() else z_i.sum() * 0
    body_first, body_second = sample_pairs(generator, seg[:, 0] > 0.5, pairs)
    body = body_consistency_loss(flat_z.gather(1, body_first), flat_z.gather(1, body_second), body_margin)
    l1 = (refined - disp).abs().mean()
    return segmentation_loss(logits, seg) + 0.1 * rank + 10.0 * body + 5.0 * l1


def fit_spn(model, examples, rng, steps: int, batch: int, crop: int, lr: float, progress) -> list[float]:
    """Adam on :func:`spn_loss`; returns the loss per step."""
    import torch

    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    return _adam_steps(model, steps, lr, progress, "SPN",
                       lambda: spn_loss(model, spn_batch(rng, examples, batch, crop), generator))


def _adam_steps(model, steps: int, lr: float, progress, label: str, next_loss) -> list[float]:
    """``steps`` Adam steps (cosine-annealed from ``lr``) on the loss ``next_loss()`` draws for
    each step; returns the loss per step and leaves the model in eval mode."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    losses = []
    model.train()
    with progress(steps, label) as bar:
        for _ in range(steps):
            loss = next_loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    return losses


def filter_batch(rng, examples, batch: int, crop: int):
    """Filter inputs and targets for ``batch`` random crops (flipped at random). The filter sees
    only the crop while the target was rendered from the whole image, so :func:`filter_loss`
    leaves out a border as wide as the largest blur radius."""
    import torch

    from lensblur.systems.xu_portrait.rnn_model import filter_inputs
    from lensblur.training.data import random_crop, random_flips

    rows = []
    for _ in range(batch):
        example = examples[int(rng.integers(len(examples)))]
        target = example["target"].astype(np.float32) / 65535.0
        arrays = [example["image"], example["disparity"], example["matte"], target]
        image, disparity, matte, target = random_flips(rng, random_crop(rng, arrays, crop, crop), vertical=False)
        rows.append((filter_inputs(image, disparity, matte, float(example["focus"]), float(example["blur"])), target))
    inputs = [torch.cat([row[0][i] for row in rows]) for i in range(5)]
    target = torch.from_numpy(np.stack([row[1] for row in rows])).permute(0, 3, 1, 2).contiguous()
    return inputs, target


def filter_loss(model, inputs, target, margin: int = 0):
    """L1 between the sRGB encoding of the filter's output and the target (sRGB), leaving out
    ``margin`` pixels at each side."""
    from lensblur.systems.xu_portrait.rnn_model import encode_srgb

    difference = (encode_srgb(model(*inputs)) - target).abs()
    if margin:
        difference = difference[..., margin:-margin, margin:-margin]
    return difference.mean()


def fit_filter(model, examples, rng, steps: int, batch: int, crop: int, lr: float, progress) -> list[float]:
    """Adam on :func:`filter_loss`; returns the loss per step."""

    def next_loss():
        inputs, target = filter_batch(rng, examples, batch, crop)
        margin = min(int(np.ceil(float(inputs[4].abs().max()))), crop // 4)
        return filter_loss(model, inputs, target, margin)

    return _adam_steps(model, steps, lr, progress, "recursive filter", next_loss)

"""``lensblur train deeplens``: the DeepLens lens blur + guided upsampling modules on synthetic
scenes with exact ground truth (``--module render``, default), or the depth prediction module on
a folder of image + depth (+ mask) pairs (``--module depth``).

Render training (paper section 3.3, 4.2): random crops of the scenes, the disparity corrupted by
a random dilation or erosion, the lens blur ``levels`` ×2 halvings below the crop's resolution
(``--levels``, default 1; a range such as 1-3 draws the number per step) and as many recurrent
guided ×2 steps back up, as the renderer does at inference; loss Eq. 6 = J_f(L) + β·J_f(H) with
the normalised loss of Eq. 5 (α = 1.5). r_max, the largest radius at the lens-blur resolution,
is measured on the training data and stored in the checkpoint's config.

torch is imported inside the functions: the CLI imports this module to build its parser.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from lensblur.color import linear_to_srgb
from lensblur.errors import InputError
from lensblur.training import size_argument
from lensblur.io.depth import read_depth
from lensblur.io.images import read_image

HELP = "train DeepLens (lens blur + guided upsampling on synthetic scenes, or --module depth)"
SYSTEM = "deeplens"


_size = size_argument(minimum=16)


def _levels(text: str) -> tuple[int, int]:
    """``N`` or ``LO-HI`` (1 <= LO <= HI <= 4) → (LO, HI)."""
    try:
        parts = [int(v) for v in text.split("-")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not 1 <= parts[0] <= parts[1] <= 4:
        raise argparse.ArgumentTypeError(f"expected N or LO-HI with 1 <= LO <= HI <= 4, got {text!r}")
    return parts[0], parts[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """DeepLens's own options of ``lensblur train deeplens``."""
    parser.add_argument("--module", choices=["render", "depth"], default="render",
                        help="render: lens blur + upsampling on synthetic scenes (default); "
                             "depth: the depth prediction module on image + depth (+ mask) pairs")
    parser.add_argument("--steps", type=int, default=3000, help="total optimiser steps (default 3000)")
    parser.add_argument("--batch", type=int, default=8, help="examples per step (default 8)")
    parser.add_argument("--crop", type=_size, default=(128, 160), metavar="HxW",
                        help="training crop at full resolution (default 128x160; depth: resize size)")
    parser.add_argument("--levels", type=_levels, default=(1, 1), metavar="N|LO-HI",
                        help="×2 halvings before the lens blur, i.e. recurrent guided upsampling steps "
                             "(default 1; LO-HI: drawn per step). Scenes whose blur needs more halvings "
                             "are shrunk ×2 until it fits, as the renderer would halve further")
    parser.add_argument("--more-data", action="append", default=[], metavar="DIR",
                        help="a further folder of scenes (repeatable), e.g. larger scenes for deeper --levels")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--lr-drop", type=int, default=1600, metavar="STEP",
                        help="multiply the learning rate by 0.3 from this step on (default 1600)")
    parser.add_argument("--l1", type=float, default=0.0, metavar="W",
                        help="add W times the plain L1 loss of L and H (default 0: the paper's loss only)")
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the high-resolution loss (Eq. 6)")
    parser.add_argument("--init", metavar="CKPT",
                        help="fine-tune: start from this render checkpoint's weights and r_max with a fresh "
                             "optimiser at step 0 (--resume instead continues its Adam state, whose moments "
                             "from the old data scale the first steps on new data)")
    parser.add_argument("--keep-in-focus", action="store_true",
                        help="score the full-resolution output after the renderer's in-focus pass-through "
                             "(lensblur.systems.deeplens.compose; not in the paper), so the network is not "
                             "trained on pixels the renderer takes from the input")
    parser.add_argument("--corrupt", type=int, default=3, metavar="PX",
                        help="largest dilation/erosion radius of the training disparity (default 3)")
    parser.add_argument("--save-every", type=int, default=250, metavar="N", help="checkpoint every N steps")
    parser.add_argument("--backbone", choices=["resnet50", "small"], default="small",
                        help="depth module encoder: the paper's ResNet-50 (conv1-res4f) or a small one (default)")
    parser.add_argument("--gamma", type=float, default=1.0, help="segmentation weight of Eq. 1 (depth module)")


def train(args: argparse.Namespace, progress) -> dict:
    """Train the module chosen by ``args.module``; returns a summary dict."""
    if args.steps < 1 or args.batch < 1:
        raise InputError("--steps and --batch must be at least 1")
    if args.module == "depth":
        return train_depth(args, progress)
    return train_render(args, progress)


# ------------------------------------------------------------------------------- render module

def corrupt_disparity(rng: np.random.Generator, disparity: np.ndarray, largest: int) -> np.ndarray:
    """Random grey dilation (nearer surfaces grow) or erosion (they shrink) with a disc of
    radius 0..``largest`` pixels, as the paper corrupts its foreground planes; 1 time in 4 the
    map is left exact."""
    radius = int(rng.integers(0, largest + 1)) if largest > 0 else 0
    if radius == 0 or rng.random() < 0.25:
        return disparity
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    operation = cv2.dilate if rng.random() < 0.5 else cv2.erode
    return operation(disparity, disc)


def largest_coc(pair) -> float:
    """The largest |c| = K·|D − d_f| of a scene in pixels of its stored size."""
    return pair.blur * float(np.abs(pair.disparity - pair.focus_disparity).max())


def measured_r_max(pairs, lens_blur_scale: float = 0.5) -> float:
    """The largest |c| in pixels over the training scenes, at the lens-blur resolution."""
    return max(1.0, max(largest_coc(p) for p in pairs) * lens_blur_scale)


class LevelFitter:
    """The scenes as the renderer would see them with ``levels`` halvings before the lens blur.

    A scene whose largest radius needs more halvings than ``levels`` to come down to r_max
    (the renderer would halve further, ``choose_levels``) is shrunk ×2 per missing halving, so
    the lens blur never sees radii beyond r_max; scenes with smaller blur are used as they are
    (the renderer halves images for speed too). Shrunk copies are made once and kept.
    :meth:`choose` draws 3 of 4 examples from the scenes that need all ``levels`` halvings, the
    case of the renderer's own choice of levels for images up to 1024 px.
    """

    def __init__(self, pairs, r_max: float):
        from lensblur.systems.deeplens.session import halvings_for_blur

        self.pairs = pairs
        # + 0.001: r_max is stored rounded to 3 decimals; the largest scene must still fit
        self.needed = [halvings_for_blur(largest_coc(p), r_max + 1e-3) for p in pairs]
        self._shrunk: dict[tuple[int, int], object] = {}

    def choose(self, rng: np.random.Generator, count: int, levels: int) -> list[int]:
        """``count`` scene indices for a batch with ``levels`` halvings."""
        deep = [i for i, needed in enumerate(self.needed) if needed >= levels]
        if len(deep) in (0, len(self.pairs)):     # one draw, as before --levels existed
            return [int(i) for i in rng.integers(0, len(self.pairs), size=count)]
        return [deep[int(rng.integers(0, len(deep)))] if rng.random() < 0.75
                else int(rng.integers(0, len(self.pairs))) for _ in range(count)]

    def __call__(self, index: int, levels: int):
        from lensblur.training.data import resize_pair

        factor = 2 ** max(self.needed[index] - levels, 0)
        if factor == 1:
            return self.pairs[index]
        if (index, factor) not in self._shrunk:
            pair = self.pairs[index]
            height, width = pair.image.shape[:2]
            self._shrunk[index, factor] = resize_pair(pair, max(1, round(height / factor)),
                                                      max(1, round(width / factor)))
        return self._shrunk[index, factor]


def make_batch(rng: np.random.Generator, pairs, batch: int, crop: tuple[int, int], corrupt: int,
               fit=None, levels: int = 1):
    """Arrays for one step: images, targets N×3×h×w sRGB; cocs N×1×h×w signed CoC in pixels
    computed from the corrupted disparity. fit: a :class:`LevelFitter` of ``pairs`` (the scenes
    as they are when None), applied for ``levels`` halvings."""
    from lensblur.training.data import random_crop, random_flips

    images, targets, cocs = [], [], []
    indices = fit.choose(rng, batch, levels) if fit is not None else rng.integers(0, len(pairs), size=batch)
    for index in indices:
        pair = fit(int(index), levels) if fit is not None else pairs[int(index)]
        image, target, disparity = random_crop(rng, [pair.image, pair.target, pair.disparity], *crop)
        image, target, disparity = random_flips(rng, [image, target, disparity])
        disparity = corrupt_disparity(rng, disparity, corrupt)
        images.append(image.transpose(2, 0, 1))
        targets.append(target.transpose(2, 0, 1))
        cocs.append((pair.blur * (disparity - pair.focus_disparity))[None])
    # crops of scenes smaller than the window keep their size: trim to the smallest
    height = min(a.shape[1] for a in images)
    width = min(a.shape[2] for a in images)
    stack = [np.stack([a[:, :height, :width] for a in group]).astype(np.float32) for group in (images, targets, cocs)]
    return stack


def train_render(args, progress) -> dict:
    """The lens blur and guided upsampling modules on a folder of synthetic scenes."""
    from lensblur.models import require_torch

    torch = require_torch()
    from lensblur.systems.deeplens.model import DEFAULT_CONFIG, DeepLensRenderer, downsample, normalised_loss
    from lensblur.training.checkpoint import load_checkpoint, save_checkpoint
    from lensblur.training.data import load_pairs

    pairs = []
    for folder in [args.data, *getattr(args, "more_data", [])]:
        pairs += [p for p in load_pairs(folder, layout=args.layout, split=args.split, limit=args.limit)
                  if p.has_disparity]
    if not pairs:
        raise InputError(f"{args.data}: no examples with a disparity map (DeepLens needs depth)")
    low_levels, high_levels = getattr(args, "levels", (1, 1))
    torch.manual_seed(args.seed)
    step, history, optimizer_state = 0, [], None
    start_from = args.out if args.resume else getattr(args, "init", None)
    if start_from:
        payload = load_checkpoint(start_from, system=SYSTEM)
        config = payload["config"]
        if config.get("module", "render") != "render":
            raise InputError(f"{start_from} is a DeepLens {config.get('module')} checkpoint, not a render one")
        model = DeepLensRenderer(config)
        model.load_state_dict(payload["model"])
        if args.resume:   # --init starts at step 0 with a fresh optimiser
            step, history, optimizer_state = payload["step"], payload["history"], payload["optimizer"]
        if not (args.resume and config.get("trained_on", "").endswith(describe(pairs))):
            config = {**config, "trained_on": f"{config.get('trained_on', '?')}, then {describe(pairs)}"}
    else:
        # r_max at the lens-blur resolution of the deepest level: the largest scenes need them all
        config = {**DEFAULT_CONFIG, "module": "render",
                  "r_max": round(measured_r_max(pairs, 0.5 ** high_levels), 3), "trained_on": describe(pairs)}
        model = DeepLensRenderer(config)
    fit = LevelFitter(pairs, float(config["r_max"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if optimizer_state:
        optimizer.load_state_dict(optimizer_state)
    def set_lr(at: int):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * (0.3 if at >= args.lr_drop else 1.0)

    def save(at: int):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save_checkpoint(args.out, SYSTEM, {**config, "module": "render"}, state, step=at,
                        optimizer_state=optimizer.state_dict(), history=history)

    model.train()
    start, recent = time.perf_counter(), []
    with progress(args.steps, "deeplens") as bar:
        bar.update(step)
        while step < args.steps:
            rng = np.random.default_rng([args.seed, step])
            torch.manual_seed(args.seed * 100003 + step)
            levels = int(rng.integers(low_levels, high_levels + 1)) if high_levels > low_levels else low_levels
            images, targets, cocs = (torch.from_numpy(a) for a in make_batch(rng, pairs, args.batch, args.crop,
                                                                                args.corrupt, fit, levels))
            set_lr(step)
            low, high = model(images, cocs, levels=levels)
            if getattr(args, "keep_in_focus", False):
                high = keep_in_focus(images, high, cocs)
            target_low = downsample(targets, low.shape[-2:])
            loss_low = normalised_loss(low, target_low)
            loss_high = normalised_loss(high, targets)
            loss = loss_low + args.beta * loss_high
            if args.l1 > 0:
                loss = loss + args.l1 * ((low - target_low).abs().mean() + args.beta * (high - targets).abs().mean())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            recent.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{recent[-1]:.4f}")
            if step % 25 == 0 or step == args.steps:
                history.append({"step": step, "loss": float(np.mean(recent)), "loss_low": loss_low.item(),
                                "loss_high": loss_high.item(), "levels": levels})
                recent = []
            if step % args.save_every == 0 or step == args.steps:
                save(step)
    return {"checkpoint": args.out, "steps": step, "examples": len(pairs), "r_max": config["r_max"],
            "levels": f"{low_levels}-{high_levels}" if high_levels > low_levels else str(low_levels),
            "final loss": f"{history[-1]['loss']:.4f}" if history else "n/a",
            "seconds": f"{time.perf_counter() - start:.0f}"}


def keep_in_focus(images, rendered, cocs):
    """The renderer's in-focus pass-through on a batch: images, rendered N×3×H×W sRGB tensors,
    cocs N×1×H×W signed CoC in pixels → N×3×H×W, the input where the thin lens keeps it sharp."""
    import torch

    from lensblur.systems.deeplens.compose import network_share

    share = torch.from_numpy(np.stack([network_share(c[0]) for c in cocs.numpy()])[:, None])
    return images + share * (rendered - images)


def describe(pairs) -> str:
    """'300 scenes of 192x256' or '160 scenes of 384x512 + 24 of 768x1024'."""
    counts: dict[str, int] = {}
    for pair in pairs:
        size = f"{pair.image.shape[0]}x{pair.image.shape[1]}"
        counts[size] = counts.get(size, 0) + 1
    parts = [f"{count} {'scenes ' if not i else ''}of {size}" for i, (size, count) in enumerate(counts.items())]
    return " + ".join(parts)


# -------------------------------------------------------------------------------- depth module

_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".pfm", ".bmp", ".webp")


def _find(folder, stem: str):
    for extension in _EXTENSIONS:
        path = folder / f"{stem}{extension}"
        if path.exists():
            return path
    return None


def load_depth_pairs(folder, size: tuple[int, int], limit: int | None = None) -> list[dict]:
    """Examples of a depth-training folder, resized to ``size`` (H, W).

    Per example ``X``: ``X_image.*`` (RGB) with ``X_depth.*`` (metric or relative depth, bigger
    = farther) or ``X_disparity.*`` (bigger = nearer), and/or ``X_mask.*`` (foreground, white =
    subject); at least one of the two ground truths. Maps are read by
    :func:`lensblur.io.depth.read_depth` (PNG/TIFF 8/16-bit or float, JPEG, NPY, PFM), images and
    masks by :func:`lensblur.io.images.read_image`.
    Returns dicts of image (H×W×3 sRGB float32), disparity, mask (H×W float32, zeros where
    missing), has_disparity, has_mask.
    """
    from pathlib import Path

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"dataset folder {folder} does not exist")
    height, width = size
    examples = []
    for image_path in sorted(folder.glob("*_image.*")):
        if image_path.suffix.lower() not in _EXTENSIONS:
            continue
        stem = image_path.name[:-len("_image" + image_path.suffix)]
        depth_path, disparity_path, mask_path = (_find(folder, f"{stem}_{kind}") for kind in ("depth", "disparity", "mask"))
        if depth_path is None and disparity_path is None and mask_path is None:
            continue
        image = linear_to_srgb(read_image(image_path).pixels)
        image = cv2.resize(np.ascontiguousarray(image, np.float32), (width, height), interpolation=cv2.INTER_AREA)
        example = {"image": image, "disparity": np.zeros((height, width), np.float32),
                   "mask": np.zeros((height, width), np.float32), "has_disparity": False, "has_mask": False}
        map_path = depth_path or disparity_path
        if map_path is not None:
            # normalised by its own range, a depth map inverted first (paper section 3.1)
            disparity = read_depth(map_path, kind="depth" if depth_path is not None else "disparity")
            example["disparity"] = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_NEAREST)
            example["has_disparity"] = True
        if mask_path is not None:
            mask = (read_image(mask_path).pixels.mean(axis=2) > 0.5).astype(np.float32)
            example["mask"] = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
            example["has_mask"] = True
        examples.append(example)
        if limit and len(examples) >= limit:
            break
    if not examples:
        raise InputError(f"no depth-training examples in {folder}: expected X_image.* with X_depth.*, "
                         "X_disparity.* and/or X_mask.*")
    return examples


def train_depth(args, progress) -> dict:
    """The depth prediction module (Eq. 1) on an image + depth (+ mask) folder."""
    from lensblur.models import require_torch

    torch = require_torch()
    from lensblur.systems.deeplens.depth import DepthPredictor, depth_loss
    from lensblur.training.checkpoint import load_checkpoint, save_checkpoint
    from lensblur.training.data import random_flips

    examples = load_depth_pairs(args.data, args.crop, args.limit)
    torch.manual_seed(args.seed)
    step, history, optimizer_state = 0, [], None
    config = {"module": "depth", "backbone": args.backbone, "size": list(args.crop)}
    if args.resume:
        payload = load_checkpoint(args.out, system=SYSTEM)
        config = payload["config"]
        if config.get("module") != "depth":
            raise InputError(f"{args.out} is a DeepLens {config.get('module')} checkpoint, not a depth one")
        model = DepthPredictor(config["backbone"])
        model.load_state_dict(payload["model"])
        step, history, optimizer_state = payload["step"], payload["history"], payload["optimizer"]
    else:
        model = DepthPredictor(args.backbone)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if optimizer_state:
        optimizer.load_state_dict(optimizer_state)

    def save(at: int):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        save_checkpoint(args.out, SYSTEM, config, state, step=at, optimizer_state=optimizer.state_dict(),
                        history=history)

    model.train()
    start = time.perf_counter()
    with progress(args.steps, "deeplens depth") as bar:
        bar.update(step)
        while step < args.steps:
            rng = np.random.default_rng([args.seed, step])
            chosen = [examples[int(i)] for i in rng.integers(0, len(examples), size=args.batch)]
            arrays = [random_flips(rng, [e["image"], e["disparity"], e["mask"]], vertical=False) for e in chosen]
            images = torch.from_numpy(np.stack([a[0].transpose(2, 0, 1) for a in arrays]))
            disparities = torch.from_numpy(np.stack([a[1][None] for a in arrays]))
            masks = torch.from_numpy(np.stack([a[2][None] for a in arrays]))
            has_disparity = torch.tensor([e["has_disparity"] for e in chosen])
            has_mask = torch.tensor([e["has_mask"] for e in chosen])
            disparity, segmentation = model(images)
            loss = depth_loss(disparity, segmentation, disparities, masks, has_disparity, has_mask, args.gamma)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            history.append({"step": step, "loss": loss.item()})
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % args.save_every == 0 or step == args.steps:
                save(step)
    return {"checkpoint": args.out, "module": "depth", "backbone": config["backbone"], "steps": step,
            "examples": len(examples), "final loss": f"{history[-1]['loss']:.4f}" if history else "n/a",
            "seconds": f"{time.perf_counter() - start:.0f}"}

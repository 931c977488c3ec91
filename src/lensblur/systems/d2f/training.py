"""``lensblur train d2f``: the two training stages of D2F, in order.

Stage 1 trains the defocus network and the radiance MLP only through the weighted layered
renderer: the rendered working-size bokeh B_s is compared with the target bokeh image reduced to
the same size. No defocus or depth label is used (``--defocus-weight`` > 0 adds a direct L1 on D
against the true blur of synthetic scenes, as an ablation only). Stage 2 freezes stage 1 and
trains the fusion-mask CNN on the full-size blend M·I + (1 − M)·B.

The authors' losses, weights, schedule and crops are not public (notes §6); everything below is
the project's own choice, shown with an ablation in benchmarks/results/d2f.md:

- stage 1: L1(B_s, T_s) + λ_g·L1(∇B_s, ∇T_s), λ_g = ``--grad-weight`` (default 0);
- stage 2: L1(Out, T) + λ_g·L1(∇Out, ∇T) (a gradient-domain term, our reading of the
  "Poisson" constraint) + λ_m·L1(S, M0) (the initial mask as a weak prior); both weights
  default to 0, i.e. plain L1, because the ablation scored L1 alone best;
- Adam (0.9, 0.999), learning rate decaying geometrically 1e-3 → 1e-4 over each stage;
- stage 1 warms the layer windows up: their sharpness rises geometrically from 20 to the
  renderer's 100 over the stage (with 100 throughout, D only learns where it lies within ±0.02
  of a level);
- scenes resized to 256×384, random 192×256 crops and horizontal flips; stage 1: 350 steps of
  batch 4, stage 2: 100 steps of batch 2 (sized to train on one CPU thread in about 25 minutes).

``--resume`` continues an interrupted stage from its last save (every 50 steps; every step's
batch depends only on the seed, the stage and the step); stage 2 starts from the stage-1
checkpoint with ``--resume``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lensblur.errors import InputError
from lensblur.training import descend, size_argument

HELP = "D2F: defocus hallucination, radiance-weighted layered soft-disk rendering and fusion (Luo et al.)"
SYSTEM = "d2f"

STAGES = {
    # stage: steps, batch, learning rate start, end, gradient-loss weight
    1: (350, 4, 1e-3, 1e-4, 0.0),
    2: (100, 2, 1e-3, 1e-4, 0.0),
}
DEFAULT_SIZE = (256, 384)
DEFAULT_CROP = (192, 256)
DEFAULT_PRIOR_WEIGHT = 0.0
DEFAULT_WARM_SHARPNESS = 20.0
SAVE_EVERY = 50


_size = size_argument(minimum=64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """D2F's own options of ``lensblur train d2f``."""
    defaults = "; ".join(f"stage {s}: {v[0]} steps, batch {v[1]}, lr {v[2]:g}→{v[3]:g}, grad weight {v[4]:g}"
                         for s, v in STAGES.items())
    parser.add_argument("--stage", type=int, default=1, choices=[1, 2],
                        help=f"1: defocus + radiance through the renderer; 2: fusion mask (needs --resume "
                             f"from a finished stage 1). Defaults: {defaults}")
    parser.add_argument("--size", type=_size, metavar="HxW",
                        help=f"scenes are resized to this (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    parser.add_argument("--crop", type=_size, metavar="HxW",
                        help=f"random crop per example (default {DEFAULT_CROP[0]}x{DEFAULT_CROP[1]})")
    parser.add_argument("--steps", type=int, metavar="N", help="optimisation steps of this stage")
    parser.add_argument("--batch", type=int, metavar="N", help="examples per step")
    parser.add_argument("--lr", type=float, nargs=2, metavar=("START", "END"), help="learning rate, first and last step")
    parser.add_argument("--grad-weight", type=float, metavar="W", help="weight of the image-gradient L1 term")
    parser.add_argument("--defocus-weight", type=float, default=0.0, metavar="W",
                        help="stage 1 ablation only: weight of a direct L1 on D against the true blur "
                             "(synthetic scenes; default 0, i.e. D2F's indirect supervision)")
    parser.add_argument("--prior-weight", type=float, metavar="W",
                        help=f"stage 2: weight of L1(S, M0), the initial mask as a prior (default {DEFAULT_PRIOR_WEIGHT:g})")
    parser.add_argument("--warm-sharpness", type=float, metavar="A",
                        help=f"stage 1: layer-window sharpness at the first step, rising geometrically to the "
                             f"renderer's 100 by the last (default {DEFAULT_WARM_SHARPNESS:g}; 100 = fixed)")
    parser.add_argument("--width", type=int, metavar="C", help="defocus encoder width (default 16)")
    parser.add_argument("--features", type=int, metavar="F", help="defocus decoder features (default 32)")
    parser.add_argument("--ship", metavar="PATH", help="also write a copy without optimizer state to PATH")


def _settings(args, stored: dict | None) -> dict:
    steps, batch, lr_start, lr_end, grad = STAGES[args.stage]
    settings = dict(stored) if stored else {
        "steps": steps, "batch": batch, "lr": [lr_start, lr_end], "grad_weight": grad,
        "defocus_weight": 0.0, "prior_weight": DEFAULT_PRIOR_WEIGHT if args.stage == 2 else 0.0,
        "crop": list(DEFAULT_CROP), "warm_sharpness": DEFAULT_WARM_SHARPNESS}
    given = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "grad_weight": args.grad_weight,
             "defocus_weight": args.defocus_weight or None, "prior_weight": args.prior_weight, "crop": args.crop,
             "warm_sharpness": args.warm_sharpness}
    for key, value in given.items():
        if value is not None:
            settings[key] = list(value) if isinstance(value, (tuple, list)) else value
    if settings["steps"] <= 0 or settings["batch"] <= 0:
        raise InputError("--steps and --batch must be positive")
    if settings["defocus_weight"] and args.stage != 1:
        raise InputError("--defocus-weight applies to stage 1 only")
    if any(settings[key] < 0 for key in ("grad_weight", "defocus_weight", "prior_weight")):
        raise InputError("loss weights must be non-negative")
    if not 0 < settings["warm_sharpness"] <= 1000:
        raise InputError("--warm-sharpness must be in (0, 1000]")
    return settings


def load_examples(args, height: int, width: int) -> list:
    """The examples of ``args.data`` resized one by one to height×width as they are read."""
    from lensblur.training.data import load_pairs

    return load_pairs(args.data, layout=args.layout, split=args.split, limit=args.limit, size=(height, width))


def make_batch(pairs, indices, rng: np.random.Generator, crop: tuple[int, int]):
    """(images, targets, true blur radius |c| in pixels) tensors of the chosen examples: the
    same random crop and horizontal flip for image, target and blur map."""
    import torch

    from lensblur.training.data import random_crop, random_flips

    images, targets, radii = [], [], []
    for index in indices:
        pair = pairs[index]
        coc = np.abs(pair.blur * (pair.disparity - pair.focus_disparity)).astype(np.float32)
        arrays = random_crop(rng, [pair.image, pair.target, coc], *crop)
        image, target, coc = random_flips(rng, arrays, vertical=False)
        images.append(image.transpose(2, 0, 1))
        targets.append(target.transpose(2, 0, 1))
        radii.append(coc[None])
    return tuple(torch.from_numpy(np.stack(a)) for a in (images, targets, radii))


def gradient_l1(a, b):
    """Mean absolute difference of the horizontal and vertical finite differences of a and b."""
    return ((a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])).abs().mean() + \
        ((a[..., 1:] - a[..., :-1]) - (b[..., 1:] - b[..., :-1])).abs().mean()


def stage_losses(model, images, targets, radii, stage: int, settings: dict) -> dict:
    """The loss terms of one batch (tensors; ``total`` is their weighted sum)."""
    import torch
    import torch.nn.functional as F

    from lensblur.systems.d2f.model import radius_to_defocus, resize, working_size

    work_h, work_w = working_size(*images.shape[-2:])
    small = resize(images, work_h, work_w)
    if stage == 1:
        bokeh, defocus = model.stage_one(small)
        small_targets = F.interpolate(targets, size=(work_h, work_w), mode="area")
        terms = {"l1": F.l1_loss(bokeh, small_targets)}
        if settings["grad_weight"]:
            terms["grad"] = settings["grad_weight"] * gradient_l1(bokeh, small_targets)
        if settings["defocus_weight"]:
            scale = work_w / images.shape[-1]
            true_defocus = radius_to_defocus(F.interpolate(radii, size=(work_h, work_w), mode="area") * scale, work_w)
            terms["defocus"] = settings["defocus_weight"] * F.l1_loss(defocus, true_defocus)
    else:
        with torch.no_grad():
            bokeh_small, defocus = model.stage_one(small)
        out, soft, first = model.stage_two(images, bokeh_small, defocus)
        terms = {"l1": F.l1_loss(out, targets)}
        if settings["grad_weight"]:
            terms["grad"] = settings["grad_weight"] * gradient_l1(out, targets)
        if settings["prior_weight"]:
            terms["prior"] = settings["prior_weight"] * F.l1_loss(soft, first)
    terms["total"] = sum(terms.values())
    return terms


def window_sharpness(settings: dict, stage: int, fraction: float) -> float:
    """Layer-window sharpness a at ``fraction`` (0 to 1) of a stage: in stage 1 it rises
    geometrically from ``warm_sharpness`` to the renderer's 100, so that early on every pixel's
    D gets a gradient (with a = 100 only D within ±0.02 of a level does); stage 2: 100."""
    from lensblur.systems.d2f.model import WINDOW_SHARPNESS

    start = settings.get("warm_sharpness", WINDOW_SHARPNESS) if stage == 1 else WINDOW_SHARPNESS
    return float(start * (WINDOW_SHARPNESS / start) ** fraction)


def trainable(model, stage: int):
    """Parameters trained in ``stage`` (stage 1: defocus net + radiance MLP; 2: the refine CNN),
    with the others frozen and stage-1 batch norm in eval mode during stage 2."""
    stage_one = list(model.defocus_net.parameters()) + list(model.radiance.parameters())
    for parameter in stage_one:
        parameter.requires_grad_(stage == 1)
    for parameter in model.refine.parameters():
        parameter.requires_grad_(stage == 2)
    model.train()
    if stage == 2:
        model.defocus_net.eval()
    return stage_one if stage == 1 else list(model.refine.parameters())


def train(args: argparse.Namespace, progress) -> dict:
    """Run (or continue) one stage; returns a summary (stage, steps, final loss, seconds, path)."""
    import torch

    from lensblur.systems.d2f.model import build
    from lensblur.training.checkpoint import load_checkpoint, save_checkpoint

    out = Path(args.out)
    checkpoint = None
    if args.resume:
        if not out.is_file():
            raise InputError(f"--resume: no checkpoint at {out} to continue from")
        checkpoint = load_checkpoint(out, SYSTEM)
    elif args.stage == 2:
        raise InputError(f"stage 2 starts from the stage-1 checkpoint: add --resume (it reads and then replaces {out})")
    previous = checkpoint["config"] if checkpoint else None
    model_config = dict(previous["model"]) if previous else {"width": args.width or 16, "features": args.features or 32}
    if previous and any(v is not None and v != model_config[k] for k, v in
                        (("width", args.width), ("features", args.features))):
        raise InputError("--width/--features differ from the checkpoint's: the model is fixed at stage 1")

    stored_settings, start_step, optimizer_state = None, 0, None
    history = list(checkpoint.get("history", [])) if checkpoint else []
    if checkpoint:
        done_stage, done_step = int(previous["stage"]), int(previous["stage_step"])
        if done_stage > args.stage:
            raise InputError(f"{out} is already past stage {args.stage}; use another --out")
        if done_stage == args.stage:
            stored_settings = previous["stage_settings"]
            if done_step >= stored_settings["steps"]:
                return {"stage": args.stage, "steps": done_step, "note": "stage already complete", "checkpoint": str(out)}
            start_step, optimizer_state = done_step, checkpoint.get("optimizer")
        elif done_step < previous["stage_settings"]["steps"]:
            raise InputError(f"stage 1 in {out} stopped at step {done_step}: finish it with --stage 1 --resume")
    settings = _settings(args, stored_settings)
    size = list(args.size or (previous["train_size"] if previous else DEFAULT_SIZE))

    torch.manual_seed(args.seed)
    model = build(model_config)
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
    parameters = trainable(model, args.stage)
    optimizer = torch.optim.Adam(parameters, lr=settings["lr"][0], betas=(0.9, 0.999))
    if optimizer_state:
        optimizer.load_state_dict(optimizer_state)

    pairs = load_examples(args, *size)
    if settings["defocus_weight"] and not all(p.has_disparity for p in pairs):
        raise InputError("--defocus-weight needs the true blur, i.e. a disparity map for every example")
    steps, batch = settings["steps"], min(settings["batch"], len(pairs))
    crop = tuple(min(c, s) for c, s in zip(settings["crop"], size))
    lr_start, lr_end = settings["lr"]

    def save(step: int, path=out, shipping=False):
        config = {"model": model_config, "stage": args.stage, "stage_step": step, "stage_settings": settings,
                  "train_size": size, "seed": args.seed}
        save_checkpoint(path, SYSTEM, config, model.state_dict(), step=step,
                        optimizer_state=None if shipping else optimizer.state_dict(), history=history)

    started = time.perf_counter()
    recent = []
    with progress(steps - start_step, f"d2f stage {args.stage}") as bar:
        for step in range(start_step, steps):
            rng = np.random.default_rng([args.seed, args.stage, step])
            indices = rng.choice(len(pairs), size=batch, replace=False)
            images, targets, radii = make_batch(pairs, indices, rng, crop)
            progress_fraction = step / max(steps - 1, 1)
            for group in optimizer.param_groups:
                group["lr"] = lr_start * (lr_end / lr_start) ** progress_fraction
            model.window_sharpness = window_sharpness(settings, args.stage, progress_fraction)
            terms = stage_losses(model, images, targets, radii, args.stage, settings)
            loss = terms["total"]
            descend(optimizer, loss, recent, bar, f"stage {args.stage} step {step}")
            history.append({"stage": args.stage, "step": step,
                            **{k: round(float(v.detach()), 6) for k, v in terms.items()}})
            if (step + 1) % SAVE_EVERY == 0 and step + 1 < steps:
                save(step + 1)
    save(steps)
    summary = {"stage": args.stage, "steps": f"{start_step}→{steps} (batch {batch}, crop {crop[0]}x{crop[1]} of "
                                             f"{size[0]}x{size[1]})",
               "loss (last 20 steps)": f"{np.mean(recent[-20:]):.5f}" if recent else "n/a",
               "seconds": f"{time.perf_counter() - started:.1f}", "checkpoint": str(out)}
    if args.ship:
        save(steps, Path(args.ship), shipping=True)
        summary["shipped"] = args.ship
    return summary

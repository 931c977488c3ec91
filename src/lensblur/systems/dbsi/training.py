"""``lensblur train dbsi``: the three training phases of DBSI (Dutta et al., section 4.3.2).

Phase 1: L1 loss at a small size; phase 2: L1 at twice that size; phase 3: negative SSIM at
the phase-2 size. Adam (β = 0.9, 0.999), learning rate decaying geometrically from 1e-3 (phase 1)
to 1e-5 (end of phase 3); random horizontal and vertical flips (section 4.3.3). ``--config paper``
is the paper's network (the full-width MegaDepth hourglass) at the paper's sizes, 384×512 and
768×1024, and ``--init megadepth:PATH`` starts it from MegaDepth's released weights (section 3.2);
``--config small`` (the default) is a 1/8-width hourglass at 96×128 and 192×256, which trains on
one CPU thread in minutes (docs/dbsi.md). Phases 2 and 3 start from the previous phase's checkpoint
(``--resume``); ``--resume`` within a phase continues an interrupted run exactly (the batch of
every step depends only on the seed, the phase and the step). ``--kernel-shape disc --linear
--prior --occlusion`` with ``--depth-input`` trains the disc-stack model of ``--renderer dbsi``
(not in the paper; the network learns corrections to an analytic blend, docs/dbsi.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lensblur.errors import InputError
from lensblur.training import descend, size_argument
from lensblur.training.checkpoint import half_state
from lensblur.training.losses import negative_ssim_loss

HELP = "DBSI: blend weights of Gaussian-blurred copies from a MegaDepth hourglass (Dutta et al.)"

PHASES = {
    # phase: (size HxW, steps, batch, learning rate start, end, loss)
    1: ((96, 128), 600, 4, 1e-3, 2e-4, "l1"),
    2: ((192, 256), 150, 2, 2e-4, 4e-5, "l1"),
    3: ((192, 256), 60, 2, 4e-5, 1e-5, "ssim"),
}
PAPER_SIZES = {1: (384, 512), 2: (768, 1024), 3: (768, 1024)}
"""Training size (H, W) of each phase in the paper (section 4.3.2), used by ``--config paper``."""
SAVE_EVERY = 50


_size = size_argument(16)


def _kernels(text: str) -> list[int]:
    try:
        kernels = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"kernels must be odd integers like 25,45,75, got {text!r}") from None
    if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
        raise argparse.ArgumentTypeError(f"kernels must be odd positive integers, got {text!r}")
    return kernels


def _init(text: str) -> str:
    kind, _, path = text.partition(":")
    if kind != "megadepth" or not path:
        raise argparse.ArgumentTypeError(f"--init takes megadepth:PATH (MegaDepth's released weights), got {text!r}")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """DBSI's own options of ``lensblur train dbsi``."""
    defaults = "; ".join(f"phase {p}: {s[0][0]}x{s[0][1]}, {s[1]} steps, batch {s[2]}, lr {s[3]:g}→{s[4]:g}, "
                         f"{s[5]}" for p, s in PHASES.items())
    parser.add_argument("--phase", type=int, default=1, choices=[1, 2, 3],
                        help=f"training phase (default 1). Defaults per phase: {defaults}")
    parser.add_argument("--size", type=_size, metavar="HxW", help="training size (multiples of 16; default by phase)")
    parser.add_argument("--steps", type=int, metavar="N", help="optimisation steps of this phase (default by phase)")
    parser.add_argument("--batch", type=int, metavar="N", help="images per step (default by phase)")
    parser.add_argument("--lr", type=float, nargs=2, metavar=("START", "END"),
                        help="learning rate at the first and last step of this phase (default by phase)")
    parser.add_argument("--kernels", type=_kernels, metavar="K,K,...",
                        help="Gaussian kernel sizes in pixels at --kernel-width (default 25,45,75, the paper's; "
                             "ablations: 75 or 5,25,45); phase 1 only, later phases keep the checkpoint's")
    parser.add_argument("--config", choices=["paper", "small"],
                        help="network and sizes: paper = the full-width MegaDepth hourglass (5.4 M parameters) at "
                             "384x512 / 768x1024 as published; small = width 0.125 (87 k parameters) at the CPU "
                             "sizes above (default small; phase 1 only, later phases keep the checkpoint's)")
    parser.add_argument("--init", type=_init, metavar="megadepth:PATH",
                        help="phase 1 of --config paper: start from MegaDepth's released weights "
                             "(best_generalization_net_G.pth); every layer but the last conv is copied")
    parser.add_argument("--width", type=float, metavar="W",
                        help="hourglass width multiplier (overrides --config; 1 = the full MegaDepth network)")
    parser.add_argument("--depth-input", action="store_true",
                        help="depth-conditioned variant: disparity and signed CoC as extra input channels")
    parser.add_argument("--kernel-shape", choices=["gaussian", "disc"],
                        help="blur kernels: gaussian (the paper's, default) or disc (uniform discs of diameter K, "
                             "default sizes 7,13,...,127; not in the paper, docs/dbsi.md)")
    parser.add_argument("--linear", action="store_true",
                        help="blend in linear light instead of sRGB (not in the paper)")
    parser.add_argument("--prior", action="store_true",
                        help="with --depth-input --kernel-shape disc: the analytic bracketing blend as a prior on the "
                             "logits, the last conv starting at zero (training learns corrections only)")
    parser.add_argument("--occlusion", action="store_true",
                        help="with --prior: pixels behind the focus do not gather over discs that sharper pixels "
                             "in front cover (no halo of the subject in the background)")
    parser.add_argument("--kernel-width", type=int, metavar="PX",
                        help="image width at which --kernels are measured (default 1024, the paper's)")
    parser.add_argument("--ship", metavar="PATH",
                        help="also write a float16 copy without optimizer state (for shipping) to PATH")


def _phase_settings(args, stored: dict | None = None) -> dict:
    """This phase's size, steps, batch, learning rates and loss: the stored ones of an
    interrupted phase (or the phase's defaults), with the options given on the command line."""
    size, steps, batch, lr_start, lr_end, loss = PHASES[args.phase]
    if getattr(args, "config", None) == "paper":
        size = PAPER_SIZES[args.phase]
    settings = dict(stored) if stored else {"size": list(size), "steps": steps, "batch": batch,
                                            "lr": [lr_start, lr_end], "loss": loss}
    for key, value in (("size", args.size), ("steps", args.steps), ("batch", args.batch), ("lr", args.lr)):
        if value is not None:
            settings[key] = list(value) if isinstance(value, (tuple, list)) else value
    if settings["steps"] <= 0 or settings["batch"] <= 0:
        raise InputError("--steps and --batch must be positive")
    return settings


def _model_config(args, previous: dict | None) -> dict:
    from lensblur.systems.dbsi.model import CONFIGS, DEFAULT_WIDTH, DISC_KERNELS, KERNEL_WIDTH, PAPER_KERNELS

    width = args.width if args.width is not None else CONFIGS.get(getattr(args, "config", None) or "", None)
    shape = getattr(args, "kernel_shape", None)
    given = {"kernels": args.kernels, "width": width, "depth_input": True if args.depth_input else None,
             "kernel_width": args.kernel_width, "kernel_shape": shape,
             "linear": True if getattr(args, "linear", False) else None,
             "prior": True if getattr(args, "prior", False) else None,
             "occlusion": True if getattr(args, "occlusion", False) else None}
    if previous is None:
        defaults = {"kernels": list(DISC_KERNELS if shape == "disc" else PAPER_KERNELS), "width": DEFAULT_WIDTH,
                    "depth_input": False, "kernel_width": KERNEL_WIDTH, "kernel_shape": "gaussian", "linear": False,
                    "prior": False, "occlusion": False}
        return {key: (value if value is not None else defaults[key]) for key, value in given.items()}
    # checkpoints written before these options
    previous = {"kernel_shape": "gaussian", "linear": False, "prior": False, "occlusion": False, **previous}
    for key, value in given.items():
        if value is not None and value != previous[key]:
            raise InputError(f"--{key.replace('_', '-')} {value} differs from the checkpoint's {previous[key]}: "
                             f"the model is fixed at phase 1")
    return {key: previous[key] for key in given}


def make_batch(pairs, indices, rng: np.random.Generator, depth_input: bool, kernel_width: int):
    """Tensors (images, targets, conditioning or None) of the chosen examples, each flipped at
    random horizontally and vertically (the same flip for image, target and disparity)."""
    import torch

    from lensblur.systems.dbsi.model import depth_channels
    from lensblur.training.data import random_flips

    images, targets, disparities = [], [], []
    for index in indices:
        pair = pairs[index]
        image, target, disparity = random_flips(rng, [pair.image, pair.target, pair.disparity])
        images.append(image.transpose(2, 0, 1))
        targets.append(target.transpose(2, 0, 1))
        disparities.append(disparity[None])
    images_t = torch.from_numpy(np.stack(images))
    targets_t = torch.from_numpy(np.stack(targets))
    conditioning = None
    if depth_input:
        conditioning = depth_channels(torch.from_numpy(np.stack(disparities)),
                                      torch.tensor([pairs[i].focus_disparity for i in indices], dtype=torch.float32),
                                      torch.tensor([pairs[i].blur for i in indices], dtype=torch.float32),
                                      images_t.shape[-1], kernel_width)
    return images_t, targets_t, conditioning


def train(args: argparse.Namespace, progress) -> dict:
    """Run (or continue) one phase; returns a summary (phase, steps, final loss, seconds, path)."""
    import torch

    from lensblur.systems.dbsi.model import build
    from lensblur.training.checkpoint import load_checkpoint, save_checkpoint
    from lensblur.training.data import load_resized

    settings = _phase_settings(args)
    out = Path(args.out)
    checkpoint = None
    if args.resume:
        if not out.is_file():
            raise InputError(f"--resume: no checkpoint at {out} to continue from")
        checkpoint = load_checkpoint(out, "dbsi")
    elif args.phase > 1:
        raise InputError(f"phase {args.phase} starts from the phase-{args.phase - 1} checkpoint: add --resume "
                         f"(it reads and then replaces {out})")
    previous = checkpoint["config"] if checkpoint else None
    if previous and getattr(args, "config", None) is None and previous.get("config"):
        args.config = previous["config"]  # later phases keep the paper's sizes
        settings = _phase_settings(args)
    config = _model_config(args, previous["model"] if previous else None)

    start_step, optimizer_state, history = 0, None, []
    total_before = 0
    if checkpoint:
        history = list(checkpoint.get("history", []))
        total_before = int(checkpoint["step"])
        done_phase, done_step = int(previous["phase"]), int(previous["phase_step"])
        if done_phase > args.phase:
            raise InputError(f"{out} is already past phase {args.phase} (phase {done_phase}); use another --out")
        if done_phase == args.phase:
            settings = _phase_settings(args, previous["phase_settings"])
            if done_step >= settings["steps"]:
                return {"phase": args.phase, "steps": done_step, "note": "phase already complete", "checkpoint": str(out)}
            start_step, optimizer_state = done_step, checkpoint.get("optimizer")
        elif done_step < previous["phase_settings"]["steps"]:
            raise InputError(f"phase {done_phase} in {out} stopped at step {done_step} of "
                             f"{previous['phase_settings']['steps']}: finish it with --phase {done_phase} --resume")

    init = getattr(args, "init", None)
    if init and checkpoint:
        raise InputError("--init starts a new phase-1 run; it cannot be combined with --resume")
    torch.manual_seed(args.seed)
    model = build(config)
    if init:
        from lensblur.systems.dbsi.model import init_from_megadepth

        init_from_megadepth(model, init)
    if checkpoint:
        model.load_state_dict({k: v.float() if torch.is_floating_point(v) else v
                               for k, v in checkpoint["model"].items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"][0], betas=(0.9, 0.999))
    if optimizer_state:
        optimizer.load_state_dict(optimizer_state)

    height, width = settings["size"]
    pairs = load_resized(args, height, width)
    if config["depth_input"] and not all(p.has_disparity for p in pairs):
        raise InputError("--depth-input needs a disparity map for every example (EBB!: pass a disparity folder)")
    steps, batch = settings["steps"], min(settings["batch"], len(pairs))
    lr_start, lr_end = settings["lr"]

    def learning_rate(step: int) -> float:
        return lr_start * (lr_end / lr_start) ** (step / max(steps - 1, 1))

    def save(step: int, path=out, shipping=False):
        stored = {"model": config, "phase": args.phase, "phase_step": step, "phase_settings": settings,
                  "train_size": [height, width], "seed": args.seed, "config": getattr(args, "config", None),
                  "init": (previous or {}).get("init") or ("megadepth:" + Path(init).name if init else None)}
        state = half_state(model.state_dict()) if shipping else model.state_dict()
        save_checkpoint(path, "dbsi", stored, state, step=total_before + step - start_step,
                        optimizer_state=None if shipping else optimizer.state_dict(), history=history)

    loss_fn = torch.nn.functional.l1_loss if settings["loss"] == "l1" else negative_ssim_loss
    model.train()
    started = time.perf_counter()
    recent = []
    with progress(steps - start_step, f"dbsi phase {args.phase}") as bar:
        for step in range(start_step, steps):
            rng = np.random.default_rng([args.seed, args.phase, step])
            indices = rng.choice(len(pairs), size=batch, replace=False)
            images, targets, conditioning = make_batch(pairs, indices, rng, config["depth_input"],
                                                       config["kernel_width"])
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step)
            loss = loss_fn(model(images, conditioning), targets)
            value = descend(optimizer, loss, recent, bar, f"phase {args.phase} step {step}")
            history.append({"phase": args.phase, "step": step, "loss": round(value, 6)})
            if (step + 1) % SAVE_EVERY == 0 and step + 1 < steps:
                save(step + 1)
    save(steps)
    summary = {"phase": args.phase, "steps": f"{start_step}→{steps} ({settings['size'][0]}x{settings['size'][1]}, "
                                             f"batch {batch}, {settings['loss']})",
               "loss (last 20 steps)": f"{np.mean(recent[-20:]):.5f}" if recent else "n/a",
               "seconds": f"{time.perf_counter() - started:.1f}", "checkpoint": str(out)}
    if args.ship:
        save(steps, Path(args.ship), shipping=True)
        summary["shipped"] = args.ship
    return summary

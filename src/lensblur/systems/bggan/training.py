"""``lensblur train bggan``: BGGAN's two training stages (section 3.2).

``--phase pretrain``: Glass-Net alone with L1 + negative SSIM (plus L1 on stage one's rough
result I − R, which is how stage one learns the residual R = I − O). ``--phase finetune``
(starts from ``--init PRETRAINED`` or continues ``--resume``): the hybrid loss of Eq. 3,
0.5·L1 + 0.05·L_SSIM + 0.1·L_VGG + L_adv, against the multi-receptive-field PatchGAN critic
trained with WGAN-GP (one critic step per generator step); ``--no-discriminator`` is the
ablation of Eq. 7. Adam with β = (0, 0.9) and learning rate 1e-4 for both networks.

L_VGG needs torchvision's ImageNet VGG19 state dict (``--vgg FILE``, e.g. ``vgg19-dcbb9e9d.pth``);
nothing is downloaded. Without it the term is dropped and the summary says so (docs/bggan.md
measures what that costs). Input is the image alone (no depth), so the training pairs should be
focused on the nearest subject, as EBB! is: ``lensblur synth DIR --focus nearest``.

The batch of every step depends only on (seed, phase, step), so ``--resume`` continues an
interrupted run exactly on the same machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lensblur.errors import InputError
from lensblur.training import descend, size_argument

HELP = "BGGAN: Glass-Net with a multi-receptive-field WGAN-GP critic, image only (Qian et al.)"
SYSTEM = "bggan"
SAVE_EVERY = 100
NORM_CHOICES = ("instance", "none", "batch")
"""= :data:`lensblur.systems.bggan.model.NORMS`, repeated so that the parser needs no torch."""


_size = size_argument(8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """BGGAN's own options of ``lensblur train bggan`` (no torch import: the CLI builds this parser
    at start-up)."""
    parser.add_argument("--phase", default="pretrain", choices=["pretrain", "finetune"],
                        help="pretrain: L1 − SSIM; finetune: Eq. 3 with the critic (default pretrain)")
    parser.add_argument("--init", metavar="CKPT", help="finetune: start from this pretrained checkpoint")
    parser.add_argument("--width", type=float, default=1.0, metavar="W",
                        help="channel multiplier of Glass-Net (default 1 = the paper's 16/128 and 32/256)")
    parser.add_argument("--norm", default="instance", choices=list(NORM_CHOICES),
                        help="normalisation in the residual blocks (default instance; ablations: none, batch)")
    parser.add_argument("--crop", type=_size, default=(256, 256), metavar="HxW",
                        help="random training crop (multiples of 8; default 256x256)")
    parser.add_argument("--load-size", type=_size, metavar="HxW",
                        help="resize every example to this size as it is read (e.g. 512x768 for EBB!)")
    parser.add_argument("--steps", type=int, default=2000, metavar="N", help="optimisation steps (default 2000)")
    parser.add_argument("--batch", type=int, default=4, metavar="N", help="crops per step (default 4; paper 1)")
    parser.add_argument("--lr", type=float, metavar="LR", help="learning rate (default 1e-4, the paper's)")
    parser.add_argument("--vgg", metavar="FILE",
                        help="torchvision VGG19 ImageNet state dict for L_VGG (finetune); 'random' uses a "
                             "randomly initialised VGG19 (fixed seed) as a stand-in, for the ablation")
    parser.add_argument("--no-discriminator", action="store_true", help="finetune without the critic (Eq. 7)")
    parser.add_argument("--critic-channels", type=int, default=64, metavar="N",
                        help="channels of the first critic layer (default 64, pix2pix's)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu; e.g. cuda)")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="stop after S seconds of training even before --steps (the summary gives the steps done)")
    parser.add_argument("--save-every", type=int, default=SAVE_EVERY, metavar="N",
                        help=f"write the checkpoint every N steps (default {SAVE_EVERY})")
    parser.add_argument("--ship", metavar="PATH",
                        help="also write a float16 copy of the generator without optimizer state to PATH")


def make_batch(pairs, rng: np.random.Generator, batch: int, crop: tuple[int, int]):
    """(images, targets) N×3×h×w float32 arrays in [-1, 1]: random examples, the same random crop
    and flips of image and target."""
    from lensblur.training.data import random_crop, random_flips

    images, targets = [], []
    for index in rng.choice(len(pairs), size=batch, replace=len(pairs) < batch):
        pair = pairs[index]
        image, target = random_flips(rng, random_crop(rng, [pair.image, pair.target], *crop), vertical=False)
        images.append(image.transpose(2, 0, 1))
        targets.append(target.transpose(2, 0, 1))
    return np.stack(images) * 2 - 1, np.stack(targets) * 2 - 1


def load_vgg_file(path: str, device):
    """VGG19 relu5_4 features from a torchvision state dict file (or ``"random"``: a
    randomly initialised stand-in, seed 0); one-line InputError otherwise."""
    from lensblur.models import load_tensors
    from lensblur.systems.bggan.model import load_vgg19, random_vgg19

    if path == "random":
        return random_vgg19().to(device)
    state = load_tensors(path, "VGG19 weights")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        return load_vgg19(state if isinstance(state, dict) else {}).to(device)
    except ValueError as error:
        raise InputError(f"VGG19 weights {path}: {error}") from None


def _start(args, torch):
    """(generator, config, step, history, optimizer states or None) for this phase."""
    from lensblur.systems.bggan.model import build
    from lensblur.training.checkpoint import load_checkpoint

    source = None
    if args.resume:
        if not Path(args.out).is_file():
            raise InputError(f"--resume: no checkpoint at {args.out} to continue from")
        source = load_checkpoint(args.out, SYSTEM)
        if source["config"].get("phase") != args.phase:
            raise InputError(f"{args.out} holds phase {source['config'].get('phase')!r}, not {args.phase!r}: "
                             f"finetune a pretrained checkpoint with --init instead")
    elif args.phase == "finetune":
        if not args.init:
            raise InputError("--phase finetune starts from a pretrained checkpoint: add --init CKPT")
        source = load_checkpoint(args.init, SYSTEM)
    elif args.init:
        raise InputError("--init is for --phase finetune")
    model_config = dict(source["config"]["model"]) if source else {"width": args.width, "norm": args.norm}
    model = build(model_config)
    if source:
        try:
            model.load_state_dict({k: v.float() if torch.is_floating_point(v) else v for k, v in source["model"].items()})
        except (RuntimeError, KeyError) as error:
            raise InputError(f"checkpoint does not match its Glass-Net config ({str(error).splitlines()[0][:160]})") from None
    config = {"model": model.config, "phase": args.phase,
              "pretrained": dict(source["config"].get("pretrained") or {}) if source and args.resume else {}}
    if args.phase == "finetune" and not args.resume:
        config["pretrained"] = {"steps": int(source["step"]), "from": str(args.init)}
    if args.resume:
        return model, {**source["config"], **config}, int(source["step"]), list(source["history"]), source["optimizer"]
    return model, config, 0, [], None


def train(args: argparse.Namespace, progress) -> dict:
    """Run (or continue) one phase; returns a summary (phase, steps, losses, seconds, path)."""
    from lensblur.models import require_torch

    torch = require_torch()
    from lensblur.systems.bggan import losses
    from lensblur.systems.bggan.model import PATCH_DEPTHS, MultiReceptiveFieldCritic
    from lensblur.training.checkpoint import half_state, save_checkpoint
    from lensblur.training.data import load_pairs

    if args.steps <= 0 or args.batch <= 0:
        raise InputError("--steps and --batch must be positive")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise InputError(f"--device {args.device!r}: not a torch device (cpu, cuda, cuda:1, …)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: this torch has no usable CUDA GPU (the default is cpu)")
    torch.manual_seed(args.seed)
    model, config, step, history, states = _start(args, torch)
    adversarial = args.phase == "finetune" and not args.no_discriminator
    config.update({"crop": list(args.crop), "batch": args.batch, "seed": args.seed,
                   "discriminator": adversarial, "vgg": (args.vgg if args.vgg == "random" else bool(args.vgg))
                   if args.phase == "finetune" else None,
                   "critic_channels": args.critic_channels if adversarial else None})
    smallest = 4 * 2 ** max(PATCH_DEPTHS)
    if adversarial and min(args.crop) < smallest:
        raise InputError(f"--crop must be at least {smallest}x{smallest} for the deepest PatchGAN critic "
                         f"(or fine-tune with --no-discriminator)")
    lr = args.lr if args.lr is not None else losses.LEARNING_RATE
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=losses.ADAM_BETAS)
    critic = critic_optimizer = None
    if adversarial:
        critic = MultiReceptiveFieldCritic(channels=args.critic_channels).to(device)
        critic_optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=losses.ADAM_BETAS)
    if states:
        optimizer.load_state_dict(states["generator"])
        if critic is not None and "critic" in states:
            critic.load_state_dict(states["critic"])
            critic_optimizer.load_state_dict(states["critic_optimizer"])
    features = load_vgg_file(args.vgg, device) if args.vgg and args.phase == "finetune" else None

    pairs = load_pairs(args.data, layout=args.layout, split=args.split, limit=args.limit,
                       size=tuple(args.load_size) if args.load_size else None)
    least_h, least_w = (min(p.image.shape[axis] for p in pairs) for axis in (0, 1))
    if least_h < args.crop[0] or least_w < args.crop[1]:
        raise InputError(f"the smallest examples ({least_h}x{least_w}) are smaller than --crop "
                         f"{args.crop[0]}x{args.crop[1]}")
    config["scene_short_side"] = min(least_h, least_w)  # the renderer runs the network at this scale

    def save(at: int, path=args.out, shipping: bool = False):
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        optimizer_state = None
        if not shipping:
            optimizer_state = {"generator": optimizer.state_dict()}
            if critic is not None:
                optimizer_state.update({"critic": {k: v.detach().cpu() for k, v in critic.state_dict().items()},
                                        "critic_optimizer": critic_optimizer.state_dict()})
        save_checkpoint(path, SYSTEM, config, half_state(state) if shipping else state, step=at,
                        optimizer_state=optimizer_state, history=history)

    started, recent = time.perf_counter(), []
    with progress(args.steps, f"bggan {args.phase}") as bar:
        bar.update(min(step, args.steps))
        while step < args.steps and (args.time_limit is None or time.perf_counter() - started < args.time_limit):
            rng = np.random.default_rng([args.seed, 0 if args.phase == "pretrain" else 1, step])
            mixing = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
            images, targets = (torch.from_numpy(a).to(device) for a in make_batch(pairs, rng, args.batch, args.crop))
            parts = {}
            if adversarial:
                with torch.no_grad():
                    fake = model(images)
                d_loss = losses.critic_loss(critic, targets, fake, mixing)
                critic_optimizer.zero_grad()
                d_loss.backward()
                critic_optimizer.step()
                parts["critic"] = d_loss
            if args.phase == "pretrain":
                rough, output = model.stages(images)
                loss, more = losses.pretrain_loss(rough, output, targets)
            else:
                if critic is not None:
                    critic.requires_grad_(False)
                loss, more = losses.hybrid_loss(model(images), targets, features, critic)
                if critic is not None:
                    critic.requires_grad_(True)
            descend(optimizer, loss, recent, bar, f"step {step}")
            step += 1
            parts.update(more)
            if step % 25 == 0 or step == args.steps:
                history.append({"step": step, "loss": round(float(np.mean(recent[-25:])), 6),
                                **{k: round(float(v.detach()), 6) for k, v in parts.items()}})
            if step % args.save_every == 0 and step < args.steps:
                save(step)
    save(step)
    summary = {"phase": args.phase, "steps": step, "examples": len(pairs),
               "loss (last 20 steps)": f"{np.mean(recent[-20:]):.5f}" if recent else "n/a",
               "seconds": f"{time.perf_counter() - started:.1f}", "checkpoint": str(args.out)}
    if args.phase == "finetune":
        summary["L_VGG"] = ("dropped: no --vgg weights given (docs/bggan.md)" if features is None else
                            "randomly initialised VGG19 relu5_4 (stand-in)" if args.vgg == "random" else
                            "VGG19 relu5_4 (ImageNet weights)")
        summary["critic"] = "multi-receptive-field WGAN-GP" if adversarial else "none (Eq. 7)"
    if args.ship:
        save(step, Path(args.ship), shipping=True)
        summary["shipped"] = args.ship
    return summary

"""``lensblur train``: train a learned renderer on a dataset folder and write a checkpoint."""

from __future__ import annotations

import argparse
import importlib

from lensblur.errors import InputError
from lensblur.progress import progress_bar

NAME = "train"
HELP = "train a learned renderer (dbsi, deeplens, portrait-rnn, bggan, d2f) on synthetic scenes or EBB!"
EXAMPLES = """examples:
  lensblur synth train-scenes --count 200 --seed 11 --size 192x256
  lensblur train dbsi --data train-scenes --out dbsi.pt --phase 1
  lensblur train dbsi --data train-scenes --out dbsi.pt --phase 2 --resume
  lensblur train deeplens --data train-scenes --out deeplens.pt
  lensblur train dbsi --data EBB --split train4400 --out dbsi-ebb.pt
  lensblur synth nearest-scenes --count 200 --seed 11 --size 256x384 --focus nearest
  lensblur train bggan --data nearest-scenes --out bggan.pt --phase pretrain
  lensblur train bggan --data nearest-scenes --out bggan-ft.pt --phase finetune --init bggan.pt
  lensblur train d2f --data nearest-scenes --out d2f.pt --stage 1
  lensblur train d2f --data nearest-scenes --out d2f.pt --stage 2 --resume

Needs torch (pip install 'lensblur[torch]'). Seeds are fixed (--seed), so the same data and
command give the same checkpoint on the same machine. --resume continues from --out. The
commands that made the shipped checkpoints are in docs/training.md.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``lensblur train SYSTEM`` with the common options and each system's own."""
    from lensblur.training import TRAINERS

    systems = parser.add_subparsers(dest="system", metavar="SYSTEM")
    for name, module_name in TRAINERS.items():
        module = importlib.import_module(module_name)  # trainers import torch only when they run
        sub = systems.add_parser(name, help=module.HELP, description=module.HELP)
        sub.add_argument("--data", required=True, metavar="DIR",
                         help="dataset folder: lensblur synth scenes, X_image/_disparity/_gt, or EBB!")
        sub.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (.pt)")
        sub.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
        sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sub.add_argument("--threads", type=int, default=0, metavar="N",
                         help="torch CPU threads (default: all cores)")
        sub.add_argument("--layout", default="auto", choices=["auto", "synth", "folders", "ebb"],
                         help="dataset layout (default: detect)")
        sub.add_argument("--split", default="all", choices=["all", "val294", "train4400"],
                         help="EBB! subset (default all; train4400 keeps Val294 out)")
        sub.add_argument("--limit", type=int, metavar="N", help="use only the first N examples")
        module.add_arguments(sub)
        sub.set_defaults(trainer=module)


def run(args: argparse.Namespace) -> int:
    """Train the chosen system and print the summary the trainer returns."""
    from lensblur.models import require_torch

    if getattr(args, "system", None) is None:
        raise InputError("choose a system to train: lensblur train {dbsi,deeplens,portrait-rnn,bggan,d2f} --data DIR --out CKPT")
    torch = require_torch()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet = getattr(args, "quiet", False)
    summary = args.trainer.train(args, lambda total, description: progress_bar(total, description, quiet))
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0

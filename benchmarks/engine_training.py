"""Loss curves of checkpoints trained on the engine's scenes, read from the files themselves.

    python benchmarks/engine_training.py                         # the shipped deeplens-depth.pt
    python benchmarks/engine_training.py CKPT... --first 0,5600,0   # also runs that were not shipped

Every checkpoint keeps its loss history (lensblur.training.checkpoint); this prints it as a table
of the mean loss over windows of steps, with the steps and configuration, to
benchmarks/results/engine_training.md. Wall-clock times are in docs/training.md (they are not
stored in the checkpoints).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lensblur.training.checkpoint import SYSTEMS_DIR, load_checkpoint

HERE = Path(__file__).resolve().parent
SHIPPED = SYSTEMS_DIR / "deeplens" / "weights" / "deeplens-depth.pt"


def curve(history: list[dict], first_step: int, window: int) -> list[tuple[int, float]]:
    """(last step, mean loss) per ``window`` steps of the history entries after ``first_step``."""
    entries = [(int(h["step"]), float(h["loss"])) for h in history if int(h["step"]) > first_step]
    rows = []
    for start in range(first_step, entries[-1][0] if entries else first_step, window):
        chunk = [loss for step, loss in entries if start < step <= start + window]
        if chunk:
            rows.append((min(start + window, entries[-1][0]), float(np.mean(chunk))))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", default=[str(SHIPPED)], help="checkpoint files")
    parser.add_argument("--first", default="", help="per checkpoint, the step its engine run started from "
                                                     "(comma-separated; default 0: a run from scratch)")
    parser.add_argument("--window", type=int, default=25, help="steps per row (default 25)")
    parser.add_argument("--out", default=str(HERE / "results" / "engine_training.md"))
    args = parser.parse_args(argv)
    lines = ["# Training on the engine's scenes: loss curves of the shipped checkpoints", "",
             "`python benchmarks/engine_training.py` (from the loss history each shipped file keeps). "
             "Commands and wall-clock times: docs/training.md.", ""]
    firsts = [int(v) for v in args.first.split(",") if v.strip()]
    for index, path in enumerate(args.checkpoints):
        payload = load_checkpoint(path)
        config, history = payload["config"], payload["history"]
        first = firsts[index] if index < len(firsts) else 0
        lines += [f"## {Path(path).name} ({payload['system']})", "",
                  f"- steps: {payload['step']} (this table: after step {first})",
                  f"- config: `{config}`", "", "| up to step | mean loss |", "|---:|---:|"]
        lines += [f"| {step} | {loss:.4f} |" for step, loss in curve(history, first, args.window)]
        lines.append("")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

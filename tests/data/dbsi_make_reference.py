"""Regenerate tests/data/dbsi_reference.npz after the shipped DBSI checkpoint changes.

    .venv/bin/python tests/data/dbsi_make_reference.py

A small synthetic scene (seed 99, 48×72) rendered with ``--renderer dbsi`` and the shipped
default checkpoint; tests/test_dbsi.py checks that the checkpoint still reproduces it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from lensblur import evaluate
from lensblur.renderers import render_with
from lensblur.systems.dbsi.renderer import load_dbsi
from lensblur.synth.dataset import generate

torch.set_num_threads(1)
with tempfile.TemporaryDirectory() as folder:
    generate(folder, 1, 99, 48, 72, workers=0)
    sample = next(evaluate.iter_samples(folder, "synth"))
model, train_size = load_dbsi()
output = render_with("dbsi", sample.image, sample.disparity, sample.lens)
meta = {"blur": sample.lens.blur, "focus_disparity": sample.lens.focus_disparity,
        "depth_input": model.depth_input, "train_size": list(train_size)}
np.savez_compressed(Path(__file__).with_name("dbsi_reference.npz"), image=sample.image,
                    disparity=sample.disparity, output=output, meta=json.dumps(meta))
print("wrote dbsi_reference.npz", meta)

"""Writes tests/data/portrait_rnn_reference.npz: a small portrait scene and what the shipped
portrait-rnn checkpoint renders from it (rerun after retraining the shipped checkpoint):

    .venv/bin/python tests/data/portrait_rnn_make_reference.py
"""

from pathlib import Path

import numpy as np

from lensblur.lens import Lens
from lensblur.renderers import render_with
from lensblur.synth.dataset import srgb8_to_linear
from lensblur.synth.people import make_portrait_scene
from lensblur.synth.thinlens import camera_image, visible_disparity

OUT = Path(__file__).resolve().parent / "portrait_rnn_reference.npz"


def main() -> None:
    scene, matte = make_portrait_scene(np.random.default_rng([2026, 1]), 48, 64)
    image8 = camera_image(scene)
    disparity = visible_disparity(scene)
    lens = Lens(blur=float(scene.blur), focus_disparity=float(scene.focus_disparity))
    output = render_with("portrait-rnn", srgb8_to_linear(image8), disparity, lens, matte=matte)
    np.savez_compressed(OUT, image8=image8, disparity=disparity, matte=matte, blur=np.float32(lens.blur),
                        focus=np.float32(lens.focus_disparity), output=output.astype(np.float32))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

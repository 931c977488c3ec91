"""Build the bundled example: scikit-image's astronaut photo (public domain, NASA) and a
disparity map for it.

The disparity is made once, here, and committed: the subject is cut out with OpenCV's GrabCut
from a hand-drawn outline around her (head, suit and the helmet she holds), given disparity
0.8 with a 1–2 px anti-aliased edge, and the room behind her
gets a smooth ramp from 0.25 (bottom) to 0.05 (top). Run from the repository root:

    .venv/bin/python examples/make_astronaut_example.py
"""

from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage import data

HERE = Path(__file__).parent


def main() -> None:
    rgb = data.astronaut()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    mask = np.full(rgb.shape[:2], cv2.GC_BGD, np.uint8)
    outline = np.array([(150, 60), (175, 15), (285, 15), (315, 80), (300, 160), (330, 175), (372, 260),
                        (372, 335), (430, 343), (480, 362), (511, 420), (511, 511), (10, 511), (15, 290), (60, 225), (120, 175),
                        (145, 150)], np.int32)
    cv2.fillPoly(mask, [outline], cv2.GC_PR_FGD)
    cv2.ellipse(mask, (228, 105), (50, 60), 0, 0, 360, cv2.GC_FGD, -1)       # face
    cv2.fillPoly(mask, [np.array([(90, 300), (330, 300), (330, 480), (90, 480)], np.int32)], cv2.GC_FGD)
    cv2.ellipse(mask, (390, 440), (90, 60), 0, 0, 360, cv2.GC_FGD, -1)      # helmet
    bg_model, fg_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, mask, None, bg_model, fg_model, 8, cv2.GC_INIT_WITH_MASK)
    subject = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    subject = cv2.morphologyEx(subject, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    subject = cv2.morphologyEx(subject, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    subject = ndimage.binary_fill_holes(subject > 0.5).astype(np.float32)
    # GrabCut leaves the helmet's white rim (as bright as the wall) outside: grow the cut-out
    subject = cv2.dilate(subject, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    soft = cv2.GaussianBlur(subject, (0, 0), 0.7)
    rows = np.linspace(0.05, 0.25, rgb.shape[0], dtype=np.float32)[:, None]
    disparity = soft * 0.8 + (1 - soft) * rows
    cv2.imwrite(str(HERE / "astronaut.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(HERE / "astronaut_disparity.png"), np.round(disparity * 65535).astype(np.uint16))


if __name__ == "__main__":
    main()

"""Synthetic layered scenes with exact thin-lens ground truth (for evaluation and training).

    make_scene(rng, height, width) -> Scene           random layered scene
    render_ground_truth(scene) -> linear H×W×3        accumulation-buffer thin-lens image
    camera_image(scene) -> uint8 sRGB                 all-in-focus view as a camera records it
    visible_disparity(scene) -> float32 H×W           disparity of the visible surface
    generate(folder, count, seed, height, width)      write a dataset folder (kind="night" for night)
    make_night_scene(rng, height, width) -> (Scene, lamps)   street lamps, reflections (synth.night)
    small_aperture_photo(scene, glare) -> uint8 sRGB  the stopped-down photo: glare, starbursts, clipped
    make_daylight_scene(rng, height, width, kind)     clipped daylight surfaces that must not sparkle
"""

from lensblur.synth.night import make_daylight_scene, make_night_scene, random_glare, small_aperture_photo
from lensblur.synth.scene import Layer, Scene, make_scene
from lensblur.synth.thinlens import (aperture_samples, camera_image, render_ground_truth, render_pinhole,
                                     visible_disparity)

__all__ = ["Layer", "Scene", "make_scene", "render_ground_truth", "render_pinhole", "camera_image",
           "visible_disparity", "aperture_samples", "make_night_scene", "make_daylight_scene", "random_glare",
           "small_aperture_photo"]

"""Night lights: lamp energy from glare, glare and spike removal, daylight left alone, disc brightness."""

import math

import numpy as np
import pytest

from lensblur.color import luminance, srgb_to_linear
from lensblur.highlights import AREA_SHARE, highlight_gain, recover_highlights
from lensblur.lamps import find_lights, glare_r0
from lensblur.lens import Highlights, Lens
from lensblur.renderers.scatter import render_scatter
from lensblur.synth.night import (Glare, Lamp, add_glare, lamp_discs, make_daylight_scene, make_night_scene,
                                  random_glare, small_aperture_photo, _paint_disc)
from lensblur.synth.thinlens import camera_image, encode_srgb8, render_ground_truth, visible_disparity

BACKGROUND = np.float32(0.004)


def _lamp_photo(radiance, radius, glare, size=160):
    """A dark frame with one lamp in the middle, as a stopped-down camera records it (linear, 8-bit)."""
    hdr = np.full((size, size, 3), BACKGROUND, np.float32)
    _paint_disc(hdr, size / 2, size / 2, radius, np.array(radiance, np.float32))
    true_energy = float((luminance(hdr) - luminance(np.full_like(hdr, BACKGROUND))).sum())
    encoded = encode_srgb8(add_glare(hdr, glare))
    return srgb_to_linear(encoded.astype(np.float32) / 255), true_energy


def _clipped(linear):
    return linear.max(axis=2) >= srgb_to_linear(np.float32(0.99))


@pytest.mark.parametrize("radiance, radius, share, power", [
    ((40.0, 30.0, 12.0), 4.0, 0.045, 3.0),   # a lamp with a core of ~50 px
    ((200.0, 200.0, 200.0), 0.8, 0.045, 3.0),  # a point
    ((25.0, 25.0, 25.0), 3.0, 0.03, 2.7),    # weaker, flatter glare than the model assumes
])
def test_energy_estimate_of_a_synthetic_lamp(radiance, radius, share, power):
    linear, true_energy = _lamp_photo(radiance, radius, Glare(share=share, r0=glare_r0((160, 160)), power=power,
                                                              ray_share=0.008, ray_length=12.0))
    lights = find_lights(linear, _clipped(linear))
    assert lights is not None and lights.count == 1
    core = lights.weight > 0
    colour = lights.cleaned[core].mean(axis=0)  # the core gets the halo's colour back
    estimated = float((lights.radiance[core] * luminance(colour[None, :])[0]).sum())
    # the energy of what the camera kept unclipped is about the core area alone
    assert estimated > 3 * core.sum()
    assert estimated == pytest.approx(true_energy, rel=0.45)
    if radiance[2] < radiance[0]:
        assert colour[2] < 0.6 * colour[0]  # a warm lamp stays warm


def test_glare_and_spikes_removed_leave_the_dark_surround():
    linear, _ = _lamp_photo((60.0, 60.0, 60.0), 3.0, Glare(share=0.05, r0=glare_r0((160, 160)), rays=12,
                                                           ray_share=0.015, ray_length=20.0))
    lights = find_lights(linear, _clipped(linear))
    y, x = np.mgrid[0:160, 0:160]
    distance = np.hypot(x - 80, y - 80)
    ring = (distance > 7) & (distance < 40)
    before, after = luminance(linear)[ring], luminance(lights.cleaned)[ring]
    assert before.max() > 20 * BACKGROUND  # glare and spikes were there
    assert np.percentile(after, 99) < 4 * BACKGROUND
    assert abs(float(np.median(after)) - BACKGROUND) < 0.5 * BACKGROUND
    # through the renderer: in focus nothing changes, defocused the glare is gone
    coc_far = np.full((160, 160), 10.0, np.float32)
    assert np.array_equal(recover_highlights(linear, np.zeros_like(coc_far), Highlights()), linear)
    assert np.percentile(luminance(recover_highlights(linear, coc_far, Highlights()))[ring], 99) < 4 * BACKGROUND


@pytest.mark.parametrize("kind", ["leaves", "water", "sky", "wall", "glints"])
def test_daylight_clipped_areas_are_not_boosted(kind):
    scene = make_daylight_scene(np.random.default_rng([5, 1]), 320, 480, kind)
    linear = srgb_to_linear(camera_image(scene).astype(np.float32) / 255)
    clipped = _clipped(linear)
    assert clipped.mean() > 0.002
    assert find_lights(linear, clipped) is None  # no lamps in daylight
    gain = highlight_gain(linear, np.full(clipped.shape, 12.0, np.float32), Highlights())
    strength = Highlights().strength
    # large clipped areas keep the small area share, crowded glints at most a quarter of a light's
    # boost: no clipped surface here is brighter than 2 in truth, a light would get 1 + strength
    assert float(np.percentile(gain[clipped], 90)) <= 1 + strength / 4
    assert float(np.percentile(gain[clipped], 99)) < 1 + 0.5 * strength  # a lone glint still looks like a light


def test_few_small_spots_keep_the_full_boost():
    linear = np.full((120, 160, 3), 0.3, np.float32)
    linear[40:42, 50:52] = 1.0
    linear[80:82, 120:122] = 1.0
    gain = highlight_gain(linear, np.full((120, 160), 12.0, np.float32), Highlights(lamps=False))
    assert gain[40, 50] > 1 + 0.8 * Highlights().strength


def test_night_scene_disc_brightness_within_15_percent():
    rng = np.random.default_rng([19, 3])
    scene, lamps = make_night_scene(rng, 160, 240, lamps=6)
    photo = small_aperture_photo(scene, random_glare(rng, 160 / 384))
    truth = encode_srgb8(render_ground_truth(scene))
    lens = Lens(blur=scene.blur, focus_disparity=scene.focus_disparity, aperture=scene.aperture)
    disparity = visible_disparity(scene)
    radius_rows = np.abs(scene.coc(scene.layers[0])[:, 0])
    discs = lamp_discs(lamps, radius_rows, scene.layers[-1].alpha)
    assert len(discs) >= 3

    def ratio(highlights):
        out = encode_srgb8(render_scatter(srgb_to_linear(photo.astype(np.float32) / 255), disparity,
                                          lens.with_(highlights=highlights)))
        lum = luminance(srgb_to_linear(out.astype(np.float32) / 255))
        ref = luminance(srgb_to_linear(truth.astype(np.float32) / 255))
        return float(np.mean([lum[inner].mean() / ref[inner].mean() for inner, _ in discs]))

    assert ratio(Highlights()) == pytest.approx(1.0, abs=0.15)
    assert ratio(Highlights(lamps=False)) < 0.6  # the size rule alone leaves them dim


def test_night_scene_is_deterministic():
    a, lamps_a = make_night_scene(np.random.default_rng(4), 64, 96)
    b, lamps_b = make_night_scene(np.random.default_rng(4), 64, 96)
    assert lamps_a == lamps_b and all(np.array_equal(x.rgb, y.rgb) for x, y in zip(a.layers, b.layers))
    assert any(lamp.reflection for lamp in lamps_a) or len(lamps_a) < 3
    assert max(max(lamp.radiance) for lamp in lamps_a) > 6
    assert math.isfinite(a.blur) and a.blur > 0


def test_web_default_models_night_lamps():
    from types import SimpleNamespace

    from lensblur.web.app import parse_settings

    session = SimpleNamespace(full_size=(480, 320), focus_disparity=0.8,
                              disparity_range=np.array([0.0, 1.0], np.float32),
                              depth=SimpleNamespace(blur_at_infinity=None,
                                                    disparity=np.linspace(0, 1, 480 * 320, dtype=np.float32)
                                                    .reshape(320, 480)))
    lens, _ = parse_settings({}, session)
    assert lens.highlights == Highlights()  # the slider's default: lamps modelled at their estimate
    assert lens.highlights.lamps


def test_subject_path_removes_glare_too():
    linear, _ = _lamp_photo((60.0, 60.0, 60.0), 3.0, Glare(share=0.05, r0=glare_r0((160, 160))))
    disparity = np.full((160, 160), 0.2, np.float32)
    disparity[120:, :40] = 0.9
    matte = (disparity > 0.5).astype(np.float32)
    lens = Lens(blur=20.0, focus_disparity=0.9)
    plain = render_scatter(linear, disparity, lens)
    with_matte = render_scatter(linear, disparity, lens, matte=matte)
    spots_only = render_scatter(linear, disparity, lens.with_(highlights=Highlights(lamps=False)), matte=matte)
    y, x = np.mgrid[0:160, 0:160]
    halo = (np.hypot(x - 80, y - 80) > 26) & (np.hypot(x - 80, y - 80) < 45)
    assert luminance(with_matte)[halo].mean() == pytest.approx(luminance(plain)[halo].mean(), rel=0.1)
    assert luminance(with_matte)[halo].mean() - BACKGROUND < 0.5 * (luminance(spots_only)[halo].mean() - BACKGROUND)
    disc = np.hypot(x - 80, y - 80) < 14
    assert np.clip(with_matte, 0, 1)[disc].mean() > 2 * np.clip(spots_only, 0, 1)[disc].mean()


def test_cli_renders_night_lamps_as_bright_discs(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    rng = np.random.default_rng([19, 3])
    scene, lamps = make_night_scene(rng, 160, 240, lamps=6)
    photo = small_aperture_photo(scene, random_glare(rng, 160 / 384))
    cv2.imwrite(str(tmp_path / "night.png"), photo[..., ::-1])
    cv2.imwrite(str(tmp_path / "d.png"), np.round(visible_disparity(scene) * 65535).astype(np.uint16))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    outputs = {}
    for mode in ("on", "spots"):
        out = tmp_path / f"{mode}.png"
        result = subprocess.run([sys.executable, "-m", "lensblur", "render", str(tmp_path / "night.png"), "--depth",
                                 str(tmp_path / "d.png"), "--blur", f"{scene.blur:.3f}", "--focus-disparity",
                                 f"{scene.focus_disparity:.4f}", "--highlights", mode, "-q", "-o", str(out)],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs[mode] = cv2.imread(str(out))[..., ::-1]
    discs = lamp_discs(lamps, np.abs(scene.coc(scene.layers[0])[:, 0]), scene.layers[-1].alpha)
    assert discs
    inner = np.any([d[0] for d in discs], axis=0)
    assert outputs["on"][inner].mean() > 1.3 * outputs["spots"][inner].mean()
    bad = subprocess.run([sys.executable, "-m", "lensblur", "render", str(tmp_path / "night.png"), "--depth",
                          str(tmp_path / "d.png"), "--highlights", "lamps", "-o", str(tmp_path / "x.png")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode != 0 and "spots" in bad.stderr and "Traceback" not in bad.stderr


def test_night_dataset_folder_is_deterministic(tmp_path):
    import json

    from lensblur.synth.dataset import generate, read_srgb8

    for name in ("a", "b"):
        generate(tmp_path / name, 1, 5, 64, 96, workers=1, kind="night")
    meta = json.loads((tmp_path / "a" / "0000_meta.json").read_text())
    assert meta["kind"] == "night" and meta["lamps"] and 0.02 <= meta["glare"]["share"] <= 0.08
    for suffix in ("image", "gt"):
        assert np.array_equal(read_srgb8(tmp_path / "a" / f"0000_{suffix}.png"),
                              read_srgb8(tmp_path / "b" / f"0000_{suffix}.png"))
    with pytest.raises(Exception, match="kind"):
        generate(tmp_path / "c", 1, 5, 64, 96, workers=1, kind="dusk")


def test_block_halo_prediction_matches_the_exact_convolution():
    import cv2

    from lensblur.lamps import _HaloModel

    model = _HaloModel(9.0)
    assert model.factor == 3
    core = np.zeros((181, 181), bool)
    core[86:95, 88:93] = True
    y, x = np.mgrid[-216:217, -216:217].astype(np.float32)
    exact_kernel = (1 + (x * x + y * y) / 81.0) ** -1.5
    exact_kernel[216, 216] = 0
    exact = cv2.filter2D(core.astype(np.float32), -1, exact_kernel / exact_kernel.sum(),
                         borderType=cv2.BORDER_CONSTANT)
    ring = (cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5) > 3) & \
        (cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5) < 60)
    ratio = model.predict(core)[ring] / exact[ring]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    assert np.percentile(np.abs(ratio - 1), 90) < 0.15


@pytest.mark.parametrize("shape, core_pixels", [((90, 90), [(45, 45), (45, 46), (46, 45)]),
                                                 ((40, 130), [(3, 5), (20, 120), (39, 64)])])
def test_halo_of_a_small_core_summed_directly_equals_the_convolution(shape, core_pixels):
    import cv2

    from lensblur.lamps import _HaloModel

    model = _HaloModel(3.5)
    core = np.zeros(shape, bool)
    for y, x in core_pixels:
        core[y, x] = True
    direct = model.predict(core)
    reach = model.kernel.shape[0] // 2
    cut = min(reach, max(shape))
    kernel = model.kernel[reach - cut:reach + cut + 1, reach - cut:reach + cut + 1]
    convolved = cv2.filter2D(core.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    assert np.abs(direct - convolved).max() < 1e-6 * max(float(convolved.max()), 1e-6) + 1e-7
    assert direct.max() > 0

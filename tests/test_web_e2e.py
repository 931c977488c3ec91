"""End to end in headless Chromium: open the page, upload, click to focus, drag the aperture, save.

Needs Selenium and Debian's ``chromium`` + ``chromium-driver``; skipped cleanly without them.
Screenshots go to ``artifacts/`` at the repository root.
"""

import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

selenium = pytest.importorskip("selenium")
uvicorn = pytest.importorskip("uvicorn")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from lensblur.web.app import create_app  # noqa: E402

ROOT = Path(__file__).parents[1]
ARTIFACTS = ROOT / "artifacts"
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def find_browser() -> tuple[str, str] | None:
    browser = os.environ.get("LENSBLUR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("LENSBLUR_CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(temp_root=str(tmp_path_factory.mktemp("web")))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads):
    found = find_browser()
    if found is None:
        pytest.skip("no chromium + chromedriver installed (apt-get install chromium chromium-driver)")
    browser, chromedriver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900", "--force-device-scale-factor=1"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    try:
        chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    except WebDriverException as error:
        pytest.skip(f"chromium would not start: {str(error).splitlines()[0]}")
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield chrome
    chrome.quit()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 1600×1200 JPEG portrait with camera EXIF and an ICC profile."""
    path = tmp_path_factory.mktemp("photo") / "portrait.jpg"
    exif = Image.Exif()
    exif[0x010F] = "LensblurTestCam"
    Image.open(EXAMPLE).convert("RGB").resize((1600, 1200), Image.BICUBIC).save(
        path, "JPEG", quality=92, exif=exif.tobytes(), icc_profile=SRGB_ICC)
    return path


PIXELS_JS = """
const img = document.getElementById('after');
if (!img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = 96; c.height = 72;
const g = c.getContext('2d'); g.drawImage(img, 0, 0, 96, 72);
return Array.from(g.getImageData(0, 0, 96, 72).data);
"""


def pixels(chrome) -> np.ndarray | None:
    data = chrome.execute_script(PIXELS_JS)
    return None if data is None else np.asarray(data, dtype=np.float32)


def shot(chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    chrome.save_screenshot(str(ARTIFACTS / name))


def settled(chrome, after_seq: int):
    """The full (not draft) preview newer than after_seq is on screen and nothing is in flight."""
    def check(_):
        img = chrome.find_element(By.ID, "after")
        seq = int(img.get_attribute("data-seq") or 0)
        busy = "busy" in (chrome.find_element(By.ID, "stage").get_attribute("class") or "")
        return seq > after_seq and img.get_attribute("data-draft") == "0" and not busy and seq
    return check


def test_upload_focus_aperture_save(server, driver, photo, downloads):
    url, app = server
    chrome = driver
    chrome.get(url + "/")
    assert chrome.title == "lensblur"
    shot(chrome, "web-01-empty.png")

    chrome.find_element(By.ID, "file").send_keys(str(photo))
    seq = WebDriverWait(chrome, 60).until(settled(chrome, 0))
    first = pixels(chrome)
    status = chrome.find_element(By.ID, "status").text
    assert "1600×1200" in status and "depth:" in status
    shot(chrome, "web-02-uploaded.png")

    # click on the background (top-left area) to focus there: the preview must change
    session_id = chrome.execute_script("return document.body.dataset.session")
    session = app.state.store.get(session_id)
    before_focus = session.focus_disparity
    stage_img = chrome.find_element(By.ID, "after")
    width, height = stage_img.size["width"], stage_img.size["height"]
    ActionChains(chrome).move_to_element_with_offset(stage_img, int(-0.4 * width), int(-0.4 * height)).click().perform()
    seq = WebDriverWait(chrome, 60).until(settled(chrome, seq))
    assert chrome.find_element(By.ID, "focus-mark").is_displayed()
    assert session.focus_disparity != pytest.approx(before_focus)
    focused = pixels(chrome)
    assert np.abs(focused - first).mean() > 0.5

    # drag the aperture slider's thumb to the right with the mouse (input events all the way)
    slider = chrome.find_element(By.ID, "blur")
    start_value = float(slider.get_attribute("value"))
    low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    track = slider.size["width"]
    thumb = int((start_value - low) / (high - low) * (track - 16) + 8 - track / 2)
    drag = ActionChains(chrome).move_to_element_with_offset(slider, thumb, 0).click_and_hold()
    for _ in range(8):
        drag = drag.move_by_offset(6, 0).pause(0.05)
    drag.release().perform()
    assert float(slider.get_attribute("value")) > start_value + 1
    seq = WebDriverWait(chrome, 60).until(settled(chrome, seq))
    wider = pixels(chrome)
    assert np.abs(wider - focused).mean() > 0.5, "the preview did not change with the aperture"
    shot(chrome, "web-03-aperture.png")

    # what is on screen is the rendered preview, not the original
    assert not chrome.find_element(By.ID, "before").is_displayed()
    # before / after
    chrome.find_element(By.ID, "compare").click()
    assert chrome.find_element(By.ID, "before").is_displayed()
    shot(chrome, "web-04-compare.png")
    chrome.find_element(By.ID, "compare").click()

    # save at full resolution and check the downloaded file
    chrome.find_element(By.ID, "save").click()
    target = downloads / "portrait_lensblur.jpg"
    WebDriverWait(chrome, 120).until(lambda _: target.exists() and not list(downloads.glob("*.crdownload")))
    WebDriverWait(chrome, 10).until(lambda c: c.find_element(By.ID, "download").is_displayed())
    shot(chrome, "web-05-saved.png")
    saved = Image.open(target)
    assert saved.format == "JPEG" and saved.size == (1600, 1200)
    assert saved.getexif().get(0x010F) == "LensblurTestCam"
    assert saved.info.get("icc_profile") == SRGB_ICC
    original = np.asarray(Image.open(photo).convert("RGB"), np.float32)
    assert np.abs(np.asarray(saved.convert("RGB"), np.float32) - original).mean() > 1
    assert not chrome.find_element(By.ID, "message").text


def test_bad_upload_shows_a_message(server, driver, tmp_path):
    url, _ = server
    driver.get(url + "/")
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("this is not a photo\n" * 10)
    driver.find_element(By.ID, "file").send_keys(str(bogus))
    WebDriverWait(driver, 20).until(lambda c: "not a photo" in c.find_element(By.ID, "message").text)

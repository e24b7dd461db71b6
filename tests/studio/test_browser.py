"""The studio in a real browser: Debian's headless Chromium (Selenium, the packaged chromedriver) on the page
of ``tools/studio.py`` with a tiny model, fed the demo clips (``LMTK_TEST_DATA``) or, without them,
synthetic pictures. With ``LMTK_STUDIO_SCREENSHOTS=FOLDER`` the steps also save a picture of each tab
there: ``tools/studio_screenshots.py`` makes docs/studio.md's screenshots so.

Skipped when Chromium is not installed, except in CI (``CI=true``), where ``.ci/run`` installs it.
"""

import os
import re

import numpy as np
import pytest
from PIL import Image
from tiny_models import TINY_LIA, tiny_lia

import lmtk
from lmtk.apis import VideoWriter, video_frame_rate
from lmtk.apis.media import has_audio
from lmtk.datasets.video_reader import open_video
from lmtk.studio.browser import StudioBrowser, StudioServer, chromium_paths, write_y4m

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require(found: bool, what: str) -> None:
    if not found:
        if IN_CI:
            pytest.fail(
                f"{what} is missing in CI: .ci/run installs it (apt-get install chromium chromium-driver)"
            )
        pytest.skip(
            f"{what} is not installed (apt-get install chromium chromium-driver; pip install -e .[studio])"
        )


try:
    import gradio  # noqa: F401
    import selenium  # noqa: F401

    PACKAGES = True
except ImportError:
    PACKAGES = False


def _noise(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def camera_frames(count: int = 30, size: int = 64, clip=None) -> list[np.ndarray]:
    """The first frames of a demo clip, or a bright square moving across a dark frame: motion for the
    fake camera."""
    if clip is not None:
        return list(open_video(clip).get_frames(range(count)))
    frames = []
    for t in range(count):
        frame = np.full((size, size, 3), 40, np.uint8)
        left = (3 * t) % (size - 20)
        frame[18:42, left : left + 20] = (230, 200, 170)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    _require(PACKAGES, "gradio or selenium")
    _require(chromium_paths() is not None, "chromium or chromedriver")
    folder = tmp_path_factory.mktemp("browser")
    lmtk.save_model(tiny_lia(), folder / "tiny.safetensors", config=TINY_LIA)
    data = os.environ.get("LMTK_TEST_DATA")
    clip = os.path.join(data, "vox", "driving1.mp4") if data else None
    clip = clip if clip and os.path.isfile(clip) else None
    if clip:  # a real face, and the first 8 frames of a real clip with its sound
        Image.open(os.path.join(data, "vox", "macron.png")).save(folder / "source.png")
        with VideoWriter(folder / "driving.mp4", fps=video_frame_rate(clip), audio_from=clip) as writer:
            for frame in open_video(clip).get_frames(range(8)):
                writer.write(frame)
    else:
        Image.fromarray(_noise(0, 48)).save(folder / "source.png")
        with VideoWriter(folder / "driving.mp4", fps=10) as writer:
            for seed in range(1, 9):
                writer.write(_noise(seed, 64))
    with VideoWriter(folder / "long.mp4", fps=2) as writer:  # 6 s: over the server's 5 s limit
        for seed in range(12):
            writer.write(_noise(seed, 32))
    write_y4m(folder / "camera.y4m", camera_frames(clip=clip))
    return folder


@pytest.fixture(scope="module")
def server(files):
    with StudioServer(files / "tiny.safetensors", extra=["--max-seconds", "5"]) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server, files):
    screenshots = os.environ.get("LMTK_STUDIO_SCREENSHOTS")
    with StudioBrowser(server.url, camera=files / "camera.y4m", screenshots=screenshots) as running:
        yield running


def test_edit_image_preview_follows_the_slider(browser, files):
    previews = browser.edit_slider(files / "source.png", direction=1, value=0.9)
    assert previews["first"].shape == (32, 32, 3)
    assert np.abs(previews["moved"].astype(int) - previews["first"]).max() > 2  # the preview changed
    np.testing.assert_allclose(previews["back"], previews["first"], atol=1)  # and came back


def test_reset_puts_every_slider_back(browser, files):
    previews = browser.edit_slider(files / "source.png", direction=3, value=0.6)  # ends with d3 at 0
    browser.set_slider("direction-0", -0.5)
    browser.set_slider("direction-3", 0.6)
    first = previews["first"].astype(int)
    browser.wait(lambda: np.abs(browser.image("edit-preview")[1] - first).max() > 2, "the preview to move")
    browser.click("edit-reset")
    browser.wait(
        lambda: np.abs(browser.image("edit-preview")[1] - first).max() <= 1, "the preview to come back"
    )
    values = [browser.element(f"#direction-{i} input[type=number]").get_attribute("value") for i in range(5)]
    assert [float(v) for v in values] == [0.0] * 5


def test_animation_runs_to_the_end_and_plays(browser, files):
    video = browser.animate(files / "source.png", files / "driving.mp4")
    assert video["error"] is None, video
    rate = float(video_frame_rate(files / "driving.mp4"))
    assert abs(video["duration"] - 8 / rate) < 0.15 and (video["width"], video["height"]) == (32, 32)
    assert video["time"] > 0  # it played
    assert video["download"] and video["download"].endswith(".mp4")
    assert has_audio(files / "driving.mp4") == _has_audio(video["download"])  # the sound is kept


def _has_audio(url: str) -> bool:
    import tempfile
    import urllib.request

    with tempfile.TemporaryDirectory() as folder, urllib.request.urlopen(url) as response:
        path = os.path.join(folder, "video.mp4")
        with open(path, "wb") as out:
            out.write(response.read())
        return has_audio(path)


def test_edit_video_animates_the_edited_source(browser, files):
    video = browser.edit_video(files / "source.png", files / "driving.mp4", direction=2, value=0.7)
    assert video["error"] is None and video["time"] > 0, video
    assert "d2 +0.70" in video["edits"]


def test_user_error_is_a_page_message(browser, files, server):
    browser.tab("animate")
    browser.upload("animate-source", files / "source.png")  # the test may run alone (pytest-xdist)
    browser.upload("animate-driving", files / "long.mp4")
    browser.click("animate-run")
    messages = browser.wait(browser.messages, "a message")
    assert any("longer than this studio's limit of 5 s" in m for m in messages), messages
    assert server.process.poll() is None


def test_live_tab_animates_the_camera(browser, files):
    live = browser.live(files / "source.png", frames=6)
    frames = live["images"]
    assert all(frame.shape == (32, 32, 3) for frame in frames)
    assert max(np.abs(frame.astype(int) - frames[0]).max() for frame in frames[1:]) > 2  # it moves
    assert "frames/s" in live["stats"] and "latency" in live["stats"]
    # a new start pose starts a new stream: its frame count starts again
    count = int(re.search(r"\((\d+) frames\)", browser.text("live-stats")).group(1))
    browser.click("live-restart")
    browser.wait(
        lambda: (
            (found := re.search(r"\((\d+) frames\)", browser.text("live-stats")))
            and int(found.group(1)) < count
        ),
        "a new stream",
    )


def test_directions_are_renamed_and_models_switched(browser, files):
    # rename d0 and d1 (the other tests move d1 and d2 by index, and list d2 by its label)
    assert browser.rename_directions(["look", "smile", "", "d3", ""])[:2] == ["look", "smile"]
    assert (files / "tiny.direction_names.json").read_text().count(":") == 2  # saved beside the checkpoint
    other = files / "models" / "three.safetensors"
    other.parent.mkdir(exist_ok=True)
    config = {**TINY_LIA, "motion_basis": {**TINY_LIA["motion_basis"], "num_directions": 3}}
    lmtk.save_model(lmtk.registry.build(config), other, config=config)
    assert "three.safetensors" in browser.switch_model(other)
    assert browser.slider_labels() == ["d0", "d1", "d2"]  # drawn again for its directions
    assert "tiny.safetensors" in browser.switch_model(files / "tiny.safetensors")  # back, names and all
    assert browser.slider_labels() == ["look", "smile", "d2", "d3", "d4"]


def test_model_tab_describes_the_model(browser):
    text = browser.model()
    assert "tiny.safetensors" in text and "32 x 32 px" in text and "float32" in text


def test_nothing_is_fetched_from_outside(browser):
    for tab in ("animate", "edit", "edit-video", "live", "model"):
        browser.tab(tab)
    assert browser.external_requests() == []


def test_the_server_logged_no_failure(browser, server):
    # after whatever the other tests did in the page: expected mistakes are page messages, not tracebacks
    assert server.process.poll() is None
    assert "Traceback" not in server.output(), server.output()[-3000:]

"""Drive the studio's page in a headless Chromium, as a person would: the browser tests and the
screenshots of docs/studio.md (``tools/studio_screenshots.py``) share this code, so the pictures show
what the tests check.

Uses Debian's packaged Chromium and its chromedriver (``apt-get install chromium chromium-driver``) through
Selenium; nothing is downloaded. A fake camera plays a ``.y4m`` file (:func:`write_y4m`) to the Live tab.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "StudioBrowser",
    "StudioServer",
    "chromium_paths",
    "free_port",
    "write_y4m",
]

REPOSITORY = Path(__file__).resolve().parents[2]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium_paths() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` as installed by the system's packages, or None when either is absent."""
    browser = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it), for a server started next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_y4m(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """Write ``(H, W, 3)`` uint8 RGB frames (even sides) as a YUV 4:2:0 ``.y4m`` file, the format of
    Chromium's fake camera (``--use-file-for-fake-video-capture``)."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            rgb = frame.astype(np.float32)
            y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
            u = 128 - 0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2]
            v = 128 + 0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2]

            def half(plane):  # 4:2:0: the mean of each 2x2 block
                return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

            out.write(b"FRAME\n")
            for plane in (y, half(u), half(v)):
                out.write(np.clip(plane.round(), 0, 255).astype(np.uint8).tobytes())
    return path


class StudioServer:
    """``tools/studio.py`` in a subprocess on 127.0.0.1 and a free port; a context manager.

    Args:
        checkpoint: the checkpoint to serve.
        extra: more options of ``tools/studio.py``.
        timeout: seconds to wait for the page to answer.
        env: more environment variables for the server (``TMPDIR``: where its temporary folder goes).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        extra: Sequence[str] = (),
        timeout: float = 180.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [sys.executable, str(REPOSITORY / "tools" / "studio.py"), "--checkpoint", str(checkpoint)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), *extra]
        env = {
            **os.environ,
            **(env or {}),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
        }
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stop the server
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the studio exited with {self.process.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError(f"the studio did not answer on {self.url} in {timeout:g} s: {self.output()}")

    def output(self) -> str:
        """What the server printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self) -> int:
        """Stop the server as a service manager would (SIGTERM, which the tool handles as Ctrl-C; then
        SIGKILL after 60 s); its exit status. Not SIGINT: a process started in the background of a
        non-interactive shell inherits SIGINT ignored, and so would its server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> StudioServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StudioBrowser:
    """A headless Chromium on the studio's page; a context manager.

    Args:
        url: the page.
        camera: a ``.y4m`` file the fake camera plays (the Live tab), or None.
        size: the window size in pixels.
        timeout: seconds to wait for anything the page computes.
        screenshots: a folder: each tab's steps below save a picture of the page there
            (``studio_<tab>.png``, for docs/studio.md); None saves none.
    """

    def __init__(
        self,
        url: str,
        camera: str | os.PathLike | None = None,
        size: tuple[int, int] = (1100, 900),
        timeout: float = 60.0,
        screenshots: str | os.PathLike | None = None,
    ) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        paths = chromium_paths()
        if paths is None:
            raise RuntimeError(
                "chromium and chromedriver are not installed: apt-get install chromium chromium-driver"
            )
        options = webdriver.ChromeOptions()
        options.binary_location = paths[0]
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--mute-audio",
            f"--window-size={size[0]},{size[1]}",
            "--autoplay-policy=no-user-gesture-required",
        ):
            options.add_argument(argument)
        if camera is not None:
            options.add_argument("--use-fake-ui-for-media-stream")  # allow the camera without asking
            options.add_argument("--use-fake-device-for-media-stream")
            options.add_argument(f"--use-file-for-fake-video-capture={Path(camera).resolve()}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.url = url
        self.timeout = timeout
        self.screenshots = Path(screenshots) if screenshots else None
        self.driver = webdriver.Chrome(service=Service(paths[1]), options=options)
        self._requests: list[str] = []
        self.reload()

    def reload(self) -> None:
        """Open the page afresh: no uploads, every slider at 0 (each step below starts so, so that steps
        do not depend on one another)."""
        self.driver.get(self.url)
        self.wait(lambda: self.driver.find_elements("id", "tabs"), "the page to load")

    # ------------------------------------------------------------------------------ basics
    def wait(self, condition: Callable[[], object], what: str, timeout: float | None = None):
        """Poll ``condition`` until it returns something true, which is returned."""
        deadline = time.monotonic() + (timeout or self.timeout)
        error = None
        while time.monotonic() < deadline:
            try:
                result = condition()
                if result:
                    return result
            except Exception as caught:  # noqa: BLE001 - the page is still changing; try again
                error = caught
            time.sleep(0.2)
        raise TimeoutError(
            f"waited {timeout or self.timeout:g} s for {what}" + (f" (last error: {error})" if error else "")
        )

    def element(self, css: str):
        return self.wait(lambda: self.driver.find_element("css selector", css), css)

    def tab(self, name: str) -> None:
        """Open a tab by its id (``animate``, ``edit``, ``edit-video``, ``live``, ``model``)."""
        self.element(f"#tab-{name}-button").click()
        self.wait(lambda: self.driver.find_element("id", f"tab-{name}").is_displayed(), f"the {name} tab")

    def upload(self, elem_id: str, path: str | os.PathLike) -> None:
        """Give a file to an upload component (as a drop would); one it shows already is cleared first."""
        selector = f"#{elem_id} input[type=file]"
        if not self.driver.find_elements("css selector", selector):
            self.element(f"#{elem_id} button[aria-label='Clear']").click()
        self.element(selector).send_keys(str(Path(path).resolve()))

    def set_slider(self, elem_id: str, value: float) -> None:
        """Move a slider to ``value`` (as a drag would: its input and change events)."""
        bar = self.element(f"#{elem_id} input[type=range]")
        self.driver.execute_script(
            "const bar = arguments[0];"
            "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(bar, arguments[1]);"
            "bar.dispatchEvent(new Event('input', {bubbles: true}));"
            "bar.dispatchEvent(new Event('change', {bubbles: true}));",
            bar,
            str(value),
        )

    def click(self, elem_id: str) -> None:
        self.element(f"#{elem_id}").click()

    def text(self, elem_id: str) -> str:
        element = self.element(f"#{elem_id}")
        field = element.find_elements("css selector", "textarea, input")
        return field[0].get_attribute("value") if field else element.text

    def image_url(self, elem_id: str) -> str | None:
        """The address of the image a component shows, or None."""
        images = self.driver.find_elements("css selector", f"#{elem_id} img")
        return images[0].get_attribute("src") if images else None

    def image(self, elem_id: str, other_than: str | None = None) -> tuple[str, np.ndarray]:
        """The image a component shows, ``(url, (H, W, 3) uint8)``, once it differs from ``other_than``."""
        from PIL import Image

        url = self.wait(
            lambda: (u := self.image_url(elem_id)) and u != other_than and u, f"an image in #{elem_id}"
        )
        if url.startswith("data:"):
            import base64

            data = base64.b64decode(url.split(",", 1)[1])
        else:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        return url, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def video(self, elem_id: str) -> dict:
        """Wait for a video in a component and play it: its address, duration, size and whether it played."""
        video = self.wait(
            lambda: self.driver.find_element("css selector", f"#{elem_id} video[src]"),
            f"a video in #{elem_id}",
        )
        state = self.driver.execute_async_script(
            "const [video, done] = arguments;"
            "const report = () => done({src: video.currentSrc, duration: video.duration, width: video.videoWidth,"
            " height: video.videoHeight, time: video.currentTime, error: video.error && video.error.code});"
            "video.muted = true;"
            "const play = () => video.play().then(() => setTimeout(report, 700)).catch(e => done({error: String(e)}));"
            "if (video.readyState >= 2) play(); else { video.addEventListener('loadeddata', play, {once: true});"
            " video.addEventListener('error', report, {once: true}); video.load(); }",
            video,
        )
        links = self.driver.find_elements("css selector", f"#{elem_id} a[download]")
        state["download"] = links[0].get_attribute("href") if links else None
        return state

    def messages(self) -> list[str]:
        """The texts of the page's message toasts (errors, warnings, notes) now shown."""
        toasts = self.driver.find_elements("css selector", "[data-testid=toast-text]")
        return [toast.text for toast in toasts if toast.text]

    def external_requests(self) -> list[str]:
        """Every address the page asked for that is not the studio's own (nor inline ``data:``/``blob:``)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])
        origin = self.url.rstrip("/")
        return sorted(
            {u for u in self._requests if not u.startswith((origin, "data:", "blob:", "ws://127.0.0.1"))}
        )

    def screenshot(self, path: str | os.PathLike) -> Path:
        """The whole page (the window stretched to its height for the shot) as a PNG of 256 colours."""
        from PIL import Image

        path = Path(path)
        width, height = self.driver.get_window_size().values()
        page = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, max(height, page + 20))
        try:
            time.sleep(0.3)
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(width, height)
        with Image.open(path) as shot:
            shot.convert("RGB").quantize(256).save(path, optimize=True)
        return path

    def _shot(self, tab: str) -> None:
        if self.screenshots is not None:
            self.screenshots.mkdir(parents=True, exist_ok=True)
            self.driver.execute_script(  # close the messages of earlier steps
                "document.querySelectorAll('[data-testid=toast-close]').forEach(b => b.click())"
            )
            time.sleep(0.5)  # let the page finish drawing (a video's first frame)
            self.screenshot(self.screenshots / f"studio_{tab.replace('-', '_')}.png")

    def close(self) -> None:
        self.driver.quit()

    def __enter__(self) -> StudioBrowser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------ the tabs
    def edit_slider(self, source: str | os.PathLike, direction: int = 0, value: float = 0.8) -> dict:
        """Edit image: upload ``source``, move one slider to ``value`` and back to 0; the three previews."""
        self.reload()
        self.tab("edit")
        self.upload("edit-source", source)
        first_url, first = self.image("edit-preview")
        self.set_slider(f"direction-{direction}", value)
        moved_url, moved = self.image("edit-preview", other_than=first_url)
        self._shot("edit")
        self.set_slider(f"direction-{direction}", 0.0)
        _, back = self.image("edit-preview", other_than=moved_url)
        return {"first": first, "moved": moved, "back": back}

    def animate(self, source: str | os.PathLike, driving: str | os.PathLike) -> dict:
        """Animate: upload a source and a driving video, run to the end; the offered video (see :meth:`video`)."""
        self.reload()
        self.tab("animate")
        self.upload("animate-source", source)
        self.upload("animate-driving", driving)
        self.wait(
            lambda: self.driver.find_elements("css selector", "#animate-driving video"), "the driving video"
        )
        self.click("animate-run")
        video = self.video("animate-output")
        self._shot("animate")
        return video

    def edit_video(
        self, source: str | os.PathLike, driving: str | os.PathLike, direction: int = 0, value: float = 0.8
    ) -> dict:
        """Edit video: a source and a slider moved in the Edit image tab, then a driving video animated
        with that edit; the offered video (see :meth:`video`) and the edits the tab lists."""
        self.reload()
        self.tab("edit")
        self.upload("edit-source", source)
        first_url, _ = self.image("edit-preview")
        self.set_slider(f"direction-{direction}", value)
        self.image("edit-preview", other_than=first_url)
        self.tab("edit-video")
        self.upload("edit-video-driving", driving)
        self.wait(
            lambda: self.driver.find_elements("css selector", "#edit-video-driving video"),
            "the driving video",
        )
        self.click("edit-video-run")
        video = self.video("edit-video-output")
        video["edits"] = self.text("edit-video-edits")
        self._shot("edit-video")
        return video

    def slider_labels(self) -> list[str]:
        """The labels of the Edit image tab's sliders, in direction order."""
        self.tab("edit")
        bars = self.wait(lambda: self.driver.find_elements("css selector", "[id^=direction-]"), "the sliders")
        return [
            bar.text.split("\n")[0] for bar in sorted(bars, key=lambda b: int(b.get_attribute("id")[10:]))
        ]

    def rename_directions(self, names: Sequence[str]) -> list[str]:
        """Edit image: type new direction names and save them; the sliders' labels once drawn again."""
        self.slider_labels()
        field = self.element("#edit-names textarea")
        field.clear()
        field.send_keys(", ".join(names))
        self.click("edit-save-names")
        wanted = [name or f"d{i}" for i, name in enumerate(names)]
        return self.wait(lambda: (labels := self.slider_labels()) == wanted and labels, "the renamed sliders")

    def switch_model(self, checkpoint: str | os.PathLike) -> str:
        """Model: load another checkpoint; the model's details once they name it."""
        from selenium.webdriver.common.keys import Keys

        self.tab("model")
        field = self.element("#model-choice input")
        field.clear()
        field.send_keys(str(checkpoint), Keys.ENTER)
        self.click("model-load")
        return self.wait(
            lambda: Path(checkpoint).name in (t := self.text("model-info")) and t, "the new model"
        )

    def model(self) -> str:
        """Model: the text of the model's details."""
        self.reload()
        self.tab("model")
        text = self.wait(lambda: self.text("model-info"), "the model's details")
        self._shot("model")
        return text

    def live(self, source: str | os.PathLike, frames: int = 5) -> dict:
        """Live: upload a source, start the camera and wait for ``frames`` animated frames; their images
        and the frames/s and latency line."""
        self.reload()
        self.tab("live")
        self.upload("live-source", source)
        self.wait(lambda: self.driver.find_elements("css selector", "#live-source img"), "the live source")
        self._start_camera()
        images, url = [], None
        for _ in range(frames):
            url, image = self.image("live-output", other_than=url)
            images.append(image)
        stats = self.wait(
            lambda: "frames/s" in self.text("live-stats") and self.text("live-stats"), "live stats"
        )
        self._shot("live")
        return {"images": images, "stats": stats}

    def _start_camera(self) -> None:
        """Grant the camera (the fake one answers without asking), then press record: frames stream."""

        def button(match):
            found = self.driver.find_elements("css selector", "#live-camera button")
            return next((b for b in found if b.is_displayed() and match(b)), None)

        access = self.wait(lambda: button(lambda b: "access" in b.text.lower()), "the camera access button")
        access.click()
        record = self.wait(
            lambda: button(lambda b: "capture-button" in (b.get_attribute("class") or "")),
            "the record button",
        )
        record.click()

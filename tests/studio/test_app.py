"""The studio's endpoints driven by gradio_client against ``tools/studio.py`` on 127.0.0.1 (a tiny model)."""

import json

import numpy as np
import pytest
from PIL import Image
from tiny_models import TINY_LIA, tiny_lia

import lmtk
from lmtk.apis import VideoWriter
from lmtk.apis.media import has_audio
from lmtk.datasets.video_reader import open_video

gradio_client = pytest.importorskip(
    "gradio_client", reason="the studio's tests need pip install -e .[studio]"
)
pytest.importorskip("gradio", reason="the studio's tests need pip install -e .[studio]")

from lmtk.studio.browser import StudioServer  # noqa: E402


def _noise(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("studio")
    lmtk.save_model(tiny_lia(), folder / "tiny.safetensors", config=TINY_LIA)
    Image.fromarray(_noise(0, 48)).save(folder / "source.png")
    (folder / "notes.txt").write_text("not an image")
    with VideoWriter(folder / "driving.mp4", fps=10) as writer:
        for seed in range(1, 8):
            writer.write(_noise(seed, 64))
    (folder / "server_tmp").mkdir()
    return folder


@pytest.fixture(scope="module")
def server(files):
    with StudioServer(
        files / "tiny.safetensors", extra=["--max-seconds", "5"], env={"TMPDIR": str(files / "server_tmp")}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(server, files):
    return gradio_client.Client(server.url, verbose=False, download_files=str(files / "downloads"))


def _edit(client, files, offsets) -> np.ndarray:
    path = client.predict(
        gradio_client.handle_file(str(files / "source.png")), offsets, api_name="/edit_image"
    )
    return np.asarray(Image.open(path).convert("RGB"))


def test_endpoints_are_named(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/animate", "/edit_image"} <= set(endpoints)
    names = {key: [p["parameter_name"] for p in endpoints[key]["parameters"]] for key in endpoints}
    assert names["/edit_image"] == ["source", "offsets"]  # what docs/studio.md promises scripts
    assert names["/animate"] == [
        "source",
        "driving",
        "mode",
        "start_frame",
        "auto_start",
        "crop_source",
        "crop_driving",
        "paste_back",
        "side_by_side",
    ]


def test_edit_image_slider_moved_and_back(client, files):
    still = _edit(client, files, {})
    moved = _edit(client, files, {"d2": 0.9})
    back = _edit(client, files, {"d2": 0.0})
    assert still.shape == (32, 32, 3)
    assert np.abs(moved.astype(int) - still).max() > 2
    np.testing.assert_allclose(back, still, atol=1)  # a PNG of the same floats: equal to rounding


def test_animate_returns_the_video(client, files):
    result = client.predict(  # by parameter name, as docs/studio.md shows
        source=gradio_client.handle_file(str(files / "source.png")),
        driving=gradio_client.handle_file(str(files / "driving.mp4")),
        auto_start=True,  # the start frame chosen automatically
        side_by_side=True,
        api_name="/animate",
    )
    path = result["video"] if isinstance(result, dict) else result
    video = open_video(path)
    assert len(video) == 7 and video.size == (32, 96) and abs(video.fps - 10) < 1e-6
    assert not has_audio(path)  # the driving clip has none


def test_user_errors_are_messages_and_the_server_keeps_running(client, files, server):
    cases = [
        ((files / "notes.txt", {}), "/edit_image", "not an image"),
        ((files / "source.png", {"smile": 1.0}), "/edit_image", "unknown direction 'smile'"),
    ]
    for (path, offsets), endpoint, message in cases:
        with pytest.raises(gradio_client.exceptions.AppError, match=message):
            client.predict(gradio_client.handle_file(str(path)), offsets, api_name=endpoint)
    with pytest.raises(gradio_client.exceptions.AppError, match="cannot be read"):
        client.predict(
            gradio_client.handle_file(str(files / "source.png")),
            gradio_client.handle_file(str(files / "notes.txt")),
            "relative",
            0,
            False,
            False,
            False,
            False,
            False,
            api_name="/animate",
        )
    assert server.process.poll() is None
    assert _edit(client, files, {}).shape == (32, 32, 3)  # still serving


def test_the_temporary_folder_is_removed(files, tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    with StudioServer(files / "tiny.safetensors", env={"TMPDIR": str(folder)}) as server:
        client = gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path / "downloads"))
        client.predict(gradio_client.handle_file(str(files / "source.png")), {}, api_name="/edit_image")
        work = [p.name for p in folder.iterdir()]
        assert any(name.startswith("lmtk-studio-") for name in work), work
    assert server.process.returncode == 0, server.output()
    assert not any(p.name.startswith("lmtk-studio-") for p in folder.iterdir())
    assert json.dumps(server.output()).count("Traceback") == 0

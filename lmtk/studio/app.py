"""The studio's web page (gradio): the Animate, Edit image, Edit video, Live and Model tabs.

The page works offline: gradio's analytics are off, nothing is shared, and the theme uses the system's
fonts, never a font service. The scriptable endpoints are ``/animate`` and ``/edit_image`` (also
``/edit_video``); see docs/studio.md. gradio is imported when the page is built, so that lmtk (and its
doctest collection) imports without it.
"""

import functools
import itertools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .actions import MODES, Studio, StudioError

if TYPE_CHECKING:
    import gradio as gr

__all__ = ["build_app", "style"]

LOG = logging.getLogger("lmtk.studio")
SLIDER_RANGE = 1.0  # tools/vis_directions.py's default alphas span [-1, 1] too
LIVE_INTERVAL = 0.1  # seconds between webcam frames sent to the server
IMAGE_HEIGHT = 320
# a small model's images fill their box, pixels kept sharp
CSS = """
#edit-preview img, #live-output img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
"""


def style() -> dict:
    """``launch()``'s look: gradio's default theme with system fonts only (a theme would otherwise name
    web fonts), and :data:`CSS`."""
    import gradio as gr

    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    return {"theme": theme, "css": CSS}


def _source_image(**kwargs) -> "gr.Image":
    """An image upload whose file, if it is no image, becomes a page message naming it (gradio's own
    message names the component that failed, with a traceback's worth of detail). The instance's
    preprocess is wrapped: a subclass of a gradio component would make gradio write a stub file."""
    import gradio as gr

    component = gr.Image(type="filepath", sources=["upload"], **kwargs)
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except Exception as error:  # noqa: BLE001 - whatever Pillow raises for a file that is no image
            name = getattr(payload, "orig_name", None) or Path(getattr(payload, "path", "") or "").name
            raise gr.Error(
                f"the source is not an image that can be read: {name} ({type(error).__name__}); "
                "upload a picture (PNG, JPEG, ...)",
                print_exception=False,
            ) from error

    component.preprocess = checked
    return component


def _page_errors(fn):
    """Expected failures become a message in the page (gradio's error toast, or the client's AppError);
    anything else too, with the traceback in the server log: the server keeps serving either way."""

    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except StudioError as error:
            raise gr.Error(str(error), print_exception=False) from error
        except Exception as error:  # noqa: BLE001 - a page message instead of a dead request
            LOG.exception("request failed")
            raise gr.Error(f"{type(error).__name__}: {error}", print_exception=False) from error

    return wrapper


def _notes(notes: list[str]) -> None:
    import gradio as gr

    for note in notes:
        gr.Info(note)


def _model_markdown(info: dict) -> str:
    rows = [f"| {key} | `{value}` |" for key, value in info.items() if key != "config"]
    config = (
        json.dumps(info["config"], indent=2, default=str) if info["config"] is not None else "(none stored)"
    )
    return "| | |\n|---|---|\n" + "\n".join(rows) + f"\n\n**Config**\n\n```json\n{config}\n```"


def _edits_markdown(studio: Studio, offsets) -> str:
    try:
        edits = studio.edits(offsets)
    except StudioError as error:
        return f"Edits: {error}"
    labels = studio.labels()
    if not edits:
        return "Edits: none (move the sliders of the Edit image tab)"
    return "Edits: " + ", ".join(f"{labels[i]} {v:+.2f}" for i, v in sorted(edits.items()))


def build_app(studio: Studio) -> "gr.Blocks":
    """The page of ``studio``; start it with ``.launch()`` (see :func:`lmtk.studio.server.serve`)."""
    import gradio as gr  # here, not at the top: lmtk imports (and its doctests collect) without gradio

    versions = itertools.count(1)

    def _animation(progress, source, driving, **options) -> str:
        """``studio.animate`` with the page's progress bar; its notes shown in the page."""
        notes: list[str] = []
        path = studio.animate(
            source,
            driving,
            progress=lambda done, total: progress((done, total), desc="animating", unit="frames"),
            notes=notes,
            **options,
        )
        _notes(notes)
        return str(path)

    @_page_errors
    def animate(
        source,
        driving,
        mode,
        start_frame,
        auto_start,
        crop_source,
        crop_driving,
        paste_back,
        side_by_side,
        progress=gr.Progress(),  # noqa: B008 - gradio's way of asking for a progress bar
    ):
        """Animate `source` (an image) with the motion of `driving` (a video) into an mp4."""
        return _animation(
            progress,
            source,
            driving,
            mode=mode,
            start_frame="auto" if auto_start else start_frame,
            crop_source=crop_source,
            crop_driving=crop_driving,
            paste_back=paste_back,
            side_by_side=side_by_side,
        )

    @_page_errors
    def edit_image(source, offsets):
        """`source` moved along the motion directions by `offsets` ({direction name or index: value})."""
        if source is None:
            return None
        return studio.edit_image(source, offsets)

    @_page_errors
    def edit_video(source, driving, mode, offsets, progress=gr.Progress()):  # noqa: B008
        """Edit `source` by `offsets`, then animate it with `driving`."""
        return _animation(progress, source, driving, mode=mode, offsets=offsets)

    @_page_errors
    def live(source, frame, smooth, request: gr.Request):  # the annotation is how gradio passes it
        if frame is None:
            return None, "waiting for the camera"
        if source is None:  # a line in the page, not a message per frame
            return None, "upload a source image to drive"
        result, stats = studio.live(
            request.session_hash or "", source, frame, smooth=smooth, fps=1.0 / LIVE_INTERVAL
        )
        return result, stats.text()

    def restart_live(request: gr.Request):
        studio.end_live(request.session_hash or "")
        return "the next frame is the new start pose"

    @_page_errors
    def save_labels(text):
        labels = [label.strip() for label in text.split(",")]
        path = studio.save_labels(labels)
        gr.Info(f"direction names saved to {path}")
        return next(versions), _model_markdown(studio.info())

    @_page_errors
    def switch_model(checkpoint):
        if not checkpoint:
            raise StudioError("choose a checkpoint")
        try:
            studio.load(checkpoint)
        except (OSError, ValueError, TypeError) as error:
            raise StudioError(f"cannot load {checkpoint}: {error}") from error
        gr.Info(f"loaded {checkpoint}")
        return next(versions), _model_markdown(studio.info()), {}

    @_page_errors
    def save_image(image):
        if image is None:
            raise StudioError("nothing to save yet: upload a source and move a slider")
        return str(studio.save_image(image))

    with gr.Blocks(title="lmtk studio", analytics_enabled=False, delete_cache=(600, 3600)) as page:
        # bumped when the directions change (names saved, model switched): the sliders are drawn again
        version = gr.State(0)
        m_info = gr.Markdown(_model_markdown(studio.info()), elem_id="model-info", render=False)
        gr.Markdown("# lmtk studio\nAnimate and edit a face with a latent image animator.")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Animate", id="animate", elem_id="tab-animate"):
                with gr.Row():
                    a_source = _source_image(label="Source image", elem_id="animate-source")
                    a_driving = gr.Video(sources=["upload"], label="Driving video", elem_id="animate-driving")
                    a_output = gr.Video(label="Animation", interactive=False, elem_id="animate-output")
                with gr.Row():
                    a_mode = gr.Radio(list(MODES), value="relative", label="Mode")
                    a_start = gr.Number(0, precision=0, minimum=0, label="Start frame")
                    a_auto = gr.Checkbox(False, label="Choose the start frame automatically")
                with gr.Row():
                    a_crop_source = gr.Checkbox(False, label="Crop the source to its face")
                    a_crop_driving = gr.Checkbox(False, label="Crop the driving video to its face")
                    a_paste = gr.Checkbox(False, label="Paste back into the source")
                    a_side = gr.Checkbox(False, label="Side by side")
                a_run = gr.Button("Animate", variant="primary", elem_id="animate-run")
                a_run.click(
                    animate,
                    [
                        a_source,
                        a_driving,
                        a_mode,
                        a_start,
                        a_auto,
                        a_crop_source,
                        a_crop_driving,
                        a_paste,
                        a_side,
                    ],
                    a_output,
                    api_name="animate",
                )

            with gr.Tab("Edit image", id="edit", elem_id="tab-edit"), gr.Row():
                with gr.Column(scale=2):
                    with gr.Row():
                        e_source = _source_image(
                            label="Source image", elem_id="edit-source", height=IMAGE_HEIGHT
                        )
                        e_preview = gr.Image(
                            type="numpy",
                            format="png",
                            label="Edited",
                            interactive=False,
                            elem_id="edit-preview",
                            height=IMAGE_HEIGHT,
                        )
                    with gr.Row():
                        e_reset = gr.Button("Reset", elem_id="edit-reset")
                        e_save = gr.Button("Save image", elem_id="edit-save")
                    e_file = gr.File(label="Saved image", interactive=False, elem_id="edit-file", height=80)
                    # the offsets as the endpoint takes them; the sliders write here, the preview reads it
                    e_offsets = gr.JSON({}, label="Offsets", elem_id="edit-offsets")
                with gr.Column(scale=1, elem_id="edit-directions"):

                    @gr.render(inputs=[version], triggers=[version.change, page.load])
                    def sliders(_version):
                        labels = studio.labels()
                        bars = [
                            gr.Slider(
                                -SLIDER_RANGE,
                                SLIDER_RANGE,
                                value=0.0,
                                step=0.01,
                                label=label,
                                elem_id=f"direction-{index}",
                                key=f"direction-{index}-{label}",
                            )
                            for index, label in enumerate(labels)
                        ]
                        names = gr.Textbox(
                            ", ".join(labels),
                            label="Direction names (comma-separated; saved beside the checkpoint)",
                            elem_id="edit-names",
                            interactive=True,
                        )
                        save = gr.Button("Save names", elem_id="edit-save-names")
                        for bar in bars:
                            bar.change(
                                lambda *values: {label: v for label, v in zip(labels, values) if v},
                                bars,
                                e_offsets,
                                trigger_mode="always_last",
                                show_progress="hidden",
                                api_visibility="private",
                            )
                        e_reset.click(lambda: [0.0] * len(bars), None, bars, api_visibility="private")
                        save.click(save_labels, names, [version, m_info], api_visibility="private")

                e_offsets.change(
                    edit_image,
                    [e_source, e_offsets],
                    e_preview,
                    api_name="edit_image",
                    trigger_mode="always_last",
                    show_progress="hidden",
                )
                e_source.change(
                    edit_image,
                    [e_source, e_offsets],
                    e_preview,
                    show_progress="hidden",
                    api_visibility="private",
                )
                e_save.click(save_image, e_preview, e_file, api_visibility="private")

            with gr.Tab("Edit video", id="edit-video", elem_id="tab-edit-video"):
                gr.Markdown(
                    "The source and the direction sliders of the **Edit image** tab, along a driving video."
                )
                v_edits = gr.Markdown(_edits_markdown(studio, {}), elem_id="edit-video-edits")
                with gr.Row():
                    v_driving = gr.Video(
                        sources=["upload"], label="Driving video", elem_id="edit-video-driving"
                    )
                    v_output = gr.Video(
                        label="Edited animation", interactive=False, elem_id="edit-video-output"
                    )
                v_mode = gr.Radio(list(MODES), value="relative", label="Mode")
                v_run = gr.Button("Animate with the edits", variant="primary", elem_id="edit-video-run")
                v_run.click(
                    edit_video, [e_source, v_driving, v_mode, e_offsets], v_output, api_name="edit_video"
                )
                e_offsets.change(
                    lambda offsets: _edits_markdown(studio, offsets),
                    e_offsets,
                    v_edits,
                    api_visibility="private",
                )

            with gr.Tab("Live", id="live", elem_id="tab-live"):
                gr.Markdown(
                    "Your webcam drives the source, frame by frame (`Animator.stream`); the first frame is "
                    "the start pose. Press the camera's record button to start."
                )
                with gr.Row():
                    l_source = _source_image(label="Source image", elem_id="live-source")
                    l_camera = gr.Image(
                        sources=["webcam"],
                        streaming=True,
                        type="numpy",
                        label="Webcam",
                        elem_id="live-camera",
                    )
                    l_output = gr.Image(
                        label="Animated", interactive=False, elem_id="live-output", height=IMAGE_HEIGHT
                    )
                with gr.Row():
                    l_smooth = gr.Checkbox(True, label="Smooth the motion (One-Euro filter)")
                    l_stats = gr.Textbox(
                        "", label="Frames/s and latency", interactive=False, elem_id="live-stats"
                    )
                    l_restart = gr.Button("New start pose (the next frame)", elem_id="live-restart")
                l_restart.click(restart_live, None, l_stats, api_visibility="private")
                l_camera.stream(
                    live,
                    [l_source, l_camera, l_smooth],
                    [l_output, l_stats],
                    stream_every=LIVE_INTERVAL,
                    concurrency_limit=4,
                    show_progress="hidden",
                    api_visibility="private",
                )

            with gr.Tab("Model", id="model", elem_id="tab-model"):
                m_choice = gr.Dropdown(
                    studio.checkpoints(),
                    value=str(studio.checkpoint),
                    label="Checkpoint",
                    allow_custom_value=True,
                    elem_id="model-choice",
                )
                m_load = gr.Button("Load this checkpoint", elem_id="model-load")
                m_info.render()
                m_load.click(switch_model, m_choice, [version, m_info, e_offsets], api_visibility="private")
    return page

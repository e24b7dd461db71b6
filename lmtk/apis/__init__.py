"""Python entry points used by the tools and by users."""

from .animator import Animator, EncodedSource
from .device import check_device
from .loading import load_model, model_config_of, save_model
from .media import VideoWriter, fit_image, load_image, video_frame_rate
from .start_frame import find_start_frame

__all__ = [
    "Animator",
    "EncodedSource",
    "VideoWriter",
    "check_device",
    "find_start_frame",
    "fit_image",
    "load_image",
    "load_model",
    "model_config_of",
    "save_model",
    "video_frame_rate",
]

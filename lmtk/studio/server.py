"""Start the studio: a temporary folder for uploads and outputs, the model, the page, the server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .actions import Studio

__all__ = ["serve"]


def serve(
    checkpoint: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    max_seconds: float = 60.0,
    models_dir: str | os.PathLike | None = None,
    trust: bool = False,
    backend: str = "pytorch",
    export_dir: str | os.PathLike | None = None,
    int8: bool = False,
) -> None:
    """Serve the studio on ``http://host:port`` until interrupted (Ctrl-C or SIGTERM); the model options
    are :class:`~lmtk.studio.actions.Studio`'s.

    Uploads and outputs live in a temporary folder, removed when the server stops; gradio deletes its
    copies of uploads after an hour, and the studio its outputs. Nothing is fetched from the network:
    analytics are off, no share link is made, the page uses no web fonts.
    """
    with tempfile.TemporaryDirectory(prefix="lmtk-studio-") as workdir:
        # read by gradio when it is imported: uploads go to the temporary folder, and nothing is reported
        os.environ["GRADIO_TEMP_DIR"] = str(Path(workdir) / "uploads")
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
        studio = Studio(
            checkpoint,
            workdir,
            device=device,
            max_seconds=max_seconds,
            models_dir=models_dir,
            trust=trust,
            backend=backend,
            export_dir=export_dir,
            int8=int8,
        )
        from .app import build_app, style

        page = build_app(studio)
        page.queue(default_concurrency_limit=1)
        try:
            page.launch(
                server_name=host,
                server_port=port,
                share=False,
                ssr_mode=False,
                **style(),
                show_error=True,
                footer_links=["api"],
                allowed_paths=[workdir],
            )
        except OSError as error:  # gradio's message names its own settings, not the tool's options
            raise OSError(
                f"cannot listen on {host}:{port} (in use, or not an address of this machine): "
                "choose another --port or --host"
            ) from error

"""lmtk studio: a web page to animate, edit and drive faces live (``python tools/studio.py``).

:mod:`.actions` holds what the tabs do and needs no web framework; :mod:`.app` (the page) and
:mod:`.server` need gradio (``pip install -e .[studio]``), and :mod:`.browser` drives the page in a
headless Chromium for the tests and the screenshots of docs/studio.md.
"""

from .actions import LiveStream, Studio, StudioError, labels_path

__all__ = ["LiveStream", "Studio", "StudioError", "labels_path"]

"""Procedural talking-face renderer: one identity and one set of motion factors give one frame.

A head is an ellipsoid whose features (eyes, brows, nose, mouth, hairline) are outlines drawn on its
surface in canonical coordinates ``(u, v)``: ``u`` to the image right, ``v`` down, both fractions of the
image size, origin at the head centre. Outlines are lifted onto the ellipsoid, rotated by nod (pitch)
and turn (yaw), projected orthographically, then rolled, scaled and translated into the image. Turning
therefore shifts the features and foreshortens the far side, the nose tip (which stands off the
surface) moves more than the cheeks, and every keypoint goes through the same projection as the pixels
it names.

Frames are filled at ``supersample`` times the output size with OpenCV's sub-pixel polygon fill and
box-filtered down, which anti-aliases every edge. Same identity and factors give byte-identical frames.

Keypoints are ``(x, y)`` pixel coordinates of the output image with pixel centres on integers (pixel
``[i, j]`` is centred at ``x = j, y = i``). ``left``/``right`` mean the image left/right of a frontal
face (the person's right/left).

Example:
    >>> identity = FaceIdentity.from_seed(0)
    >>> image, keypoints = render_frame(identity, NEUTRAL_PARAMS, size=64)
    >>> image.shape, image.dtype.name, keypoints.shape
    ((64, 64, 3), 'uint8', (12, 2))
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .motion import MAX_NOD_DEGREES, MAX_TURN_DEGREES, MOTION_FACTORS, sample_motion

__all__ = [
    "BACKGROUND_PATTERNS",
    "GENERATOR_VERSION",
    "HAIR_STYLES",
    "KEYPOINT_NAMES",
    "MAX_SIZE",
    "MIN_SIZE",
    "MOTION_FACTORS",
    "NEUTRAL_PARAMS",
    "FaceIdentity",
    "render_frame",
    "render_video",
    "sample_clip_motion",
    "video_seed",
]

Color = tuple[int, int, int]

# Bump whenever the pixels, keypoints or seeding change, so stale datasets on disk are detected.
GENERATOR_VERSION = 2
MIN_SIZE, MAX_SIZE = 32, 256

KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_outer",
    "left_eye_inner",
    "right_eye_inner",
    "right_eye_outer",
    "left_pupil",
    "right_pupil",
    "nose_tip",
    "mouth_left",
    "mouth_right",
    "upper_lip",
    "lower_lip",
    "chin",
)
HAIR_STYLES: tuple[str, ...] = ("bald", "short", "fringe", "long", "bun", "afro")
BACKGROUND_PATTERNS: tuple[str, ...] = ("stripes", "checker", "gradient", "blobs", "noise")

NEUTRAL_PARAMS: dict[str, float] = {name: 0.0 for name in MOTION_FACTORS} | {"scale": 1.0}

_SKIN_TONES = np.array(
    [(255, 224, 196), (241, 194, 165), (224, 172, 135), (198, 134, 97), (160, 105, 72), (115, 72, 48)],
    dtype=np.float64,
)
_HAIR_COLORS = (
    (25, 20, 20),
    (60, 40, 30),
    (105, 70, 40),
    (145, 70, 35),
    (215, 180, 110),
    (170, 168, 160),
    (40, 70, 160),
    (200, 80, 140),
)
_HAIR_WEIGHTS = np.array([0.25, 0.2, 0.15, 0.1, 0.12, 0.08, 0.05, 0.05])
_IRIS_COLORS = ((85, 50, 25), (50, 32, 20), (115, 90, 45), (65, 115, 70), (65, 105, 165), (105, 120, 135))
_SCLERA: Color = (245, 244, 238)
_PUPIL: Color = (18, 16, 20)
_LASH: Color = (40, 28, 28)
_TEETH: Color = (236, 232, 220)
_MOUTH_INSIDE: Color = (75, 22, 32)

_HEAD_Y = 0.46  # rest height of the head centre (fraction of the image), leaving room for the shoulders
_SHIFT = 4  # fractional bits of OpenCV's fixed-point polygon coordinates
_MAX_MOUTH_OPEN = 0.18  # jaw opening at mouth_open = 1, fraction of the head height


def _color(values: Any) -> Color:
    r, g, b = (int(v) for v in np.clip(np.round(values), 0, 255))
    return (r, g, b)


def _shade(color: Color, factor: float) -> Color:
    return _color(np.asarray(color, dtype=np.float64) * factor)


def _jitter(rng: np.random.Generator, color: Any, amount: float) -> Color:
    return _color(np.asarray(color, dtype=np.float64) + rng.uniform(-amount, amount, 3))


def _contrasting_color(rng: np.random.Generator, avoid: Color, min_distance: float = 90.0) -> Color:
    color = _color(rng.integers(20, 236, 3))
    for _ in range(16):  # bounded, so the stream of draws stays deterministic
        if np.linalg.norm(np.subtract(color, avoid)) >= min_distance:
            break
        color = _color(rng.integers(20, 236, 3))
    return color


def _lip_color(skin: Color) -> Color:
    """Skin tinted red and darkened until it stands out from the skin (dark skin is already reddish)."""
    tinted = 0.55 * np.asarray(skin, dtype=np.float64) + 0.45 * np.array([185.0, 70.0, 80.0])
    factor = 0.85
    while factor > 0.4 and np.linalg.norm(tinted * factor - skin) < 50.0:
        factor -= 0.05
    return _color(tinted * factor)


@dataclass(frozen=True)
class FaceIdentity:
    """Everything about a face that stays fixed over a video: shape, colours, hair and background.

    Lengths are fractions of the image size (``head_*``) or of the head half-height (the facial features),
    so one identity looks the same at every output size.
    """

    head_width: float  # half-width a
    head_height: float  # half-height b
    head_depth: float  # half-depth c, how far the face surface stands out
    skin: Color
    hair: Color
    hair_style: str
    hairline: float  # v of the hairline centre / b (negative is up)
    iris: Color
    lips: Color
    shirt: Color
    eye_spacing: float  # |u| of an eye centre / a
    eye_level: float  # v of the eye centres / b
    eye_width: float  # half-width / b
    eye_opening: float  # upper lid height / b
    iris_radius: float  # / b
    brow_raise: float  # brow height above the eye centre / b
    nose_length: float  # v of the nose tip / b
    nose_width: float  # / b
    nose_depth: float  # how far the tip stands off the surface / b
    mouth_level: float  # v of the mouth corners / b
    mouth_width: float  # half-width / b
    lip_thickness: float  # / b
    background: str
    background_colors: tuple[Color, Color]
    background_angle: float  # degrees
    background_period: float  # pattern period, fraction of the image size
    background_seed: int

    @classmethod
    def sample(cls, rng: np.random.Generator) -> FaceIdentity:
        """Draw a random identity (consumes ``rng`` in a fixed order)."""
        b = float(rng.uniform(0.26, 0.31))
        a = b * float(rng.uniform(0.74, 0.88))
        tone = rng.uniform(0, len(_SKIN_TONES) - 1)
        low = int(tone)
        high = min(low + 1, len(_SKIN_TONES) - 1)
        skin = _jitter(rng, _SKIN_TONES[low] + (tone - low) * (_SKIN_TONES[high] - _SKIN_TONES[low]), 8)
        hair = _jitter(rng, _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_WEIGHTS)], 10)
        hair_style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
        hairline = rng.uniform(-0.36, -0.3) if hair_style == "fringe" else rng.uniform(-0.62, -0.45)
        iris = _jitter(rng, _IRIS_COLORS[rng.integers(len(_IRIS_COLORS))], 10)
        lips = _lip_color(skin)
        shirt = _color(rng.integers(30, 226, 3))
        nose_length = float(rng.uniform(0.27, 0.34))
        background = BACKGROUND_PATTERNS[rng.integers(len(BACKGROUND_PATTERNS))]
        background_colors = (_contrasting_color(rng, skin), _contrasting_color(rng, skin))
        return cls(
            head_width=a,
            head_height=b,
            head_depth=a * float(rng.uniform(0.95, 1.1)),
            skin=skin,
            hair=hair,
            hair_style=hair_style,
            hairline=float(hairline),
            iris=iris,
            lips=lips,
            shirt=shirt,
            eye_spacing=float(rng.uniform(0.4, 0.46)),
            eye_level=float(rng.uniform(-0.08, 0.0)),
            eye_width=float(rng.uniform(0.13, 0.155)),
            eye_opening=float(rng.uniform(0.07, 0.085)),
            iris_radius=float(rng.uniform(0.066, 0.074)),
            brow_raise=float(rng.uniform(0.15, 0.2)),
            nose_length=nose_length,
            nose_width=float(rng.uniform(0.09, 0.115)),
            nose_depth=float(rng.uniform(0.14, 0.2)),
            mouth_level=nose_length + float(rng.uniform(0.24, 0.3)),
            mouth_width=float(rng.uniform(0.21, 0.27)),
            lip_thickness=float(rng.uniform(0.05, 0.065)),
            background=background,
            background_colors=background_colors,
            background_angle=float(rng.uniform(0.0, 180.0)),
            background_period=float(rng.uniform(0.12, 0.3)),
            background_seed=int(rng.integers(2**31)),
        )

    @classmethod
    def from_seed(cls, seed: int) -> FaceIdentity:
        """The identity of video ``seed`` (the stream :func:`render_video` uses)."""
        return cls.sample(np.random.default_rng(np.random.SeedSequence([_check_seed(seed), 0])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (colours become lists)."""
        return json_ready(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaceIdentity:
        """Inverse of :meth:`to_dict`."""
        fields = dict(data)
        for name in ("skin", "hair", "iris", "lips", "shirt"):
            fields[name] = tuple(fields[name])
        fields["background_colors"] = tuple(tuple(c) for c in fields["background_colors"])
        return cls(**fields)


def json_ready(value: Any) -> Any:
    """Tuples to lists, recursively (what ``json`` writes anyway), so dicts compare equal after a round trip."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def _check_seed(seed: int) -> int:
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_size(size: int) -> int:
    if int(size) != size or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    return int(size)


def video_seed(seed: int, split: str, index: int) -> int:
    """The seed of identity ``index`` of ``split`` in a dataset made with ``seed`` (splits never share)."""
    entropy = [_check_seed(seed), zlib.crc32(split.encode()), _check_seed(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def sample_clip_motion(seed: int, num_frames: int, fps: float = 25.0, clip: int = 0) -> dict[str, np.ndarray]:
    """The motion of clip ``clip`` of video ``seed``: (T,) float32 per factor (see :mod:`.motion`)."""
    rng = np.random.default_rng(np.random.SeedSequence([_check_seed(seed), 1, _check_seed(clip)]))
    return sample_motion(rng, num_frames, fps)


@functools.lru_cache(maxsize=4)  # clips are rendered one at a time; large sizes take megabytes each
def _background(identity: FaceIdentity, height: int, width: int) -> np.ndarray:
    """The static backdrop (height, width, 3) uint8; read-only, as it is shared between frames."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = (xs + 0.5) / width, (ys + 0.5) / height
    angle = math.radians(identity.background_angle)
    along = xs * math.cos(angle) + ys * math.sin(angle)
    across = -xs * math.sin(angle) + ys * math.cos(angle)
    period = identity.background_period
    pattern = identity.background
    rng = np.random.default_rng(identity.background_seed)
    if pattern == "stripes":
        mix = (np.floor(along / (0.5 * period)) % 2).astype(np.float32)
    elif pattern == "checker":
        mix = ((np.floor(along / period) + np.floor(across / period)) % 2).astype(np.float32)
    elif pattern == "gradient":
        mix = np.clip(along - along.min(), 0, None) / max(float(np.ptp(along)), 1e-6)
    elif pattern == "blobs":
        mix = np.zeros((height, width), np.float32)
        for _ in range(int(rng.integers(4, 9))):
            cx, cy = rng.uniform(0, 1, 2)
            radius = rng.uniform(0.5, 1.5) * period
            mix = np.maximum(mix, (((xs - cx) ** 2 + (ys - cy) ** 2) < radius**2) * rng.uniform(0.4, 1.0))
    elif pattern == "noise":
        cells = max(2, round(1.5 / period))
        grid = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
        mix = np.clip(cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)
    else:
        raise ValueError(
            f"unknown background pattern {pattern!r}; available: {', '.join(BACKGROUND_PATTERNS)}"
        )
    first, second = (np.asarray(c, dtype=np.float32) for c in identity.background_colors)
    image = first + mix[..., None] * (second - first)
    image = np.round(image).astype(np.uint8)
    image.setflags(write=False)
    return image


@functools.lru_cache(maxsize=32)
def _span(start: float, stop: float, num: int, endpoint: bool = True) -> np.ndarray:
    """A cached, read-only ``np.linspace`` (the same few are needed for every frame)."""
    values = np.linspace(start, stop, num, endpoint=endpoint)
    values.setflags(write=False)
    return values


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 32) -> np.ndarray:
    theta = _span(0.0, 2.0 * np.pi, n, False)
    return np.column_stack([cx + rx * np.cos(theta), cy + ry * np.sin(theta)])


class _Frame:
    """One frame being drawn: the pose of the head and a supersampled canvas."""

    def __init__(self, identity: FaceIdentity, params: Mapping[str, float], size: int, supersample: int):
        self.identity = identity
        self.params = params
        self.size = size
        self.supersample = supersample
        self.a, self.b, self.c = identity.head_width, identity.head_height, identity.head_depth
        yaw = math.radians(MAX_TURN_DEGREES * params["turn"])
        pitch = math.radians(MAX_NOD_DEGREES * params["nod"])
        roll = math.radians(params["rotation"])
        cos_y, sin_y, cos_p, sin_p = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        # Axes: x right, y down, z towards the camera; yaw moves the face normal to +x, pitch to +y.
        rot_yaw = np.array([[cos_y, 0.0, sin_y], [0.0, 1.0, 0.0], [-sin_y, 0.0, cos_y]])
        rot_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cos_p, sin_p], [0.0, -sin_p, cos_p]])
        self.rotation = rot_yaw @ rot_pitch
        self.zoom = size * params["scale"]
        self.linear = self.zoom * np.array(
            [[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]]
        )
        self.centre = np.array(
            [(size - 1) / 2 + params["tx"] * size, _HEAD_Y * size - 0.5 + params["ty"] * size]
        )
        self.affine = self.linear @ self.rotation[:2]
        side = size * supersample
        self.canvas = _background(identity, side, side).copy()
        self.keypoints: dict[str, tuple[float, float, float]] = {}  # name -> (u, v, depth)

    # Geometry: canonical coordinates to output pixels.

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) head-frame points -> (N, 2) output pixels."""
        return points @ self.affine.T + self.centre

    def lift(self, uv: np.ndarray, depth: np.ndarray | float = 0.0) -> np.ndarray:
        """(N, 2) surface coordinates -> (N, 3) points on the head ellipsoid, ``depth`` further out."""
        u, v = uv[:, 0], uv[:, 1]
        inside = np.maximum(1.0 - (u / self.a) ** 2 - (v / self.b) ** 2, 0.0)
        return np.column_stack([u, v, self.c * np.sqrt(inside) + depth])

    def surface(self, uv: np.ndarray, depth: np.ndarray | float = 0.0) -> np.ndarray:
        return self.project(self.lift(uv, depth))

    def plane(self, uv: np.ndarray, z: float) -> np.ndarray:
        """Points of a flat shape at depth ``z`` that turns with the head (hair behind it, ears)."""
        return self.project(np.column_stack([uv, np.full(len(uv), z)]))

    def silhouette(self, grow: float = 1.0, n: int = 64) -> np.ndarray:
        """Outline of the projected ellipsoid: the 2-D ellipse with covariance R diag(a², b², c²) Rᵀ."""
        cov = self.rotation @ np.diag([self.a**2, self.b**2, self.c**2]) @ self.rotation.T
        chol = np.linalg.cholesky(cov[:2, :2])
        circle = _ellipse(0.0, 0.0, grow, grow, n)
        return circle @ chol.T @ self.linear.T + self.centre

    # Drawing: output pixels to the supersampled canvas.

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        scaled = (points + 0.5) * self.supersample - 0.5  # output pixel centres to canvas pixel centres
        return np.round(scaled * (1 << _SHIFT)).astype(np.int32)

    def fill(self, points: np.ndarray, color: Color) -> None:
        cv2.fillPoly(self.canvas, [self._fixed(points)], color, cv2.LINE_8, _SHIFT)

    def line(self, points: np.ndarray, color: Color, width: float) -> None:
        thickness = max(1, round(width * self.supersample))
        cv2.polylines(self.canvas, [self._fixed(points)], False, color, thickness, cv2.LINE_8, _SHIFT)

    def fill_clipped(self, points: np.ndarray, clip: np.ndarray, color: Color) -> None:
        """Fill the part of polygon ``points`` that lies inside polygon ``clip``."""
        shape, bound = self._fixed(points), self._fixed(clip)
        height, width = self.canvas.shape[:2]
        x0, y0 = np.maximum(bound.min(0) >> _SHIFT, 0)
        x1, y1 = np.minimum((bound.max(0) >> _SHIFT) + 2, (width, height))
        if x1 <= x0 or y1 <= y0:
            return
        view = self.canvas[y0:y1, x0:x1]
        offset = np.array([x0, y0], dtype=np.int32) << _SHIFT
        inside, within = np.zeros(view.shape[:2], np.uint8), np.zeros(view.shape[:2], np.uint8)
        cv2.fillPoly(inside, [shape - offset], 1, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(within, [bound - offset], 1, cv2.LINE_8, _SHIFT)
        view[(inside & within).astype(bool)] = color

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        image = cv2.resize(self.canvas, (self.size, self.size), interpolation=cv2.INTER_AREA)
        surface = np.array([self.keypoints[name] for name in KEYPOINT_NAMES])
        return image, self.surface(surface[:, :2], surface[:, 2]).astype(np.float32)

    # The face, back to front.

    def draw_body(self) -> None:
        a, b = self.a, self.b
        scale = np.array([a, b])
        shirt = np.array(
            [(-0.45, 1.2), (-1.5, 1.4), (-2.3, 1.9), (-2.4, 4.0), (2.4, 4.0), (2.3, 1.9), (1.5, 1.4)]
        )
        shirt = np.vstack([shirt, [(0.45, 1.2)]])
        neck = np.array([(-0.42, 0.3), (0.42, 0.3), (0.44, 1.3), (0.0, 1.42), (-0.44, 1.3)])
        # The body only follows the head's translation and scale: the neck, not the torso, turns.
        self.fill(self.zoom * shirt * scale + self.centre, self.identity.shirt)
        self.fill(self.zoom * neck * scale + self.centre, _shade(self.identity.skin, 0.8))

    def draw_back_hair(self) -> None:
        a, b, c = self.a, self.b, self.c
        style, hair = self.identity.hair_style, self.identity.hair
        if style == "long":
            theta = _span(np.pi, 2.0 * np.pi, 16)
            top = np.column_stack([1.12 * a * np.cos(theta), -0.02 * b + 1.1 * b * np.sin(theta)])
            sides = np.array([(1.12, 0.0), (1.2, 0.9), (1.28, 1.5), (0.6, 1.58), (-0.6, 1.58), (-1.28, 1.5)])
            sides = np.vstack([sides, [(-1.2, 0.9)]]) * (a, b)
            self.fill(self.plane(np.vstack([top, sides]), -0.5 * c), hair)
        elif style == "afro":
            self.fill(self.plane(_ellipse(0.0, -0.15 * b, 1.38 * a, 1.22 * b, 48), -0.3 * c), hair)
        elif style == "bun":
            self.fill(self.plane(_ellipse(0.0, -1.02 * b, 0.36 * a, 0.36 * a), -0.2 * c), hair)

    def draw_head(self) -> None:
        a, b, c = self.a, self.b, self.c
        ear = _shade(self.identity.skin, 0.9)
        for sign in (-1.0, 1.0):
            self.fill(self.plane(_ellipse(sign * 0.97 * a, 0.08 * b, 0.15 * a, 0.24 * b, 20), -0.1 * c), ear)
        self.fill(self.silhouette(), self.identity.skin)
        self.keypoints["chin"] = (0.0, 0.93 * b, 0.0)

    def draw_hair_cap(self) -> None:
        if self.identity.hair_style == "bald":
            return
        a, b = self.a, self.b
        u = _span(-1.05, 1.05, 25)
        drop = 0.15 if self.identity.hair_style == "fringe" else 0.35
        hairline = np.column_stack([u * a, (self.identity.hairline + drop * u**2) * b])
        cap = np.vstack(
            [self.surface(hairline), self.plane(np.array([(1.05 * a, -2.5 * b), (-1.05 * a, -2.5 * b)]), 0)]
        )
        self.fill_clipped(cap, self.silhouette(grow=1.04), self.identity.hair)

    def draw_eyes(self) -> None:
        face, params = self.identity, self.params
        b = self.b
        half_width, upper = face.eye_width * b, face.eye_opening * b
        lower, radius, level = 0.6 * upper, face.iris_radius * b, face.eye_level * b
        # Blinking lowers the upper lid until it meets the lower one.
        lid = -upper + params["blink"] * (upper + lower)
        brow = _shade(face.hair, 0.7)
        lid_width = 0.02 * b * self.zoom
        for sign, side in ((-1.0, "left"), (1.0, "right")):
            centre = sign * face.eye_spacing * self.a
            u = centre + half_width * _span(-1.0, 1.0, 21)
            profile = 1.0 - ((u - centre) / half_width) ** 2
            opening = np.vstack(
                [
                    np.column_stack([u, level + lid * profile]),
                    np.column_stack([u, level + lower * profile])[::-1],
                ]
            )
            if params["blink"] < 1.0:
                self.fill(self.surface(opening), _SCLERA)
            iris_u = centre + params["gaze_x"] * 0.6 * (half_width - radius)
            iris_v = level + params["gaze_y"] * 0.35 * upper
            for r, color in ((radius, face.iris), (0.5 * radius, _PUPIL)):
                clipped = _clip_disk(iris_u, iris_v, r, centre, half_width, level, lid, lower)
                if clipped is not None:
                    self.fill(self.surface(clipped), color)
            self.line(self.surface(np.column_stack([u, level + lid * profile])), _LASH, lid_width)
            self.keypoints[f"{side}_pupil"] = (iris_u, iris_v, 0.0)
            self.keypoints[f"{side}_eye_outer"] = (centre + sign * half_width, level, 0.0)
            self.keypoints[f"{side}_eye_inner"] = (centre - sign * half_width, level, 0.0)
            self._draw_brow(sign, centre, half_width, level - face.brow_raise * b, brow)

    def _draw_brow(self, sign: float, centre: float, half_width: float, level: float, color: Color) -> None:
        b = self.b
        t = _span(0.0, 1.0, 12)  # inner end to outer end
        u = centre + sign * half_width * (2.3 * t - 1.05)
        mid = level - 0.035 * b * np.sin(np.pi * t**0.8)
        half = 0.022 * b * (1.0 - 0.5 * t)
        outline = np.vstack([np.column_stack([u, mid - half]), np.column_stack([u, mid + half])[::-1]])
        self.fill(self.surface(outline), color)

    def draw_nose(self) -> None:
        face, b = self.identity, self.b
        tip, width, top = face.nose_length * b, face.nose_width * b, face.eye_level * b + 0.05 * b

        def depth(uv: np.ndarray) -> np.ndarray:
            along = np.clip((uv[:, 1] - top) / (tip - top), 0.0, 1.0)
            return face.nose_depth * b * along * np.clip(1.0 - (uv[:, 0] / (1.6 * width)) ** 2, 0.0, 1.0)

        right = np.array([(0.03 * b, top), (0.05 * b, tip - 0.45 * (tip - top)), (width, tip - 0.02 * b)])
        right = np.vstack([right, [(0.8 * width, tip + 0.03 * b), (0.0, tip + 0.045 * b)]])
        outline = np.vstack([right, right[-2::-1] * (-1.0, 1.0)])
        self.fill(self.surface(outline, depth(outline)), _shade(face.skin, 0.87))
        for sign in (-1.0, 1.0):
            nostril = _ellipse(sign * 0.55 * width, tip + 0.02 * b, 0.28 * width, 0.12 * width, 16)
            self.fill(self.surface(nostril, depth(nostril)), _shade(face.skin, 0.45))
        self.keypoints["nose_tip"] = (0.0, tip, face.nose_depth * b)

    def draw_mouth(self) -> None:
        face, b = self.identity, self.b
        level, half_width, thick = face.mouth_level * b, face.mouth_width * b, face.lip_thickness * b
        opening = self.params["mouth_open"] * _MAX_MOUTH_OPEN * b
        u = half_width * _span(-1.0, 1.0, 25)
        across = 1.0 - (u / half_width) ** 2
        gap = across**0.75
        bow = 1.0 - 0.3 * np.exp(-((u / (0.08 * b)) ** 2))  # the dip of the cupid's bow
        upper_inner = level - 0.25 * opening * gap
        lower_inner = level + 0.75 * opening * gap
        # A constant rim and a cap past each corner keep the corners lip-coloured, not needle-sharp.
        rim = 0.025 * b
        upper_outer = upper_inner - (thick * across**0.6 * bow + rim)
        lower_outer = lower_inner + (1.2 * thick * across**0.6 + rim)
        caps = np.array([[half_width + rim, level], [-half_width - rim, level]])
        lips = np.vstack(
            [np.column_stack([u, upper_outer]), caps[:1], np.column_stack([u, lower_outer])[::-1], caps[1:]]
        )
        self.fill(self.surface(lips), face.lips)
        if opening > 0.004 * b:
            inside = np.vstack([np.column_stack([u, upper_inner]), np.column_stack([u, lower_inner])[::-1]])
            self.fill(self.surface(inside), _MOUTH_INSIDE)
            teeth_bottom = np.minimum(lower_inner, upper_inner + 0.05 * b)
            keep = np.abs(u) < 0.7 * half_width
            teeth = np.vstack(
                [np.column_stack([u, upper_inner])[keep], np.column_stack([u, teeth_bottom])[keep][::-1]]
            )
            self.fill(self.surface(teeth), _TEETH)
        seam = np.abs(u) < 0.9 * half_width  # stopping short keeps the corners lip-coloured
        seam_line = np.column_stack([u, upper_inner])[seam]
        self.line(self.surface(seam_line), _shade(face.lips, 0.6), 0.015 * b * self.zoom)
        centre = len(u) // 2
        self.keypoints["mouth_left"] = (-half_width, level, 0.0)
        self.keypoints["mouth_right"] = (half_width, level, 0.0)
        upper_lip = 0.5 * (upper_inner[centre] + upper_outer[centre])
        lower_lip = 0.5 * (lower_inner[centre] + lower_outer[centre])
        self.keypoints["upper_lip"] = (0.0, float(upper_lip), 0.0)
        self.keypoints["lower_lip"] = (0.0, float(lower_lip), 0.0)


def _clip_disk(
    cx: float,
    cy: float,
    radius: float,
    centre: float,
    half_width: float,
    level: float,
    lid: float,
    lower: float,
) -> np.ndarray | None:
    """Outline of a disk (iris, pupil) cut by the eye opening, in surface coordinates, or None if hidden.

    Both shapes are convex and bounded above and below by functions of ``u``, so their intersection is
    the band between the larger top and the smaller bottom.
    """
    u0, u1 = max(cx - radius, centre - half_width), min(cx + radius, centre + half_width)
    if u1 <= u0:
        return None
    u = u0 + (u1 - u0) * _span(0.0, 1.0, 17)
    reach = np.sqrt(np.clip(radius**2 - (u - cx) ** 2, 0.0, None))
    profile = 1.0 - ((u - centre) / half_width) ** 2
    top = np.maximum(cy - reach, level + lid * profile)
    bottom = np.minimum(cy + reach, level + lower * profile)
    keep = top < bottom
    if keep.sum() < 2:
        return None
    return np.vstack([np.column_stack([u[keep], top[keep]]), np.column_stack([u[keep], bottom[keep]])[::-1]])


def render_frame(
    identity: FaceIdentity, params: Mapping[str, float], size: int, supersample: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one frame.

    Args:
        identity: the face.
        params: motion factors (see :mod:`.motion`); missing ones take their :data:`NEUTRAL_PARAMS` value.
        size: output side in pixels, :data:`MIN_SIZE` to :data:`MAX_SIZE`.
        supersample: drawing resolution factor for anti-aliasing.

    Returns:
        image: (size, size, 3) uint8 RGB.
        keypoints: (K, 2) float32 ``(x, y)`` pixels, in :data:`KEYPOINT_NAMES` order.
    """
    _check_size(size)
    unknown = set(params) - set(MOTION_FACTORS)
    if unknown:
        raise ValueError(f"unknown motion factors {sorted(unknown)}; available: {', '.join(MOTION_FACTORS)}")
    values = {name: float(params.get(name, NEUTRAL_PARAMS[name])) for name in MOTION_FACTORS}
    frame = _Frame(identity, values, size, supersample)
    frame.draw_body()
    frame.draw_back_hair()
    frame.draw_head()
    frame.draw_hair_cap()
    frame.draw_eyes()
    frame.draw_nose()
    frame.draw_mouth()
    return frame.finish()


def render_video(
    seed: int, num_frames: int, size: int, fps: float = 25.0, clip: int = 0, supersample: int = 4
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Render clip ``clip`` of the identity ``seed``; clips of one seed share the face, not the motion.

    Returns:
        frames: (T, size, size, 3) uint8 RGB.
        keypoints: (T, K, 2) float32 pixels, in :data:`KEYPOINT_NAMES` order.
        params: factor name -> (T,) float32, in :data:`MOTION_FACTORS` order.

    Example:
        >>> frames, keypoints, params = render_video(seed=3, num_frames=4, size=32)
        >>> frames.shape, keypoints.shape, params["mouth_open"].shape
        ((4, 32, 32, 3), (4, 12, 2), (4,))
    """
    _check_size(size)
    identity = FaceIdentity.from_seed(seed)
    params = sample_clip_motion(seed, num_frames, fps, clip)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    keypoints = np.empty((num_frames, len(KEYPOINT_NAMES), 2), np.float32)
    for t in range(num_frames):
        frames[t], keypoints[t] = render_frame(
            identity, {k: v[t] for k, v in params.items()}, size, supersample
        )
    return frames, keypoints, params

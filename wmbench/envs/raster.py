"""Anti-aliased drawing of the 2-D scenes: each pixel blended by the share of its area a shape covers.

Shapes are given in world units; ``pixel_size`` is the world size of one pixel ``(width, height)``,
so a scene drawn at any resolution shows the same geometry, positioned to a fraction of a pixel.
Discs and axis-aligned rectangles are exact. Rotated rectangles take the share from the signed
distance d (in pixels) of the pixel centre to the rectangle, ``clip(1/2 - d, 0, 1)``: exact for an
edge parallel to the pixel grid, close for any other (the drawn T's area is within 2% of the true
one at 64 px, within 0.1% at 224 px).
"""

from __future__ import annotations

import math

import numpy as np


def rect_coverage(rect, x_edges: np.ndarray, y_edges: np.ndarray) -> np.ndarray:
    """Fraction of each pixel (between consecutive edges) that the rectangle ``(x0, x1, y0, y1)`` covers."""
    x0, x1, y0, y1 = rect
    cover_x = np.clip(np.minimum(x1, x_edges[1:]) - np.maximum(x0, x_edges[:-1]), 0.0, None) / np.diff(x_edges)
    cover_y = np.clip(np.minimum(y1, y_edges[1:]) - np.maximum(y0, y_edges[:-1]), 0.0, None) / np.diff(y_edges)
    return np.outer(cover_y, cover_x)


def fill_rects(image: np.ndarray, rects, rgb, pixel_size: tuple[float, float]) -> None:
    """Blend disjoint axis-aligned rectangles ``(x0, x1, y0, y1)`` into ``image`` in place."""
    height, width = image.shape[:2]
    x_edges, y_edges = np.arange(width + 1) * pixel_size[0], np.arange(height + 1) * pixel_size[1]
    alpha = sum(rect_coverage(rect, x_edges, y_edges) for rect in rects)
    blend(image, np.clip(alpha, 0.0, 1.0), rgb)


def _chord_integral(t: np.ndarray, radius: float) -> np.ndarray:
    """Integral from 0 to t of the half chord sqrt(r^2 - s^2) of a disc of radius r."""
    return 0.5 * (t * np.sqrt(np.maximum(radius * radius - t * t, 0.0)) + radius * radius * np.arcsin(t / radius))


def quadrant_area(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Area of the part of a disc centered at the origin where ``X <= x`` and ``Y <= y`` (broadcast).

    Integrated over X in [-r, x], with s(X) = sqrt(r^2 - X^2) the half chord: where the chord
    crosses the line Y = y (|X| < X0 = sqrt(r^2 - y^2)) it contributes ``y + s(X)``; elsewhere the
    whole chord ``2 s(X)`` when y >= 0, nothing when y < 0.
    """
    x = np.clip(x, -radius, radius)
    y = np.clip(y, -radius, radius)
    x0 = np.sqrt(radius * radius - y * y)
    inner = np.clip(x, -x0, x0)
    # One call for the three integration limits: the crossing band's end and the outer bands' ends.
    left_end, band_end, right_end = _chord_integral(np.stack(np.broadcast_arrays(np.minimum(x, -x0), inner, np.maximum(x, x0))), radius)
    rim = _chord_integral(x0, radius)
    band = y * (inner + x0) + band_end + rim
    outer = 2.0 * (left_end + right_end - rim) + 0.5 * math.pi * radius * radius
    return band + (y >= 0) * outer


def stamp_disc(image: np.ndarray, center, radius: float, rgb, pixel_size: tuple[float, float]) -> None:
    """Blend a disc into ``image`` in place, each pixel by the exact area it covers."""
    if radius <= 0:
        return
    window = _window(image, center, (radius, radius), pixel_size)
    if window is None:
        return
    (i0, i1, j0, j1), (pw, ph) = window, pixel_size
    x_edges = np.arange(j0, j1 + 1) * pw - center[0]
    y_edges = np.arange(i0, i1 + 1) * ph - center[1]
    area = quadrant_area(x_edges[None, :], y_edges[:, None], radius)
    alpha = (area[1:, 1:] - area[:-1, 1:] - area[1:, :-1] + area[:-1, :-1]) / (pw * ph)
    blend(image[i0:i1, j0:j1], alpha, rgb)


def stamp_box(image: np.ndarray, center, half_size, angle: float, rgb, pixel_size: tuple[float, float]) -> None:
    """Blend a rectangle of half sizes ``(hx, hy)`` rotated by ``angle`` about its centre into ``image``."""
    (hx, hy), c, s = half_size, math.cos(angle), math.sin(angle)
    if hx <= 0 or hy <= 0:
        return
    window = _window(image, center, (abs(c) * hx + abs(s) * hy, abs(s) * hx + abs(c) * hy), pixel_size)
    if window is None:
        return
    (i0, i1, j0, j1), (pw, ph) = window, pixel_size
    dx = ((np.arange(j0, j1) + 0.5) * pw - center[0])[None, :]
    dy = ((np.arange(i0, i1) + 0.5) * ph - center[1])[:, None]
    qx = np.abs(c * dx + s * dy) - hx  # distance outside each pair of sides, in the box's frame
    qy = np.abs(c * dy - s * dx) - hy
    distance = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0)) + np.minimum(np.maximum(qx, qy), 0.0)
    alpha = np.clip(0.5 - distance / math.sqrt(pw * ph), 0.0, 1.0)  # a linear ramp one pixel wide
    blend(image[i0:i1, j0:j1], alpha, rgb)


def blend(window: np.ndarray, alpha: np.ndarray, rgb) -> None:
    """``window = (1 - alpha) window + alpha rgb``, in place, rounded to uint8."""
    window[...] = window + alpha[..., None] * (np.asarray(rgb, dtype=np.float64) - window) + 0.5


def _window(image, center, half_extent, pixel_size):
    """Pixel rows and columns ``(i0, i1, j0, j1)`` a shape's bounding box touches, or None if off-image."""
    (cx, cy), (ex, ey), (pw, ph) = center, half_extent, pixel_size
    height, width = image.shape[:2]
    j0, j1 = max(math.floor((cx - ex) / pw), 0), min(math.ceil((cx + ex) / pw), width)
    i0, i1 = max(math.floor((cy - ey) / ph), 0), min(math.ceil((cy + ey) / ph), height)
    return None if j0 >= j1 or i0 >= i1 else (i0, i1, j0, j1)

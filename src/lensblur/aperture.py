"""Aperture shapes: the outline every out-of-focus point takes (a disc, or an n-blade polygon).

Shapes live in unit coordinates: the shape is inscribed in the unit circle, x to the right and
y downwards (image rows). A circle of confusion of radius r pixels is the shape scaled by r.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lensblur.errors import InputError


@dataclass(frozen=True)
class Aperture:
    """An aperture outline.

    blades: 0 for a circular disc, else the number of diaphragm blades (3 to 12).
    rotation: rotation of the polygon in degrees, counter-clockwise as seen on screen; at 0 one
        vertex points straight up.
    curvature: 0 for straight blades, 1 for fully rounded blades (a disc); values between bend
        the polygon's edges outwards.
    """

    blades: int = 0
    rotation: float = 0.0
    curvature: float = 0.0

    def __post_init__(self):
        if self.blades != 0 and not 3 <= self.blades <= 12:
            raise InputError(f"an aperture needs 3 to 12 blades, got {self.blades}")
        if not math.isfinite(self.rotation):
            raise InputError(f"blade rotation must be a finite number of degrees, got {self.rotation}")
        if not 0.0 <= self.curvature <= 1.0:
            raise InputError(f"blade curvature must be in [0, 1], got {self.curvature}")

    @classmethod
    def parse(cls, text: str) -> "Aperture":
        """Parse ``disk`` or ``blades:N[:ROTATION[:CURVATURE]]`` (rotation in degrees)."""
        text = text.strip().lower()
        if text in ("disk", "disc", "circle"):
            return cls()
        parts = text.split(":")
        if parts[0] != "blades" or not 2 <= len(parts) <= 4:
            raise InputError(f"unknown aperture shape {text!r}: use disk or blades:N[:rotation[:curvature]]")
        try:
            blades = int(parts[1])
            rotation = float(parts[2]) if len(parts) > 2 else 0.0
            curvature = float(parts[3]) if len(parts) > 3 else 0.0
        except ValueError:
            raise InputError(f"unknown aperture shape {text!r}: use disk or blades:N[:rotation[:curvature]]") from None
        return cls(blades, rotation, curvature)

    @property
    def is_disk(self) -> bool:
        return self.blades == 0 or self.curvature >= 1.0

    def radius_at(self, angle: np.ndarray) -> np.ndarray:
        """Distance from the centre to the outline (in [0, 1]) along screen angles in radians.

        Angles are measured counter-clockwise on screen from the +x axis (y pointing up on screen).
        """
        angle = np.asarray(angle, dtype=np.float64)
        if self.is_disk:
            return np.ones_like(angle)
        n = self.blades
        sector = 2 * math.pi / n
        # One vertex points up (screen angle pi/2) at rotation 0.
        phase = (angle - math.pi / 2 - math.radians(self.rotation)) % sector - sector / 2
        polygon = math.cos(sector / 2) / np.cos(phase)
        return (1 - self.curvature) * polygon + self.curvature

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where unit-coordinate points (x right, y down) lie inside the shape."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        rho = np.hypot(x, y)
        return rho <= self.radius_at(np.arctan2(-y, x)) + 1e-12

    def area(self) -> float:
        """Area of the unit shape (pi for the disc)."""
        if self.is_disk:
            return math.pi
        angles = np.linspace(0, 2 * math.pi, 4096, endpoint=False)
        return float(0.5 * np.mean(self.radius_at(angles) ** 2) * 2 * math.pi)

    def grid_samples(self, spacing: float) -> np.ndarray:
        """Points of a regular square grid of the given spacing (unit coordinates) inside the shape.

        Returns an (n, 2) float64 array of (x, y). Used for exact thin-lens accumulation: with
        spacing s and a blur radius r the neighbouring views are s·r pixels apart.
        """
        if spacing <= 0:
            raise ValueError("spacing must be positive")
        ticks = np.arange(-1.0, 1.0 + 1e-9, spacing)
        ticks = ticks - (ticks[0] + ticks[-1]) / 2  # centre the grid on the origin
        xs, ys = np.meshgrid(ticks, ticks)
        inside = self.contains(xs, ys)
        return np.stack([xs[inside], ys[inside]], axis=1)

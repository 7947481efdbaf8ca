"""Signals: one module per kind (pointcloud, image; color for colour spaces). Nothing else knows file formats.

A `Signal` is what every codec sees of any signal: network inputs, the colours to code, and what the decoder must
be told (`info`, the container's signal section).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Signal:
    inputs: np.ndarray  # (N, in_dim) float32 network inputs, in [−1, 1]
    colours: np.ndarray  # (N, C) uint8 or uint16, in input order
    info: object  # container.SignalInfo: kind, colour space and bits, geometry CRC or image size
    loss_weights: tuple | None = None  # per output channel; None: the FitConfig's
    geometry: np.ndarray | None = None  # point clouds: the (N, 3) coordinates coded (voxelized if asked)

    @property
    def colour_bits(self) -> int:
        return 16 if self.colours.dtype == np.uint16 else 8

    @property
    def channels(self) -> int:
        return int(self.colours.shape[1])

    @property
    def in_dim(self) -> int:
        return int(self.inputs.shape[1])

"""BT.709 full-range RGB <-> YCbCr, in 8-bit units (Y in [0, 255], Cb/Cr centred on 128).

This is the conversion MPEG's pc_error and G-PCC use for attribute PSNR, so our Y-PSNR is theirs.
"""

from __future__ import annotations

import numpy as np

KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB

_RGB_TO_YCC = np.array(
    [
        [KR, KG, KB],
        [-KR / (2 * (1 - KB)), -KG / (2 * (1 - KB)), 0.5],
        [0.5, -KG / (2 * (1 - KR)), -KB / (2 * (1 - KR))],
    ],
    dtype=np.float64,
)
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC)
_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb) -> np.ndarray:
    """(N, 3) RGB in [0, 255] -> (N, 3) float64 YCbCr in [0, 255]."""
    return np.asarray(rgb, dtype=np.float64) @ _RGB_TO_YCC.T + _OFFSET


def ycbcr_to_rgb(ycc) -> np.ndarray:
    """(N, 3) YCbCr in [0, 255] -> (N, 3) float64 RGB (unclipped, unrounded)."""
    return (np.asarray(ycc, dtype=np.float64) - _OFFSET) @ _YCC_TO_RGB.T


def to_uint8(x) -> np.ndarray:
    """Rounds and clips to the 8-bit range."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), 0, 255).astype(np.uint8)

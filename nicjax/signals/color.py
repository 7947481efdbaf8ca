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
    """(N, 3) YCbCr in [0, 255] -> (N, 3) float64 RGB (unclipped, unrounded).

    Written out term by term rather than as a matmul: numpy's elementwise arithmetic is correctly rounded, so the
    decoder's colours do not depend on the BLAS kernel a machine picks (and it is faster than a 3-column matmul).
    """
    c = np.asarray(ycc, dtype=np.float64) - _OFFSET
    m = _YCC_TO_RGB
    out = np.empty_like(c)
    for k in range(3):
        out[..., k] = c[..., 0] * m[k, 0] + c[..., 1] * m[k, 1] + c[..., 2] * m[k, 2]
    return out


def to_uint8(x) -> np.ndarray:
    """Rounds and clips to the 8-bit range."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), 0, 255).astype(np.uint8)


# --- colours <-> network outputs (in [−0.5, 0.5]) -------------------------------------------------------------
# The colour-space codes are the container's: 0 BT.709 YCbCr (container.COLOUR_YCBCR709), 1 RGB (COLOUR_RGB).
YCBCR709, RGB = 0, 1


def peak(bits: int) -> float:
    return float((1 << bits) - 1)


def targets_from_colours(colours: np.ndarray, bits: int, colour_space: int) -> np.ndarray:
    """Network targets in [−0.5, 0.5]: the colours themselves (RGB, any channels) or their BT.709 YCbCr."""
    colours = np.asarray(colours, np.float64)
    if colour_space == YCBCR709:
        return (rgb_to_ycbcr(colours * (255.0 / peak(bits))) / 255.0 - 0.5).astype(np.float32)
    return (colours / peak(bits) - 0.5).astype(np.float32)


def colours_from_outputs(out: np.ndarray, bits: int, colour_space: int) -> np.ndarray:
    """Inverse of `targets_from_colours`: rounded and clipped to `bits`-bit colours."""
    top = peak(bits)
    if colour_space == YCBCR709:
        values = ycbcr_to_rgb((np.asarray(out, np.float64) + 0.5) * 255.0) * (top / 255.0)
    else:
        values = (np.asarray(out, np.float64) + 0.5) * top
    return np.clip(np.rint(values), 0, top).astype(np.uint16 if bits == 16 else np.uint8)


def rgb_mse_weights(colour_space: int, channels: int) -> tuple:
    """Loss weights under which the loss is the plain MSE over R, G, B (all channels for grayscale).

    For YCbCr outputs: the diagonal of the YCbCr → RGB Gram matrix / 3 (the cross terms are small and ignored).
    """
    if colour_space == YCBCR709:
        unit = ycbcr_to_rgb(np.eye(3) + _OFFSET)  # row k: the RGB of a unit step in Y/Cb/Cr
        return tuple(float(w) for w in np.square(unit).sum(axis=1) / 3.0)
    return (1.0 / channels,) * channels

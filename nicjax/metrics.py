"""Distortion and rate as MPEG measures them: BT.709 Y/Cb/Cr PSNR (peak 255), points matched by coordinate.

`python -m nicjax.metrics REFERENCE.ply DECODED.ply` measures a decoded cloud independently of the codec.
"""

from __future__ import annotations

import math

import numpy as np

from nicjax.errors import NicError
from nicjax.signals.color import rgb_to_ycbcr


def psnr(mse: float, peak: float = 255.0) -> float:
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def colour_psnr(rgb_ref, rgb_test, peak: float = 255.0) -> dict:
    """Y, U (Cb), V (Cr), YUV = (6Y + U + V)/8 and RGB PSNR of two equally ordered (N, 3) colour arrays.

    YCbCr is computed in float from each side's RGB (as pc_error does); `peak` scales 16-bit colours.
    """
    a = np.asarray(rgb_ref, np.float64) * (255.0 / peak)
    b = np.asarray(rgb_test, np.float64) * (255.0 / peak)
    mse_ycc = np.mean(np.square(rgb_to_ycbcr(a) - rgb_to_ycbcr(b)), axis=0)
    y, u, v = (psnr(m) for m in mse_ycc)
    return {"y": y, "u": u, "v": v, "yuv": (6 * y + u + v) / 8, "rgb": psnr(float(np.mean(np.square(a - b))))}


def match_order(xyz_ref: np.ndarray, xyz_test: np.ndarray) -> np.ndarray:
    """Indices `idx` with xyz_test[idx] == xyz_ref row by row; NicError if the point sets differ."""
    if xyz_ref.shape != xyz_test.shape:
        raise NicError(f"clouds have different numbers of points ({len(xyz_ref)} vs {len(xyz_test)})")
    ra = np.lexsort(xyz_ref.T[::-1])
    rb = np.lexsort(xyz_test.T[::-1])
    if not np.array_equal(xyz_ref[ra], xyz_test[rb]):
        raise NicError("clouds do not have the same point coordinates")
    idx = np.empty_like(ra)
    idx[ra] = rb
    return idx


def bits_per_point(num_bytes: int, num_points: int) -> float:
    return 8.0 * num_bytes / num_points


def main(argv):
    from nicjax.signals import pointcloud

    if len(argv) != 3:
        raise SystemExit("usage: python -m nicjax.metrics REFERENCE.ply DECODED.ply")
    try:
        ref = pointcloud.read_ply(argv[1])
        test = pointcloud.read_ply(argv[2])
        idx = match_order(ref.xyz, test.xyz)
    except NicError as e:
        raise SystemExit(f"error: {e}")
    peak = 65535.0 if ref.colour_bits == 16 else 255.0
    p = colour_psnr(ref.rgb, test.rgb[idx], peak)
    print(f"points {ref.num_points}  Y-PSNR {p['y']:.3f} dB  U-PSNR {p['u']:.3f} dB  V-PSNR {p['v']:.3f} dB  "
          f"YUV-PSNR {p['yuv']:.3f} dB  RGB-PSNR {p['rgb']:.3f} dB")


def console():
    """The `nicjax-metrics` console script."""
    import sys

    main(sys.argv)


if __name__ == "__main__":
    console()

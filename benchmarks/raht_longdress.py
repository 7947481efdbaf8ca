"""Rate-distortion of the RAHT baseline on a voxelised point cloud (default: 8i longdress, CWI level 3).

    python benchmarks/raht_longdress.py [--ply PATH] [--steps 1,2,4,...] [--reference TSV]

Prints bits per point (8 * bytes / N, whole bitstream including the 25-byte header/trailer), Y-PSNR (BT.709
Y of the original vs the decoded RGB, peak 255) and encode/decode wall seconds per step, and, if a G-PCC
reference TSV is given, its (colour_bpp, ypsnr) points for comparison.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np
import plyfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nicjax.baselines import raht  # noqa: E402
from nicjax.signals.color import rgb_to_ycbcr  # noqa: E402

_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded/longdress_cwi_pcl_l3.ply"
_REFERENCE = "../shared/reference/gpcc/longdress_cwi_pcl_l3_tmc13-v23-rahtplain.tsv"


def load_ply(path: str) -> tuple[np.ndarray, np.ndarray]:
    vertex = plyfile.PlyData.read(path)["vertex"].data
    coords = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(np.uint8)
    return raht.check_coords(coords), rgb


def y_psnr(rgb_ref: np.ndarray, rgb_dec: np.ndarray) -> float:
    mse = np.mean((rgb_to_ycbcr(rgb_ref)[:, 0] - rgb_to_ycbcr(rgb_dec)[:, 0]) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ply", default=_DATA)
    parser.add_argument("--steps", default="1,2,4,8,16,32,64,128,256")
    parser.add_argument("--reference", default=_REFERENCE, help="G-PCC TSV ('' to skip)")
    args = parser.parse_args()

    coords, rgb = load_ply(args.ply)
    n = len(coords)
    print(f"{os.path.basename(args.ply)}: {n} points")
    print(f"{'step':>6} {'bpp':>8} {'Y-PSNR':>8} {'enc_s':>7} {'dec_s':>7}")
    for step in [float(s) for s in args.steps.split(",")]:
        t0 = time.perf_counter()
        data, recon = raht.encode_with_reconstruction(coords, rgb, step)
        t1 = time.perf_counter()
        decoded = raht.decode(data, coords)
        t2 = time.perf_counter()
        if not np.array_equal(decoded, recon):
            raise RuntimeError(f"decoder disagrees with encoder at step {step}")
        print(f"{step:6g} {8 * len(data) / n:8.4f} {y_psnr(rgb, decoded):8.2f} {t1 - t0:7.2f} {t2 - t1:7.2f}")

    if args.reference and os.path.exists(args.reference):
        print(f"\nG-PCC reference ({os.path.basename(args.reference)}):")
        print(f"{'rate':>6} {'bpp':>8} {'Y-PSNR':>8}")
        with open(args.reference) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                print(f"{row['rate']:>6} {float(row['colour_bpp']):8.4f} {float(row['ypsnr']):8.2f}")


if __name__ == "__main__":
    main()

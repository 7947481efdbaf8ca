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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nicjax import codec, codecs, configs  # noqa: E402
from nicjax.baselines import raht  # noqa: E402
from nicjax.metrics import colour_psnr  # noqa: E402
from nicjax.signals import pointcloud  # noqa: E402

_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded/longdress_cwi_pcl_l3.ply"
_REFERENCE = "../shared/reference/gpcc/longdress_cwi_pcl_l3_tmc13-v23-rahtplain.tsv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ply", default=_DATA)
    parser.add_argument("--steps", default="1,2,4,8,16,32,64,128,256")
    parser.add_argument("--reference", default=_REFERENCE, help="G-PCC TSV ('' to skip)")
    args = parser.parse_args()

    cloud = pointcloud.read_ply(args.ply)
    signal = pointcloud.to_signal(cloud)
    coder = codecs.CODECS["raht"]  # the CLI's RAHT: integer coordinates shifted by their bounding-box minimum
    context = codec.DecodeContext(geometry=cloud.xyz)
    n = cloud.num_points
    print(f"{os.path.basename(args.ply)}: {n} points")
    print(f"{'step':>6} {'bpp':>8} {'Y-PSNR':>8} {'enc_s':>7} {'dec_s':>7}")
    for step in [float(s) for s in args.steps.split(",")]:
        t0 = time.perf_counter()
        data = coder.encode(signal, configs.RahtConfig(step))
        t1 = time.perf_counter()
        decoded = coder.decode(data, context).values
        t2 = time.perf_counter()
        # the encoder's own reconstruction, on the coordinates the adapter codes (shifted to start at 0)
        shifted = np.asarray(cloud.xyz) - np.asarray(cloud.xyz).min(axis=0)
        again, recon = raht.encode_with_reconstruction(raht.check_coords(shifted), cloud.rgb, step)
        if again != data or not np.array_equal(decoded, recon):
            raise RuntimeError(f"decoder disagrees with encoder at step {step}")
        y = colour_psnr(cloud.rgb, decoded)["y"]
        print(f"{step:6g} {8 * len(data) / n:8.4f} {y:8.2f} {t1 - t0:7.2f} {t2 - t1:7.2f}")

    if args.reference and os.path.exists(args.reference):
        print(f"\nG-PCC reference ({os.path.basename(args.reference)}):")
        print(f"{'rate':>6} {'bpp':>8} {'Y-PSNR':>8}")
        with open(args.reference) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                print(f"{row['rate']:>6} {float(row['colour_bpp']):8.4f} {float(row['ypsnr']):8.2f}")


if __name__ == "__main__":
    main()

"""python -m nicjax.decompress INPUT.nic --geometry GEOMETRY.ply -o DECODED.ply

Writes the decoded cloud: the geometry's points (voxelized if the encoder voxelized) with decoded colours.
"""

from __future__ import annotations

import os
import time

from absl import flags

from nicjax import cli, codec
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
flags.DEFINE_string("geometry", None, "PLY file with the point coordinates (colours in it are ignored).")
flags.DEFINE_string("output", None, "Decoded PLY file (default: INPUT's name with .ply, in the current folder).",
                    short_name="o")


def main(argv):
    if len(argv) != 2:
        cli.fail("usage: python -m nicjax.decompress INPUT.nic --geometry GEOMETRY.ply -o DECODED.ply", 2)
    if not FLAGS.geometry:
        cli.fail("--geometry GEOMETRY.ply is required for a point cloud", 2)
    source = argv[1]
    output = FLAGS.output or os.path.splitext(os.path.basename(source))[0] + ".ply"
    t0 = time.perf_counter()
    data = cli.read_bytes(source)
    xyz = pointcloud.read_geometry(FLAGS.geometry)
    xyz, rgb = codec.decompress_cloud(data, xyz)
    seconds = time.perf_counter() - t0
    pointcloud.write_ply(output, xyz, rgb)
    print(f"output  {output}")
    print(f"points  {len(xyz)}")
    print(f"bpp     {8 * len(data) / len(xyz):.4f}")
    print(f"time    decode {seconds:.2f} s")


if __name__ == "__main__":
    cli.run(main)

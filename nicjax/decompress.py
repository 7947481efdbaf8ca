"""python -m nicjax.decompress INPUT.nic -o DECODED.png [--scale K] [--original PHOTO.png]
   python -m nicjax.decompress INPUT.nic --geometry GEOMETRY.ply -o DECODED.ply

The codec is found from the file's magic number (NIC or the RAHT baseline). An image file decodes from the file
alone: the header holds the pixel grid. --scale K samples the network on a grid K times as fine in each direction
(the same continuous function between the coded pixel centres), and --original measures the PSNR of the decoded
image against the original. A point-cloud file needs the geometry: the output has its points (voxelized if the
encoder voxelized) with the decoded colours.
"""

from __future__ import annotations

import dataclasses
import os
import time

from absl import flags

from nicjax import cli, codec, codecs, container
from nicjax.signals import color, image, pointcloud

FLAGS = flags.FLAGS
flags.DEFINE_string("geometry", None, "Point clouds: PLY file with the point coordinates (its colours are ignored).")
flags.DEFINE_string("output", None, "Decoded file (default: INPUT's name with .png for an image, .ply for a "
                    "point cloud, in the current folder).", short_name="o")
flags.DEFINE_string("init", None, "The init artefact (.init file or id) the file was coded against, if it is not "
                    "one shipped with nicjax.")
flags.DEFINE_float("scale", 1.0, "Images: decode on a grid this many times as fine (or coarse) as the coded one.")
flags.DEFINE_string("original", None, "Images: the original image, to print the PSNR of the decoded one.")


def _output(source: str, extension: str) -> str:
    output = FLAGS.output or os.path.splitext(os.path.basename(source))[0] + extension
    cli.check_output(output, [source, FLAGS.geometry, FLAGS.original])  # never overwrite an input
    return output


def decompress_image(source: str, data: bytes, header: container.Header, init_search: tuple, t0: float) -> None:
    if FLAGS.geometry:
        cli.fail(f"{source} holds an image: --geometry is for point clouds", 2)
    output = _output(source, ".png")
    original = image.read_image(FLAGS.original) if FLAGS.original else None
    s = header.signal
    try:
        height, width = image.scaled_size(s.height, s.width, FLAGS.scale)
    except ValueError as e:
        cli.fail(f"--scale: {e}" if FLAGS.scale != 1 else f"{source}: {e}", 2)
    channels = header.model.out_dim
    if original is not None and original.pixels.shape != (height, width, channels):
        cli.fail(f"--original is {original.width}×{original.height}×{original.channels}, the decoded image would "
                 f"be {width}×{height}×{channels}: no PSNR", 2)
    pixels = codec.decode(data, codec.DecodeContext(scale=FLAGS.scale, init_search=init_search)).values
    seconds = time.perf_counter() - t0
    image.write_image(output, pixels)
    print(f"output  {output}")
    print(f"size    {pixels.shape[1]}×{pixels.shape[0]} (coded {s.width}×{s.height}, scale {FLAGS.scale:g})")
    print(f"bpp     {8 * len(data) / (s.height * s.width):.4f}")
    if original is not None:
        space = "RGB" if pixels.shape[2] == 3 else "gray"
        peak = color.peak(s.colour_bits)
        print(f"PSNR    {space} {image.image_psnr(original.pixels, pixels, peak):.2f} dB (peak {peak:.0f})")
    print(f"time    decode {seconds:.2f} s")


def decompress_cloud(source: str, data: bytes, decode, t0: float, codec_name: str = "") -> None:
    """`decode(context)` -> codec.Decoded, for the file's codec."""
    if not FLAGS.geometry:
        cli.fail("--geometry GEOMETRY.ply is required for a point cloud", 2)
    if FLAGS.scale != 1.0 or FLAGS.original:
        cli.fail("--scale and --original are for images", 2)
    output = _output(source, ".ply")
    decoded = decode(codec.DecodeContext(geometry=pointcloud.read_geometry(FLAGS.geometry)))
    seconds = time.perf_counter() - t0
    pointcloud.write_ply(output, decoded.xyz, decoded.values)
    print(f"output  {output}")
    print(f"points  {len(decoded.xyz)}")
    print(f"bpp     {8 * len(data) / len(decoded.xyz):.4f}")
    print(f"time    decode {seconds:.2f} s{codec_name}")


def main(argv):
    if len(argv) != 2:
        cli.fail("usage: python -m nicjax.decompress INPUT.nic -o DECODED.png  (an image), or "
                 "INPUT.nic --geometry GEOMETRY.ply -o DECODED.ply  (a point cloud)", 2)
    source = argv[1]
    t0 = time.perf_counter()
    data = cli.read_bytes(source)
    file_codec = codecs.for_file(data)
    if file_codec.name != codec.NAME:
        return decompress_cloud(source, data, lambda context: file_codec.decode(data, context), t0,
                                f" ({file_codec.name.upper()})")
    init_search = (FLAGS.init,) if FLAGS.init else ()
    header = codec.read_header(data)
    if header.signal.kind == container.SIGNAL_IMAGE:
        decompress_image(source, data, header, init_search, t0)
    else:  # a latent file's payload decodes only with the geometry: the whole decode waits for it
        decompress_cloud(source, data, lambda context: codec.decode(
            data, dataclasses.replace(context, init_search=init_search)), t0)


def console():
    """The `nicjax-decompress` console script."""
    cli.run(main)


if __name__ == "__main__":
    cli.run(main)

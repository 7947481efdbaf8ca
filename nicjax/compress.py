"""python -m nicjax.compress [INPUT] -o OUTPUT.nic [--width W --depth D --steps S --levels L --lr LR --seed N]

INPUT is a PLY point cloud (its colours are coded; the decoder needs the geometry) or an image Pillow reads
(PNG, JPEG, ...; the file alone decodes). With no INPUT, compresses a procedurally generated coloured cloud
(no data needed on a fresh machine). Prints the size, bytes, bits per point or pixel, the PSNR of the decoded
result (Y/U/V for clouds, RGB with peak 255 for images) and the encode time.

Flags left unset take the --preset's values for a cloud and the 'image' preset's for an image
(nicjax.configs.PRESETS); every config flag is defined by nicjax.config_flags.
"""

from __future__ import annotations

import os
import sys
import time

from absl import flags

from nicjax import cli, codec, codecs, config_flags, configs, rate_control
from nicjax.metrics import colour_psnr
from nicjax.signals import color, image, pointcloud

FLAGS = flags.FLAGS
config_flags.define()
flags.adopt_module_key_flags(config_flags)  # --help lists the config flags too
flags.DEFINE_string("output", None, "Output .nic file (default: INPUT's name with .nic, in the current folder).",
                    short_name="o")
flags.DEFINE_enum("codec", "nic", list(codecs.CODECS), "Point clouds: NIC or the RAHT baseline "
                  "(nicjax.baselines.raht; integer coordinates, 8-bit colours).")
flags.DEFINE_float("raht_step", configs.RahtConfig.step, "RAHT: the uniform quantization step of the transform "
                   "coefficients.")
flags.DEFINE_float("bpp", None, "Target bits per point (per pixel for images): the levels are chosen, and the "
                   "network too unless --width/--depth are given (nicjax.rate_control); prints what was reached.")
flags.DEFINE_float("psnr", None, "Target quality in dB (Y-PSNR for clouds, RGB PSNR for images): the network given "
                   "(or the preset's) is trained once and coded at the fewest levels whose decoded file reaches it "
                   "(nicjax.rate_control); prints what was reached.")
flags.DEFINE_bool("progress", sys.stderr.isatty(), "Show a progress bar while training (default: when stderr is "
                  "a terminal, so that logs get no carriage-return lines).")


def _config(defaults: configs.CodecConfig | None) -> configs.CodecConfig:
    try:
        config = config_flags.codec_config(defaults)
        config_flags.check(config)
    except ValueError as e:
        cli.fail(str(e), 2)
    return config


def _output(source: str | None, fallback: str) -> str:
    output = FLAGS.output or (os.path.splitext(os.path.basename(source))[0] + ".nic" if source else fallback)
    cli.check_output(output, [source])  # before training: not the input, and a folder we can write in
    return output


def _report(output: str, data: bytes, count: int, unit: str, quality: str, seconds: str) -> None:
    print(f"output  {output}")
    print(f"{unit + 's':<7} {count}")
    print(f"bytes   {len(data)}")
    print(f"bpp     {8 * len(data) / count:.4f}  (bits per {unit}, from the file's size)")
    print(f"PSNR    {quality}")
    print(f"time    {seconds}")


def _check_bpp() -> None:
    """--bpp or --psnr: one of them, a valid target, for NIC's SIREN only, and the levels are not given too."""
    if FLAGS.bpp is None and FLAGS.psnr is None:
        return
    flag = "--bpp" if FLAGS.bpp is not None else "--psnr"
    if FLAGS.bpp is not None and FLAGS.psnr is not None:
        cli.fail("give --bpp or --psnr, not both", 2)
    if FLAGS.codec != "nic":
        cli.fail(f"{flag} is for the NIC codec, not --codec {FLAGS.codec} (whose rate is set by --raht_step)", 2)
    if FLAGS["levels"].present:
        cli.fail(f"{flag} chooses the levels: leave --levels out", 2)
    if FLAGS.representation == "latent":
        cli.fail(f"{flag} is not built for --representation latent yet: its rate is set by --lambda", 2)
    try:
        if FLAGS.bpp is not None:
            rate_control.check_target(FLAGS.bpp)
        else:
            rate_control.check_psnr_target(FLAGS.psnr)
    except ValueError as e:
        cli.fail(str(e), 2)


def _encode(at_config, at_bpp, at_psnr, subject, config: configs.CodecConfig, unit: str):
    """`at_config(subject, config)` codes at the config's operating point; with --bpp, `at_bpp(subject, config,
    target)` picks the levels (and the network unless --width/--depth are given) and the rate reached is printed;
    with --psnr, `at_psnr` picks the levels for the quality, and the quality reached is printed."""
    try:
        if FLAGS.psnr is not None:
            result, quality = at_psnr(subject, config, FLAGS.psnr, progress=FLAGS.progress)
            points = len(result.xyz) if hasattr(result, "xyz") else result.pixels.shape[0] * result.pixels.shape[1]
            print(f"quality {rate_control.describe_quality(quality, points, unit)}")
            if quality.note:
                print(f"note    {quality.note}")
            return result
        if FLAGS.bpp is None:
            return at_config(subject, config, progress=FLAGS.progress)
        choose_network = not (FLAGS["width"].present or FLAGS["depth"].present)
        result, rate = at_bpp(subject, config, FLAGS.bpp, progress=FLAGS.progress, choose_network=choose_network)
    except ValueError as e:
        cli.fail(str(e), 2)
    print(f"rate    {rate_control.describe(rate, unit)}")
    if rate.note:
        print(f"note    {rate.note}")
    return result


def _cloud_psnr(p: dict) -> str:
    return f"Y {p['y']:.2f} dB  U {p['u']:.2f} dB  V {p['v']:.2f} dB  YUV {p['yuv']:.2f} dB"


def compress_raht(cloud: pointcloud.PointCloud, output: str | None) -> None:
    if FLAGS.voxelize:
        cloud = pointcloud.voxelize(cloud)
    t0 = time.perf_counter()
    signal = pointcloud.to_signal(cloud)
    data = codecs.CODECS["raht"].encode(signal, configs.RahtConfig(step=FLAGS.raht_step))
    seconds = time.perf_counter() - t0
    decoded = codecs.CODECS["raht"].decode(data, codec.DecodeContext(geometry=cloud.xyz)).values
    if output is not None:
        pointcloud.atomic_write(output, lambda f: f.write(data))
    _report(output or "(none written: give -o FILE to keep it)", data, cloud.num_points, "point",
            _cloud_psnr(colour_psnr(cloud.rgb, decoded)),
            f"encode {seconds:.1f} s (RAHT, step {FLAGS.raht_step:g})")


def compress_cloud(cloud: pointcloud.PointCloud, source: str, output: str | None,
                   defaults: configs.CodecConfig | None = None) -> None:
    """`output` None: the demo, which writes no file."""
    print(f"input   {source}: {cloud.num_points} points")
    _check_bpp()
    if FLAGS.codec == "raht":
        return compress_raht(cloud, output)
    config = _config(defaults)
    if config.colour_space not in ("auto", "ycbcr"):
        cli.fail("--colour_space: point clouds are coded in YCbCr", 2)
    result = _encode(codec.compress_cloud, rate_control.compress_cloud_to_bpp, rate_control.compress_cloud_to_psnr,
                     cloud, config, "point")
    if output is not None:
        pointcloud.atomic_write(output, lambda f: f.write(result.data))
    _report(output or "(none written: give -o FILE to keep it)", result.data, len(result.xyz), "point",
            _cloud_psnr(result.psnr),
            f"encode {result.seconds['encode']:.1f} s (training {result.seconds['fit']:.1f} s)")


DEMO = """demo    No input was given, so nicjax compresses a procedurally generated cloud: a bumpy sphere of
        {points} coloured points, coded as a {width}x{depth} SIREN trained for {steps} steps (well under a minute on
        2 CPU cores). It decodes its own bytes and reports what a decoder gets. Give a PLY point cloud or an
        image to compress your own; flags change the settings (--help). The progress bar's psnr0 is the PSNR
        of the luma (Y) on the current training minibatch."""

DEMO_KEY = """key     bytes and bpp (bits per point) are the size of the file on disk, header included; PSNR compares the
        decoded colours with the input's in BT.709 Y, U (Cb), V (Cr) and their 6:1:1 mix, as MPEG measures
        point-cloud colour (higher is better: ~30 dB is visibly close, ~40 dB hard to tell apart)."""


def demo(output: str | None) -> None:
    cloud = pointcloud.procedural_cloud(30000)
    d = configs.preset("demo")
    if FLAGS["preset"].present:
        d = configs.preset(FLAGS.preset)
    m = config_flags.codec_config(d)
    print(DEMO.format(points=cloud.num_points, width=m.model.width, depth=m.model.depth, steps=m.fit.steps))
    compress_cloud(cloud, "procedural cloud (no input given)", output, d)
    print(DEMO_KEY)


def compress_image(img: image.Image, source: str, output: str) -> None:
    if FLAGS.codec != "nic":
        cli.fail("--codec raht is for point clouds", 2)
    # unset flags: the image preset's, or with --representation latent the latent preset's (as for clouds)
    latent = FLAGS["representation"].present and FLAGS.representation == "latent"
    config = _config(configs.IMAGE if not (FLAGS["preset"].present or latent) else None)
    if FLAGS.voxelize:
        cli.fail("--voxelize is for point clouds", 2)
    kind = "RGB" if img.channels == 3 else f"grayscale {img.colour_bits}-bit"
    print(f"input   {source}: {img.width}×{img.height} {kind} image")
    _check_bpp()
    result = _encode(codec.compress_image, rate_control.compress_image_to_bpp, rate_control.compress_image_to_psnr,
                     img, config, "pixel")
    pointcloud.atomic_write(output, lambda f: f.write(result.data))
    space = "RGB" if img.channels == 3 else "gray"
    _report(output, result.data, img.num_pixels, "pixel",
            f"{space} {result.psnr:.2f} dB (peak {color.peak(img.colour_bits):.0f})",
            f"encode {result.seconds['encode']:.1f} s (training {result.seconds['fit']:.1f} s)")


def main(argv):
    if len(argv) > 2:
        cli.fail(f"expected one input file, got {len(argv) - 1}: {' '.join(argv[1:])}", 2)
    if len(argv) == 1:
        return demo(_output(None, None) if FLAGS.output else None)
    source = argv[1]
    if source.lower().endswith(".ply") or image.looks_like_ply(source):
        compress_cloud(pointcloud.read_ply(source), source, _output(source, ""))
    else:
        compress_image(image.read_image(source), source, _output(source, ""))


def console():
    """The `nicjax-compress` console script."""
    cli.run(main)


if __name__ == "__main__":
    cli.run(main)

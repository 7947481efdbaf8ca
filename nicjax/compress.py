"""python -m nicjax.compress [INPUT] -o OUTPUT.nic [--width W --depth D --steps S --levels L --lr LR --seed N]

INPUT is a PLY point cloud (its colours are coded; the decoder needs the geometry) or an image Pillow reads
(PNG, JPEG, ...; the file alone decodes). With no INPUT, compresses a procedurally generated coloured cloud
(no data needed on a fresh machine). Prints the size, bytes, bits per point or pixel, the PSNR of the decoded
result (Y/U/V for clouds, RGB with peak 255 for images) and the encode time.

Flags left unset take the point-cloud defaults (codec.CodecConfig()) for a cloud and codec.IMAGE_CONFIG's for
an image.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import flags

from nicjax import bitstream, cli, codec
from nicjax.errors import NicError
from nicjax.signals import image, pointcloud

FLAGS = flags.FLAGS
_DEFAULTS = codec.CodecConfig()
_IMAGE = codec.IMAGE_CONFIG
flags.DEFINE_string("output", None, "Output .nic file (default: INPUT's name with .nic, in the current folder).",
                    short_name="o")
flags.DEFINE_integer("width", _DEFAULTS.model.width,
                     f"SIREN width (features per hidden layer); images: {_IMAGE.model.width}.")
flags.DEFINE_integer("depth", _DEFAULTS.model.depth, f"SIREN depth (number of sine layers); images: "
                     f"{_IMAGE.model.depth}.")
flags.DEFINE_float("omega0", _DEFAULTS.model.omega0, "Frequency ω0 of the first sine layer (the paper's: 30).")
flags.DEFINE_integer("qat_steps", _DEFAULTS.fit.qat_steps, "Quantization-aware fine-tuning steps after training, "
                     "at the steps --levels gives (worth most at 8-64 levels); 0: off.")
flags.DEFINE_float("delta_l1", _DEFAULTS.fit.delta_l1, "Rate penalty: weight of mean |w − reference| in the "
                   "training loss: fewer bytes for some PSNR (README, 'Point clouds: measured'); 0: off.")
flags.DEFINE_integer("steps", _DEFAULTS.fit.steps, f"Training steps (Adam); images: {_IMAGE.fit.steps}.")
flags.DEFINE_integer("levels", _DEFAULTS.levels, f"Quantization levels per layer, 4 .. 4096; images: "
                     f"{_IMAGE.levels}.")
flags.DEFINE_float("lr", _DEFAULTS.fit.learning_rate, f"Adam learning rate (peak of the schedule); images: "
                   f"{_IMAGE.fit.learning_rate}.")
flags.DEFINE_enum("codec", "nic", ["nic", "raht"], "Point clouds: NIC (the SIREN) or the RAHT baseline "
                  "(nicjax.baselines.raht; integer coordinates, 8-bit colours).")
flags.DEFINE_float("raht_step", 64.0, "RAHT: the uniform quantization step of the transform coefficients.")
flags.DEFINE_enum("preset", "default", list(codec.PRESETS), "Point clouds: the settings flags left unset take "
                  "('paper': Adam 1e-5 for 20000 steps, constant rate, as in the paper).")
flags.DEFINE_enum("schedule", _DEFAULTS.fit.schedule, ["cosine", "constant"], "Learning-rate schedule.")
flags.DEFINE_integer("batch", _DEFAULTS.fit.batch_size, f"Points or pixels per training step (random "
                     f"minibatch); images: {_IMAGE.fit.batch_size}.")
flags.DEFINE_integer("seed", _DEFAULTS.fit.seed, "Seed of the init and the minibatches: same seed, same bytes.")
flags.DEFINE_enum("reference", _DEFAULTS.reference, list(codec.REFERENCES),
                  "What the weights are coded against: 'zeros' (direct), 'seeded' (differences from the seeded "
                  "random init), 'init' (differences from --init); 'auto': 'init' with --init, else 'seeded'.")
flags.DEFINE_string("init", None, "Start from this init artefact (a shipped id or name, or an .init file) and, "
                    "by default, code the weights as differences from it. The decoder needs the same init.")
flags.DEFINE_enum("colour_space", "auto", ["auto", "rgb", "ycbcr"],
                  f"Images: what the network outputs ('auto': {codec.IMAGE_COLOUR_SPACE}). Clouds: always YCbCr.")
flags.DEFINE_bool("voxelize", False, "Point clouds: round coordinates to the integer grid and merge duplicates.")
flags.DEFINE_bool("progress", sys.stderr.isatty(), "Show a progress bar while training (default: when stderr is "
                  "a terminal, so that logs get no carriage-return lines).")


def _value(name: str, default):
    """The flag's value if given on the command line, else `default` (the signal's own default)."""
    return getattr(FLAGS, name) if FLAGS[name].present else default


def config_from_flags(defaults: codec.CodecConfig | None = None) -> codec.CodecConfig:
    """The codec config the flags describe; unset flags take `defaults` (the point-cloud defaults if None)."""
    d = defaults or _DEFAULTS
    model = dataclasses.replace(d.model, width=_value("width", d.model.width), depth=_value("depth", d.model.depth),
                                omega0=_value("omega0", d.model.omega0))
    fit_config = dataclasses.replace(
        d.fit, steps=_value("steps", d.fit.steps), learning_rate=_value("lr", d.fit.learning_rate),
        schedule=_value("schedule", d.fit.schedule), batch_size=_value("batch", d.fit.batch_size),
        seed=_value("seed", d.fit.seed), qat_steps=_value("qat_steps", d.fit.qat_steps),
        delta_l1=_value("delta_l1", d.fit.delta_l1))
    return codec.CodecConfig(model=model, fit=fit_config, levels=_value("levels", d.levels),
                             reference=_value("reference", d.reference), init=FLAGS.init, voxelize=FLAGS.voxelize,
                             colour_space=FLAGS.colour_space)


def _check(config: codec.CodecConfig) -> None:
    if not 4 <= config.levels <= 4096:
        cli.fail(f"--levels must be in [4, 4096], got {config.levels}", 2)
    if config.model.width < 1 or config.model.depth < 1 or config.fit.steps < 0 or config.fit.batch_size < 1:
        cli.fail("--width, --depth and --batch must be positive and --steps non-negative", 2)
    if config.fit.qat_steps < 0 or config.fit.delta_l1 < 0 or not config.model.omega0 > 0:
        cli.fail("--qat_steps and --delta_l1 must be non-negative and --omega0 positive", 2)
    m = config.model
    try:  # what the file header can store, checked before training rather than after it
        bitstream.check_network(m.in_dim, m.out_dim, m.width, m.depth, m.omega0, m.omega)
    except ValueError as e:
        cli.fail(str(e), 2)


def _output(source: str | None, fallback: str) -> str:
    output = FLAGS.output or (os.path.splitext(os.path.basename(source))[0] + ".nic" if source else fallback)
    cli.check_output(output, [source])  # before training: not the input, and a folder we can write in
    return output


def compress_raht(cloud: pointcloud.PointCloud, source: str, output: str) -> None:
    import time

    from nicjax.baselines import raht
    from nicjax.metrics import colour_psnr

    if FLAGS.voxelize:
        cloud = pointcloud.voxelize(cloud)
    if cloud.colour_bits != 8:
        cli.fail("--codec raht codes 8-bit colours only", 2)
    print(f"input   {source}: {cloud.num_points} points")
    t0 = time.perf_counter()
    try:
        data, decoded = raht.encode_with_reconstruction(raht.check_coords(cloud.xyz), cloud.rgb, FLAGS.raht_step)
    except ValueError as e:
        raise NicError(f"{source}: {e}" + (" (try --voxelize)" if "integer" in str(e) else ""))
    seconds = time.perf_counter() - t0
    pointcloud.atomic_write(output, lambda f: f.write(data))
    p = colour_psnr(cloud.rgb, decoded)
    print(f"output  {output}")
    print(f"points  {cloud.num_points}")
    print(f"bytes   {len(data)}")
    print(f"bpp     {8 * len(data) / cloud.num_points:.4f}")
    print(f"PSNR    Y {p['y']:.2f} dB  U {p['u']:.2f} dB  V {p['v']:.2f} dB  YUV {p['yuv']:.2f} dB")
    print(f"time    encode {seconds:.1f} s (RAHT, step {FLAGS.raht_step:g})")


def compress_cloud(cloud: pointcloud.PointCloud, source: str, output: str) -> None:
    if FLAGS.codec == "raht":
        return compress_raht(cloud, source, output)
    config = config_from_flags(codec.PRESETS[FLAGS.preset])
    _check(config)
    if FLAGS.colour_space not in ("auto", "ycbcr"):
        cli.fail("--colour_space: point clouds are coded in YCbCr", 2)
    print(f"input   {source}: {cloud.num_points} points")
    result = codec.compress_cloud(cloud, config, progress=FLAGS.progress)
    pointcloud.atomic_write(output, lambda f: f.write(result.data))
    p = result.psnr
    print(f"output  {output}")
    print(f"points  {len(result.xyz)}")
    print(f"bytes   {len(result.data)}")
    print(f"bpp     {result.bits_per_point:.4f}")
    print(f"PSNR    Y {p['y']:.2f} dB  U {p['u']:.2f} dB  V {p['v']:.2f} dB  YUV {p['yuv']:.2f} dB")
    print(f"time    encode {result.seconds['encode']:.1f} s (training {result.seconds['fit']:.1f} s)")


def compress_image(img: image.Image, source: str, output: str) -> None:
    config = config_from_flags(_IMAGE)
    _check(config)
    if FLAGS.voxelize:
        cli.fail("--voxelize is for point clouds", 2)
    kind = "RGB" if img.channels == 3 else f"grayscale {img.colour_bits}-bit"
    print(f"input   {source}: {img.width}×{img.height} {kind} image")
    result = codec.compress_image(img, config, progress=FLAGS.progress)
    pointcloud.atomic_write(output, lambda f: f.write(result.data))
    space = "RGB" if img.channels == 3 else "gray"
    print(f"output  {output}")
    print(f"pixels  {img.num_pixels}")
    print(f"bytes   {len(result.data)}")
    print(f"bpp     {result.bits_per_pixel:.4f}")
    print(f"PSNR    {space} {result.psnr:.2f} dB (peak {codec.colour_peak(img.colour_bits):.0f})")
    print(f"time    encode {result.seconds['encode']:.1f} s (training {result.seconds['fit']:.1f} s)")


def main(argv):
    if len(argv) > 2:
        cli.fail(f"expected one input file, got {len(argv) - 1}: {' '.join(argv[1:])}", 2)
    if len(argv) == 1:
        compress_cloud(pointcloud.procedural_cloud(), "procedural cloud (no input given)",
                       _output(None, "procedural.nic"))
        return
    source = argv[1]
    if source.lower().endswith(".ply") or image.looks_like_ply(source):
        cloud = pointcloud.read_ply(source)
        compress_cloud(cloud, source, _output(source, ""))
    else:
        if FLAGS.codec != "nic":
            cli.fail("--codec raht is for point clouds", 2)
        img = image.read_image(source)
        compress_image(img, source, _output(source, ""))


def console():
    """The `nicjax-compress` console script."""
    cli.run(main)


if __name__ == "__main__":
    cli.run(main)

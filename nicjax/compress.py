"""python -m nicjax.compress [INPUT.ply] -o OUTPUT.nic [--width W --depth D --steps S --levels L --lr LR --seed N]

With no INPUT, compresses a procedurally generated coloured cloud (no data needed on a fresh machine).
Prints points, bytes, bits per point, the Y/U/V-PSNR of the decoded result and the encode time.
"""

from __future__ import annotations

import os

from absl import flags

from nicjax import cli, codec, fit, siren
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
_DEFAULTS = codec.CodecConfig()
flags.DEFINE_string("output", None, "Output .nic file (default: INPUT's name with .nic, in the current folder).",
                    short_name="o")
flags.DEFINE_integer("width", _DEFAULTS.model.width, "SIREN width (features per hidden layer).")
flags.DEFINE_integer("depth", _DEFAULTS.model.depth, "SIREN depth (number of sine layers).")
flags.DEFINE_integer("steps", _DEFAULTS.fit.steps, "Training steps (Adam).")
flags.DEFINE_integer("levels", _DEFAULTS.levels, "Quantization levels per layer, 4 .. 4096.")
flags.DEFINE_float("lr", _DEFAULTS.fit.learning_rate, "Adam learning rate (peak of the schedule).")
flags.DEFINE_enum("schedule", _DEFAULTS.fit.schedule, ["cosine", "constant"], "Learning-rate schedule.")
flags.DEFINE_integer("batch", _DEFAULTS.fit.batch_size, "Points per training step (random minibatch).")
flags.DEFINE_integer("seed", _DEFAULTS.fit.seed, "Seed of the init and the minibatches: same seed, same bytes.")
flags.DEFINE_enum("reference", _DEFAULTS.reference, list(codec.REFERENCES),
                  "Code the weights directly ('zeros') or as differences from the seeded init ('seeded').")
flags.DEFINE_bool("voxelize", False, "Round coordinates to the integer grid and merge duplicates first.")
flags.DEFINE_bool("progress", True, "Show a progress bar while training.")


def config_from_flags() -> codec.CodecConfig:
    return codec.CodecConfig(
        model=siren.SirenConfig(width=FLAGS.width, depth=FLAGS.depth),
        fit=fit.FitConfig(steps=FLAGS.steps, learning_rate=FLAGS.lr, schedule=FLAGS.schedule,
                          batch_size=FLAGS.batch, seed=FLAGS.seed),
        levels=FLAGS.levels, reference=FLAGS.reference, voxelize=FLAGS.voxelize)


def main(argv):
    if len(argv) > 2:
        cli.fail(f"expected one input file, got {len(argv) - 1}: {' '.join(argv[1:])}", 2)
    config = config_from_flags()
    if not 4 <= config.levels <= 4096:
        cli.fail(f"--levels must be in [4, 4096], got {config.levels}", 2)
    if config.model.width < 1 or config.model.depth < 1 or config.fit.steps < 0 or config.fit.batch_size < 1:
        cli.fail("--width, --depth and --batch must be positive and --steps non-negative", 2)
    if len(argv) == 2:
        source = argv[1]
        cloud = pointcloud.read_ply(source)
        output = FLAGS.output or os.path.splitext(os.path.basename(source))[0] + ".nic"
    else:
        source = "procedural cloud (no input given)"
        cloud = pointcloud.procedural_cloud()
        output = FLAGS.output or "procedural.nic"
    if os.path.isdir(output):
        cli.fail(f"{output}: is a directory", 2)
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


if __name__ == "__main__":
    cli.run(main)

"""Meta-learns a SIREN init over a folder of point clouds (the paper's simplified MAML) and saves it as an artefact.

    python -m experiments.meta_train                                   # paper defaults, MVUB stand-ins
    python -m experiments.meta_train --first_order --outer_steps=200   # FOMAML, shorter
    python -m experiments.meta_train --workdir=runs/meta --resume       # continue after a crash

Clouds are voxelized to the integer grid, normalised to [-1, 1]^3 like the codec does, and a fixed number of
points is sampled from each so they stack. One cloud per device per outer iteration (round robin); the last
clouds named by --heldout are never trained on and give the held-out post-adaptation loss shown in the
progress bar. Checkpoints go to --workdir every --checkpoint_every steps; --resume picks up the latest.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys

import jax
import numpy as np
from absl import flags

from experiments import common
from nicjax import cli, codec, config_flags, configs, inits, meta
from nicjax.representations import siren
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
_D = meta.MetaConfig()
flags.DEFINE_string("data", "../shared/data/pointclouds/MVUB_cwi_codec_decoded", "Folder of PLY clouds.")
# The architecture (--width, --depth, --omega0; unset: the codec's default network) and --seed, as everywhere
# (nicjax.config_flags). One network, so --width/--depth rather than the sweeps' --networks list.
CONFIG_FLAGS = ("width", "depth", "omega0", "seed")
config_flags.define(only=CONFIG_FLAGS)
common.define_progress()
flags.DEFINE_float("inner_lr", _D.inner_lr, "Inner SGD learning rate.")
flags.DEFINE_integer("inner_steps", _D.inner_steps, "Inner SGD steps.")
flags.DEFINE_float("outer_lr", _D.outer_lr, "Outer Adam learning rate.")
flags.DEFINE_integer("outer_steps", _D.outer_steps, "Outer iterations.")
flags.DEFINE_integer("batch", _D.batch_size, "Points per inner step / outer evaluation (meta-learning's own "
                     "default, not the codec's).")
flags.DEFINE_bool("first_order", False, "First-order MAML (no gradient through the inner steps).")
flags.DEFINE_integer("points_per_cloud", 65536, "Points sampled from each cloud.")
flags.DEFINE_list("heldout", ["sarah9"], "Clouds whose file name contains one of these are held out (never "
                  "trained on) and give the held-out loss; hold out a whole subject, not one density of it.")
flags.DEFINE_string("workdir", "runs/meta", "Checkpoints and the final init go here.")
flags.DEFINE_integer("checkpoint_every", 100, "Outer steps between checkpoints.")
flags.DEFINE_integer("eval_every", 50, "Outer steps between held-out evaluations.")
flags.DEFINE_bool("resume", True, "Resume from the checkpoint in --workdir if there is one.")
flags.DEFINE_string("output", None, "Init file to write (default: WORKDIR/<id>.init); its id is printed.")
flags.adopt_module_key_flags(config_flags)  # --help lists the config and shared flags too
flags.adopt_module_key_flags(common)


def load_clouds(folder: str, n_points: int, rng) -> tuple[list[str], np.ndarray, np.ndarray]:
    paths = sorted(glob.glob(os.path.join(folder, "*.ply")))
    if not paths:
        raise SystemExit(f"error: no .ply files in {folder}")
    names, coords, targets = [], [], []
    for path in paths:
        # voxelized and normalised as the codec does (`--voxelize`), YCbCr targets as it trains on
        signal = pointcloud.to_signal(pointcloud.voxelize(pointcloud.read_ply(path)), voxelized=True)
        c, t = meta.sample_points(signal.inputs, codec.training_targets(signal), n_points, rng)
        names.append(os.path.basename(path))
        coords.append(c)
        targets.append(t)
    return names, np.stack(coords), np.stack(targets)


def save_checkpoint(path: str, step: int, params, opt_state) -> None:
    leaves = jax.tree_util.tree_leaves((params, opt_state))
    arrays = {f"leaf_{i:04d}": np.asarray(x) for i, x in enumerate(leaves)}
    pointcloud.atomic_write(path, lambda f: np.savez(f, step=step, **arrays))


def load_checkpoint(path: str, params, opt_state):
    with np.load(path) as z:
        treedef = jax.tree_util.tree_structure((params, opt_state))
        leaves = [z[f"leaf_{i:04d}"] for i in range(treedef.num_leaves)]
        params, opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
        return int(z["step"]), params, opt_state


def main(argv):
    del argv
    from tqdm import tqdm

    codec_config = config_flags.codec_config(configs.CodecConfig())
    seed = codec_config.fit.seed
    config = meta.MetaConfig(inner_lr=FLAGS.inner_lr, inner_steps=FLAGS.inner_steps, outer_lr=FLAGS.outer_lr,
                             outer_steps=FLAGS.outer_steps, batch_size=FLAGS.batch, first_order=FLAGS.first_order,
                             seed=seed)
    model = siren.SIREN.with_io(codec_config.model, 3, 3)
    try:
        siren.check_config(model)  # what an init artefact and the header can store
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(f"network {model.width}x{model.depth}, ω0 {model.omega0:g}, seed {seed}")
    os.makedirs(FLAGS.workdir, exist_ok=True)
    rng = np.random.default_rng(seed)
    names, coords, targets = load_clouds(FLAGS.data, FLAGS.points_per_cloud, rng)
    held = np.array([any(h in n for h in FLAGS.heldout) for n in names])
    if held.all() or not held.any():
        raise SystemExit(f"error: --heldout={','.join(FLAGS.heldout)} must name some but not all of {len(names)} "
                         "clouds")
    order = np.argsort(held, kind="stable")  # training clouds first
    names, coords, targets = [names[i] for i in order], coords[order], targets[order]
    n_train = int((~held).sum())
    print(f"training clouds: {', '.join(names[:n_train])}\nheld out: {', '.join(names[n_train:])}")
    mesh = meta.data_mesh()
    per_step = mesh.devices.size  # one cloud per device per outer iteration
    params = siren.init_params(model, jax.random.key(seed))
    opt_state = meta.make_optimizer(config).init(params)
    ckpt = os.path.join(FLAGS.workdir, "checkpoint.npz")
    start = 0
    if FLAGS.resume and os.path.exists(ckpt):
        start, params, opt_state = load_checkpoint(ckpt, params, opt_state)
        print(f"resumed from {ckpt} at step {start}")
    params, opt_state = meta.replicate(mesh, params), meta.replicate(mesh, opt_state)
    held_c, held_t = coords[n_train:], targets[n_train:]
    held_keys = jax.random.split(jax.random.key(seed + 1), len(held_c))

    def heldout_psnr(p) -> float:
        loss = float(meta.heldout_loss(p, held_c, held_t, held_keys, model=model, config=config))
        return 10 * math.log10(1 / loss)

    base = jax.random.key(seed)
    first = heldout_psnr(params)
    log = open(os.path.join(FLAGS.workdir, "log.jsonl"), "a")
    bar = tqdm(range(start, config.outer_steps), initial=start, total=config.outer_steps, desc="meta",
               file=sys.stderr, dynamic_ncols=True, disable=not FLAGS.progress)
    bar.set_postfix(heldout=f"{first:.2f}dB")
    for step in bar:
        idx = meta.schedule(step, n_train, per_step)
        keys = jax.random.split(jax.random.fold_in(base, step), per_step)
        c, t, k = meta.shard_signals(mesh, coords[idx], targets[idx], keys)
        params, opt_state, loss = meta.meta_step(params, opt_state, c, t, k, model=model, config=config, mesh=mesh)
        done = step + 1
        if done % FLAGS.eval_every == 0 or done == config.outer_steps:
            psnr = heldout_psnr(params)
            bar.set_postfix(train=f"{10 * math.log10(1 / float(loss)):.2f}dB", heldout=f"{psnr:.2f}dB")
            log.write(json.dumps({"step": done, "train_loss": float(loss), "heldout_psnr": psnr}) + "\n")
            log.flush()
            if not FLAGS.progress:
                print(f"step {done}/{config.outer_steps}: train {10 * math.log10(1 / float(loss)):.2f} dB, held out "
                      f"{psnr:.2f} dB", flush=True)
        if done % FLAGS.checkpoint_every == 0 or done == config.outer_steps:
            save_checkpoint(ckpt, done, params, opt_state)
    init = inits.Init(model=model, params=jax.tree_util.tree_map(np.asarray, params))
    out = FLAGS.output or os.path.join(FLAGS.workdir, f"{init.id}.init")
    inits.save(init, out)
    where = "the random init" if start == 0 else f"step {start} (resumed)"
    print(f"held-out post-adaptation PSNR: {first:.2f} dB at {where} -> {heldout_psnr(params):.2f} dB at step "
          f"{config.outer_steps}")
    print(f"init {init.id} written to {out}")


if __name__ == "__main__":
    cli.run(main)

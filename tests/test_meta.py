import os
import subprocess
import sys

import jax
import numpy as np

from nicjax import meta
from nicjax.representations import siren

MODEL = siren.SirenConfig(width=16, depth=2)
CONFIG = meta.MetaConfig(inner_lr=0.01, inner_steps=5, outer_lr=1e-3, outer_steps=150, batch_size=256)


def signal_class(count, seed):
    """Colour fields sharing a structure (same frequencies) with random amplitudes and phases."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(-1, 1, (512, 3)).astype(np.float32)
    out_c, out_t = [], []
    for _ in range(count):
        a = rng.uniform(0.1, 0.3, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        t = a * np.sin(2.0 * coords[:, [0, 1, 2]] + ph) + 0.1 * np.cos(3 * coords[:, [1, 2, 0]])
        out_c.append(coords)
        out_t.append(t.astype(np.float32))
    return np.stack(out_c), np.stack(out_t)


def train(params, coords, targets, config, steps):
    tx = meta.make_optimizer(config)
    state = tx.init(params)
    base = jax.random.key(1)
    for step in range(steps):
        i = meta.schedule(step, len(coords), 1)
        keys = jax.random.split(jax.random.fold_in(base, step), 1)
        params, state, _ = meta.meta_step(params, state, coords[i], targets[i], keys, model=MODEL, config=config)
    return params


def test_meta_learned_init_adapts_better_than_random_init():
    coords, targets = signal_class(8, seed=0)
    held_c, held_t = signal_class(4, seed=1)
    init = siren.init_params(MODEL, jax.random.key(0))
    keys = jax.random.split(jax.random.key(2), 4)
    before = float(meta.heldout_loss(init, held_c, held_t, keys, model=MODEL, config=CONFIG))
    learned = train(init, coords, targets, CONFIG, CONFIG.outer_steps)
    after = float(meta.heldout_loss(learned, held_c, held_t, keys, model=MODEL, config=CONFIG))
    assert after < 0.7 * before, (before, after)


def test_first_order_variant_runs_and_differs_from_second_order():
    coords, targets = signal_class(2, seed=0)
    init = siren.init_params(MODEL, jax.random.key(0))
    fo = meta.MetaConfig(**{**CONFIG.__dict__, "first_order": True})
    a = train(init, coords, targets, CONFIG, 3)
    b = train(init, coords, targets, fo, 3)
    diff = max(float(np.abs(x - y).max()) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
    assert 0 < diff < 1e-1


MULTI_DEVICE = r"""
import jax, numpy as np
from nicjax import meta
from nicjax.representations import siren
assert jax.device_count() == 2, jax.devices()
model = siren.SirenConfig(width=16, depth=2)
config = meta.MetaConfig(inner_steps=3, batch_size=128, outer_lr=1e-3)
rng = np.random.default_rng(0)
coords = rng.uniform(-1, 1, (2, 300, 3)).astype(np.float32)
targets = rng.uniform(-.5, .5, (2, 300, 3)).astype(np.float32)
params = siren.init_params(model, jax.random.key(0))
state = meta.make_optimizer(config).init(params)
keys = jax.random.split(jax.random.key(1), 2)
grads = jax.jit(meta.meta_gradients, static_argnames=("model", "config", "mesh"))
single = grads(params, coords, targets, keys, model=model, config=config)
mesh = meta.data_mesh()
c, t, k = meta.shard_signals(mesh, coords, targets, keys)
assert len(c.sharding.device_set) == 2
sharded = grads(meta.replicate(mesh, params), c, t, k, model=model, config=config, mesh=mesh)
for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
# and the full step runs sharded, its result replicated on both devices
p2, _, _ = meta.meta_step(meta.replicate(mesh, params), meta.replicate(mesh, state), c, t, k, model=model,
                          config=config, mesh=mesh)
assert len(p2["layer_00"]["kernel"].sharding.device_set) == 2
print("OK")
"""


def test_multi_device_step_matches_single_device_step():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", MULTI_DEVICE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]

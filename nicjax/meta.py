"""Meta-learning a SIREN initialisation over a class of signals: the paper's simplified MAML (Sec. 2.4).

Each outer iteration takes one signal per device, adapts the init to it with K plain SGD steps on random
point minibatches (a `lax.scan`), evaluates the weighted MSE of the adapted network on a fresh minibatch of
the same signal, and updates the init with Adam on the gradient of that loss — through the K inner steps
(second order) or, with `first_order`, treating the inner gradients as constants (FOMAML).

Scale-out is JAX's own: the signals axis of a step is sharded over all local devices with `jax.sharding`,
the init is replicated, and the mean over signals of the meta-gradient becomes an all-reduce. The same code
runs on one CPU, a multi-GPU host or a TPU slice.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nicjax import siren
from nicjax.fit import weighted_mse


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    inner_lr: float = 0.01
    inner_steps: int = 10
    outer_lr: float = 1e-5
    outer_steps: int = 1000
    batch_size: int = 4096  # points per inner step and per outer evaluation
    first_order: bool = False
    loss_weights: tuple = (0.6, 0.2, 0.2)
    seed: int = 0


def _batch_loss(model, params, coords, targets, key, batch, weights):
    idx = jax.random.randint(key, (batch,), 0, coords.shape[0])
    return weighted_mse(siren.apply(model, params, coords[idx]), targets[idx], weights)[0]


def adapt(model, config: MetaConfig, params, coords, targets, key):
    """K SGD steps from `params` on one signal (the inner loop). Returns the adapted params."""
    weights = tuple(config.loss_weights)

    def step(p, k):
        grads = jax.grad(_batch_loss, argnums=1)(model, p, coords, targets, k, config.batch_size, weights)
        if config.first_order:
            grads = jax.lax.stop_gradient(grads)
        return jax.tree_util.tree_map(lambda a, g: a - config.inner_lr * g, p, grads), None

    params, _ = jax.lax.scan(step, params, jax.random.split(key, config.inner_steps))
    return params


def post_adaptation_loss(model, config: MetaConfig, params, coords, targets, key):
    """The meta-objective for one signal: the loss after adapting to it, on a fresh minibatch."""
    k_inner, k_outer = jax.random.split(key)
    adapted = adapt(model, config, params, coords, targets, k_inner)
    return _batch_loss(model, adapted, coords, targets, k_outer, config.batch_size, tuple(config.loss_weights))


def make_optimizer(config: MetaConfig):
    return optax.adam(config.outer_lr)


@functools.partial(jax.jit, static_argnames=("model", "config"))
def meta_step(params, opt_state, coords, targets, keys, *, model, config: MetaConfig):
    """One outer update from a stack of S signals: coords/targets (S, N, d), keys (S,). Mean over signals."""
    loss_and_grad = jax.value_and_grad(functools.partial(post_adaptation_loss, model, config))
    losses, grads = jax.vmap(loss_and_grad, in_axes=(None, 0, 0, 0))(params, coords, targets, keys)
    grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)
    updates, opt_state = make_optimizer(config).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, jnp.mean(losses)


@functools.partial(jax.jit, static_argnames=("model", "config"))
def heldout_loss(params, coords, targets, keys, *, model, config: MetaConfig):
    """Mean post-adaptation loss over a stack of held-out signals."""
    f = functools.partial(post_adaptation_loss, model, config)
    return jnp.mean(jax.vmap(f, in_axes=(None, 0, 0, 0))(params, coords, targets, keys))


def data_mesh(devices=None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def shard_signals(mesh: Mesh, *arrays):
    """Splits the leading (signals) axis over the mesh's devices; the init stays replicated."""
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    return tuple(jax.device_put(a, sharding) for a in arrays)


def replicate(mesh: Mesh, tree):
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def sample_points(coords: np.ndarray, targets: np.ndarray, n: int, rng: np.random.Generator):
    """A fixed number of points per signal, so that every signal of the class stacks into one array."""
    idx = rng.choice(len(coords), size=n, replace=len(coords) < n)
    return coords[idx], targets[idx]


def schedule(step: int, num_signals: int, per_step: int) -> np.ndarray:
    """Which training signals an outer step uses: a deterministic round robin, so a resumed run is identical."""
    return (step * per_step + np.arange(per_step)) % num_signals

"""Meta-learning a SIREN initialisation over a class of signals: the paper's simplified MAML (Sec. 2.4).

Each outer iteration takes one signal per device, adapts the init to it with K plain SGD steps on random
point minibatches (a `lax.scan`), evaluates the weighted MSE of the adapted network on a fresh minibatch of
the same signal, and updates the init with Adam on the gradient of that loss — through the K inner steps
(second order) or, with `first_order`, treating the inner gradients as constants (FOMAML).

Scale-out is JAX's own: the signals axis of a step is split over all local devices (`jax.sharding` mesh +
`shard_map`), the init is replicated, and the mean over signals of the meta-gradient is a `pmean` all-reduce. The same code
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

from nicjax.representations import siren
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


def _local_loss_and_grads(model, config, params, coords, targets, keys):
    """Mean loss and meta-gradient over this device's signals.

    A loop (lax.map), not vmap: vmapping the second-order inner loop turns its matmuls into batched dots that
    XLA:CPU runs ~2x slower (measured); with one signal per device the loop is a single call anyway.
    """
    loss_and_grad = jax.value_and_grad(functools.partial(post_adaptation_loss, model, config))
    if coords.shape[0] == 1:
        loss, grads = loss_and_grad(params, coords[0], targets[0], keys[0])
        return loss, grads
    losses, grads = jax.lax.map(lambda a: loss_and_grad(params, *a), (coords, targets, keys))
    return jnp.mean(losses), jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)


def meta_gradients(params, coords, targets, keys, *, model, config: MetaConfig, mesh: Mesh | None = None):
    """Mean post-adaptation loss and its gradient w.r.t. the init over a stack of S signals (S, N, d).

    With a `mesh`, the signals axis is split over its devices (shard_map): each device computes the
    meta-gradient of its own signals and a `pmean` averages them; the init stays replicated. S must then be a
    multiple of the number of devices.
    """
    if mesh is None:
        return _local_loss_and_grads(model, config, params, coords, targets, keys)

    # check_vma=False: with it on, JAX would psum the gradient w.r.t. the replicated init inside *every* inner
    # step (the transpose of its implicit broadcast), mixing the devices' signals during adaptation. We want
    # each device's inner loop to see only its own signal, and one pmean of the meta-gradients at the end.
    def per_device(p, c, t, k):
        return jax.lax.pmean(_local_loss_and_grads(model, config, p, c, t, k), "data")

    data = PartitionSpec("data")
    return jax.shard_map(per_device, mesh=mesh, in_specs=(PartitionSpec(), data, data, data),
                         out_specs=(PartitionSpec(), PartitionSpec()), check_vma=False)(params, coords, targets, keys)


@functools.partial(jax.jit, static_argnames=("model", "config", "mesh"))
def meta_step(params, opt_state, coords, targets, keys, *, model, config: MetaConfig, mesh: Mesh | None = None):
    """One outer Adam update of the init from a stack of signals (see `meta_gradients`)."""
    loss, grads = meta_gradients(params, coords, targets, keys, model=model, config=config, mesh=mesh)
    updates, opt_state = make_optimizer(config).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


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

"""Training any representation on a signal: (model, start params, inputs, targets, FitConfig) -> params.

`fit` runs Adam in jit-compiled `lax.scan` chunks; `quantization_aware` fine-tunes through the quantizer (QAT)
at the steps the coder will use. Both take a `representations.Model` (its `apply` is all they call), and the
reference the coder subtracts, resolved once by the caller. Pure apart from the progress bar.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nicjax import quantize as quant
from nicjax.configs import HARD_FRACTION, FitConfig
from nicjax.representations import Model


@functools.lru_cache(maxsize=32)  # the same object for the same config, so the jit cache hits (tx is static)
def make_optimizer(config: FitConfig) -> optax.GradientTransformation:
    if config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.learning_rate, max(config.steps, 1), alpha=config.final_lr_fraction)
    elif config.schedule == "constant":
        lr = config.learning_rate
    else:
        raise ValueError(f"unknown schedule {config.schedule!r}: use 'cosine' or 'constant'")
    return optax.adam(lr)


def weighted_mse(pred, target, weights):
    """Σ_c w_c · MSE_c: the paper's 0.6·MSE_Y + 0.2·MSE_U + 0.2·MSE_V for colours."""
    per_channel = jnp.mean(jnp.square(pred - target), axis=0)
    return jnp.sum(per_channel * jnp.asarray(weights, per_channel.dtype)), per_channel


def micro_batches(batch_size: int, model: Model) -> int:
    """How many cache-sized pieces a training minibatch is split into (1: none; see base.rows_per_piece)."""
    rows = model.rows_per_piece()
    if rows is None:
        return 1
    m = max(1, batch_size // rows)
    while batch_size % m:
        m -= 1
    return m


def qat_config(config: FitConfig) -> FitConfig:
    """The schedule of the quantization-aware fine-tuning that follows `config`'s training."""
    return dataclasses.replace(config, steps=config.qat_steps, learning_rate=config.qat_learning_rate,
                               schedule="cosine", qat_steps=0)


def delta_l1_penalty(params, reference):
    """mean |w − reference| over every weight and bias of the network."""
    total = sum(jnp.sum(jnp.abs(w - r)) for w, r in zip(jax.tree_util.tree_leaves(params),
                                                       jax.tree_util.tree_leaves(reference)))
    return total / sum(w.size for w in jax.tree_util.tree_leaves(params))


@functools.partial(jax.jit, static_argnames=("model", "tx", "batch_size", "weights", "delta_l1"))
def _train_chunk(params, opt_state, step_keys, coords, targets, quantizer, reference, *, model, tx, batch_size,
                 weights, delta_l1):
    n = coords.shape[0]

    def loss_fn(p, x, y):
        penalty = delta_l1 * delta_l1_penalty(p, reference) if delta_l1 else 0.0
        if quantizer is not None:  # (reference, steps): train the weights the decoder will see
            p = quant.fake_quantize(p, *quantizer)
        loss, per_channel = weighted_mse(model.apply(p, x), y, weights)
        return loss + penalty, per_channel

    pieces = micro_batches(batch_size, model)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(carry, key):
        p, s = carry
        idx = jax.random.randint(key, (batch_size,), 0, n)
        x, y = coords[idx], targets[idx]
        if pieces == 1:
            (_, per_channel), grads = grad_fn(p, x, y)
        else:  # the same minibatch in equal pieces: the mean of their mean gradients is the minibatch's
            def piece(acc, xy):
                (_, pc), g = grad_fn(p, *xy)
                return jax.tree_util.tree_map(jnp.add, acc, (g, pc)), None

            zero = (jax.tree_util.tree_map(jnp.zeros_like, p), jnp.zeros(y.shape[-1:], y.dtype))
            xy = (x.reshape(pieces, -1, x.shape[1]), y.reshape(pieces, -1, y.shape[1]))
            (grads, per_channel), _ = jax.lax.scan(piece, zero, xy)
            grads, per_channel = jax.tree_util.tree_map(lambda a: a / pieces, (grads, per_channel))
        updates, s = tx.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), per_channel

    (params, opt_state), per_channel = jax.lax.scan(step, (params, opt_state), step_keys)
    return params, opt_state, per_channel


def _progress(iterable_total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=iterable_total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True, leave=False)


def fit(model: Model, params, coords, targets, config: FitConfig, *, progress: bool = True,
        callback=None, quantizer=None, reference=None):
    """Trains `params` so that model.apply(params, coords) ≈ targets.

    coords: (N, in_dim) float32 in [-1, 1]; targets: (N, out_dim) float32 (values / peak − 0.5).
    Minibatches are drawn with replacement by a key derived from (seed, step index) only, so the result
    is the same however the steps are chunked. `callback(step, params)` runs after each chunk (for R-D
    snapshots at several iterations). `quantizer` = (reference, steps) pytrees trains through the quantizer
    (quantize.fake_quantize; see FitConfig.qat_steps). Returns (params, history) with the per-channel minibatch MSE
    per step. `config.qat_steps` is not acted on here: `quantization_aware` runs it once the steps are known.
    `reference` (the coder's reference weights) is required when config.delta_l1 > 0.
    """
    coords = jnp.asarray(coords, jnp.float32)
    targets = jnp.asarray(targets, jnp.float32)
    tx = make_optimizer(config)
    opt_state = tx.init(params)
    base = jax.random.key(config.seed)
    weights = tuple(float(w) for w in config.loss_weights)
    if len(weights) != model.out_dim:
        raise ValueError(f"{len(weights)} loss weights for {model.out_dim} outputs")
    if config.delta_l1 and reference is None:
        raise ValueError("delta_l1 > 0 needs the reference weights the coder subtracts")
    if not config.delta_l1:
        reference = None
    batch = min(config.batch_size, coords.shape[0]) if config.batch_size > 0 else coords.shape[0]
    history = []
    bar = _progress(config.steps, "qat" if quantizer is not None else "fit", progress)
    done = 0
    t0 = time.perf_counter()
    try:
        while done < config.steps:
            k = min(config.steps_per_call, config.steps - done)
            keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(done, done + k))
            params, opt_state, per_channel = _train_chunk(
                params, opt_state, keys, coords, targets, quantizer, reference, model=model, tx=tx, batch_size=batch,
                weights=weights, delta_l1=float(config.delta_l1))
            per_channel = np.asarray(per_channel)
            history.append(per_channel)
            done += k
            if bar is not None:
                last = per_channel[-1]
                loss = float(np.dot(last, weights))
                bar.update(k)
                bar.set_postfix(loss=f"{loss:.2e}", psnr0=f"{10 * math.log10(1.0 / max(last[0], 1e-12)):.2f}dB")
            if callback is not None:
                callback(done, params)
    finally:
        if bar is not None:
            bar.close()
    history = np.concatenate(history) if history else np.zeros((0, model.out_dim))
    return params, {"per_channel_mse": history, "seconds": time.perf_counter() - t0}


def quantization_aware(model: Model, params, reference, levels: int, coords, targets, config: FitConfig, *,
                       progress: bool = True, keep_better: bool = False):
    """Fine-tunes through the quantizer at `levels` for config.qat_steps (FitConfig.qat_steps).

    Returns (params, steps): quantize them with `steps`, the steps trained for. With qat_steps = 0 the params come
    back unchanged with the steps `quantize` would choose. `keep_better`: return the fine-tuned params only if the
    decoded network's loss is lower than without them. Straight-through fine-tuning wins several dB at 4-16 levels
    but can lose a little at 64+ (Adam's steps are then comparable to the quantization step; README), so the
    encoder measures both and codes the better.
    """
    steps = quant.tensor_steps(params, reference, levels)
    if config.qat_steps <= 0:
        return params, steps
    tuned, _ = fit(model, params, coords, targets, qat_config(config), progress=progress,
                   quantizer=(reference, steps), reference=reference)
    if keep_better:
        errors = [decoded_loss(model, p, reference, steps, coords, targets, config.loss_weights)
                  for p in (params, tuned)]
        if not errors[1] < errors[0]:
            return params, steps
    return tuned, steps


def decoded_loss(model: Model, params, reference, steps, coords, targets, loss_weights) -> float:
    """The training loss (weighted MSE over all points) of the network the decoder gets from (params, steps)."""
    return weighted_mse64(model.evaluate(quant.fake_quantize(params, reference, steps), coords), targets, loss_weights)


def weighted_mse64(out, targets, loss_weights) -> float:
    """Σ_c w_c · MSE_c in float64: weighted_mse's float32 mean over a million points can hide the difference
    between candidates."""
    per_channel = np.mean(np.square(np.asarray(out, np.float64) - np.asarray(targets, np.float64)), axis=0)
    return float(np.dot(per_channel, loss_weights))


# --- rate-distortion training of latent representations ------------------------------------------------------

def laplace_bits(y, log_scale):
    """-log2 P(y) of integers (or noisy reals) y under a zero-mean Laplace of scale exp(log_scale), integrated
    over [y − ½, y + ½]: the rate the latents would cost under a factorised model (training only; the file's bytes
    come from the adaptive coder). Written on −|y| so that only the lower tail is evaluated (no cancellation)."""
    b = jnp.exp(log_scale)
    a = -jnp.abs(y)

    def cdf(x):  # Laplace CDF, each branch clipped to its own side so neither overflows (jnp.where + grad)
        return jnp.where(x < 0, 0.5 * jnp.exp(jnp.minimum(x, 0.0) / b), 1.0 - 0.5 * jnp.exp(-jnp.maximum(x, 0.0) / b))

    p = cdf(a + 0.5) - cdf(a - 0.5)
    return -jnp.log2(jnp.maximum(p, 1e-9))


def latent_rate_bits(latents: dict, log_scales: dict):
    """Σ over latent tensors (channels × nodes) of their Laplace bits (one scale per tensor and channel)."""
    return sum(jnp.sum(laplace_bits(y, log_scales[name][:, None])) for name, y in latents.items())


def context_kinds_of(latents: dict, neighbours: dict) -> dict:
    """Per latent tensor, (C, count) int32: each node's coder context (`latent.context_kinds` − CONTEXT_KIND0,
    0..CONTEXTS−1) from its decoded same-level neighbours (`neighbours`: the representation's causal ones) in the
    rounded latents, the integers the file will hold."""
    from nicjax.representations import latent as lat

    out = {}
    for name, y in latents.items():
        q = jnp.round(jax.lax.stop_gradient(y)).astype(jnp.int32)
        out[name] = jax.vmap(lambda v: lat.context_kinds(v, neighbours[name], xp=jnp))(q) - lat.CONTEXT_KIND0
    return out


def context_rate_bits(coded: dict, kinds: dict, rate: dict):
    """Σ over latent tensors of their bits under the coder's contexts (`context_kinds_of`: a discrete index, not
    differentiated), each context of each tensor and channel with its own zero-mean Laplace of learned scale:
    approximately what the context-coded file pays (its coder's models adapt; these are their training stand-in).
    A learned mean per context (the sign of the neighbours' sum predicts the value's) made worse files: on a
    dense crop the latents settled on non-integer means and cost 7x the bits after rounding."""
    return sum(jnp.sum(laplace_bits(y, jnp.take_along_axis(rate["log_scales"][name], kinds[name], axis=1)))
               for name, y in coded.items())


def _rounded(latents: dict) -> dict:
    """Straight-through rounding: the decoder's integers forward, identity backward."""
    return {k: v + jax.lax.stop_gradient(jnp.round(v) - v) for k, v in latents.items()}


# Training's contexts are recomputed every this many steps (at step indices that are multiples of it, whatever the
# chunking), from the latents then: every step made a dense crop's training 51 s instead of 41 (37 s factorised),
# for no better file (README, session 11)
CONTEXT_REFRESH = 50


@functools.partial(jax.jit, static_argnames=("model", "tx", "weights", "latent_names", "batch_size", "phase"))
def _rd_chunk(state, opt_state, kinds, step_keys, step_ids, inputs, targets, lam, latent_gain, rate_gain, neighbours, *,
              model, tx, weights, latent_names, batch_size, phase):
    n = inputs.shape[0]

    def loss_fn(s, kinds, key, x, y):
        params = s["params"]
        noise_key, _ = jax.random.split(key)
        latents = {k: params[k] for k in latent_names}
        if phase == "round":
            coded = _rounded(latents)
        else:  # additive uniform noise: a differentiable stand-in for rounding
            ks = jax.random.split(noise_key, len(latent_names))
            coded = {k: v + jax.random.uniform(kk, v.shape, v.dtype, -0.5, 0.5)
                     for kk, (k, v) in zip(ks, latents.items())}
        if neighbours is None:
            bits = latent_rate_bits(coded, s["log_scales"])
        else:
            bits = context_rate_bits(coded, kinds, s["rate"])
        # "mixed": the rate sees the noise, the synthesis the rounded latents it will decode from
        read = _rounded(latents) if phase == "mixed" else coded
        distortion, per_channel = weighted_mse(model.apply({**params, **read}, x), y, weights)
        return distortion + lam * bits / n, (per_channel, bits)

    def step(carry, xs):
        s, o, kinds = carry
        key, i = xs
        if neighbours is not None:
            kinds = jax.lax.cond(i % CONTEXT_REFRESH == 0,
                                 lambda: context_kinds_of({k: s["params"][k] for k in latent_names}, neighbours),
                                 lambda: kinds)
        if batch_size < n:
            idx = jax.random.randint(jax.random.fold_in(key, 1), (batch_size,), 0, n)
            x, y = inputs[idx], targets[idx]
        else:
            x, y = inputs, targets
        (_, (per_channel, bits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(s, kinds, key, x, y)
        updates, o = tx.update(grads, o, s)
        # the latents' learning rate is latent_gain times the network's (Adam's step is the rate, whatever the
        # gradient's scale: scaling the update is scaling the rate)
        updates["params"] = {k: v * latent_gain if k in latent_names else v for k, v in updates["params"].items()}
        # the rate model's scales (every state entry but the params) learn at rate_gain times the network's rate
        updates = {k: v if k == "params" else jax.tree_util.tree_map(lambda u: u * rate_gain, v)
                   for k, v in updates.items()}
        return (optax.apply_updates(s, updates), o, kinds), (per_channel, bits)

    (state, opt_state, kinds), (per_channel, bits) = jax.lax.scan(step, (state, opt_state, kinds),
                                                                  (step_keys, step_ids))
    return state, opt_state, kinds, per_channel, bits


LATENT_NOISES = ("noise", "mixed", "best")
RATE_MODELS = ("factorised", "context")


def rd_cost(model: Model, params, inputs, targets, loss_weights, lam: float) -> float:
    """D + λ·R of params whose latents are integers: D the weighted MSE of the network's outputs (float64), R the
    latents' real bits per point from the entropy coder (the network's weights, alike in size, are left out)."""
    from nicjax import entropy

    out = model.evaluate(params, inputs)
    latents = [np.asarray(params[t.name]).astype(np.int64).ravel() for t in model.tensors() if t.role == "latent"]
    bits = 8 * len(entropy.encode_ints(latents, [2] * len(latents)))
    return weighted_mse64(out, targets, loss_weights) + lam * bits / len(out)


def fit_latents(model: Model, params, inputs, targets, config: FitConfig, *, progress: bool = True, callback=None,
                neighbours=None):
    """fit_rate_distortion at config.rate_lambda with config.latent_noise; "best" trains with "noise" and with
    "mixed" and returns the one of lower rd_cost (the callback then sees only that one, once, at the end)."""
    if config.latent_noise not in LATENT_NOISES:
        raise ValueError(f"unknown latent_noise {config.latent_noise!r}: use one of {', '.join(LATENT_NOISES)}")
    hard = HARD_FRACTION if config.hard_fraction is None else config.hard_fraction  # None: a caller without the rule
    if config.latent_noise != "best":
        return fit_rate_distortion(model, params, inputs, targets, config, config.rate_lambda,
                                   hard_fraction=hard, progress=progress, callback=callback,
                                   neighbours=neighbours)
    best, costs = None, {}
    for mode in ("noise", "mixed"):
        trained, history = fit_rate_distortion(model, params, inputs, targets,
                                               dataclasses.replace(config, latent_noise=mode), config.rate_lambda,
                                               hard_fraction=hard, progress=progress,
                                               neighbours=neighbours)
        costs[mode] = rd_cost(model, trained, inputs, targets, config.loss_weights, config.rate_lambda)
        if best is None or costs[mode] < costs[best[1]["latent_noise"]]:
            best = (trained, dict(history, latent_noise=mode))
    if callback is not None:
        callback(config.steps, best[0])
    return best[0], dict(best[1], rd_costs=costs)


def fit_rate_distortion(model: Model, params, inputs, targets, config: FitConfig, lam: float, *,
                        hard_fraction: float = HARD_FRACTION, progress: bool = True, callback=None, neighbours=None):
    """Trains a representation with latents (tensors of role "latent", coded as integers) for D + λ·R: D the
    weighted MSE, R the latents' bits per point under a learned Laplace, one scale per tensor and channel
    (config.rate_model "factorised", or no `neighbours`) or per tensor, channel and coder context ("context":
    `neighbours`, per latent tensor its nodes' causal neighbours, `latent.causal_neighbours`). The first
    (1 − hard_fraction) of the steps add uniform noise to the latents, the rest round them (straight-through);
    Adam with config's schedule over all steps, on minibatches of config.batch_size points (all points when it is 0
    or ≥ N). Returns (params, history): the latents rounded, as the coder takes them (and so are the snapshots
    `callback(step, params)` sees)."""
    inputs = jnp.asarray(inputs, jnp.float32)
    targets = jnp.asarray(targets, jnp.float32)
    latent_names = tuple(t.name for t in model.tensors() if t.role == "latent")
    if config.rate_model not in RATE_MODELS:
        raise ValueError(f"unknown rate_model {config.rate_model!r}: use one of {', '.join(RATE_MODELS)}")
    if config.rate_model == "context" and neighbours is not None:
        from nicjax.representations import latent as lat

        neighbours = {k: jnp.asarray(neighbours[k], jnp.int32) for k in latent_names}
        kinds = {k: jnp.zeros(params[k].shape, jnp.int32) for k in latent_names}  # set at step 0
        shape = lambda k: (params[k].shape[0], lat.CONTEXTS)  # noqa: E731
        state = {"params": params, "rate": {"log_scales": {k: jnp.zeros(shape(k), jnp.float32) for k in latent_names}}}
    else:
        neighbours, kinds = None, None
        state = {"params": params,
                 "log_scales": {k: jnp.zeros((params[k].shape[0],), jnp.float32) for k in latent_names}}
    tx = make_optimizer(config)
    opt_state = tx.init(state)
    weights = tuple(float(w) for w in config.loss_weights)
    n = inputs.shape[0]
    batch = n if config.batch_size <= 0 else min(config.batch_size, n)
    base = jax.random.key(config.seed)
    switch = int(round(config.steps * (1.0 - hard_fraction)))
    gain = (config.latent_learning_rate or config.learning_rate) / config.learning_rate
    rate_gain = (config.rate_model_learning_rate or config.learning_rate) / config.learning_rate
    bar = _progress(config.steps, "fit (D+λR)", progress)
    history, done, t0 = [], 0, time.perf_counter()
    try:
        while done < config.steps:
            hard = done >= switch
            phase = "round" if hard else config.latent_noise
            k = min(config.steps_per_call, config.steps - done, (switch - done) if not hard else config.steps)
            keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(done, done + k))
            state, opt_state, kinds, per_channel, bits = _rd_chunk(
                state, opt_state, kinds, keys, jnp.arange(done, done + k, dtype=jnp.int32), inputs, targets,
                jnp.float32(lam), jnp.float32(gain), jnp.float32(rate_gain), neighbours, model=model, tx=tx,
                weights=weights, latent_names=latent_names, batch_size=batch, phase=phase)
            per_channel, bits = np.asarray(per_channel), np.asarray(bits)
            history.append(np.concatenate([per_channel, bits[:, None] / n], axis=1))
            done += k
            if bar is not None:
                bar.update(k)
                bar.set_postfix(psnr0=f"{10 * math.log10(1.0 / max(per_channel[-1][0], 1e-12)):.2f}dB",
                                bpp=f"{bits[-1] / n:.3f}", phase=phase)
            if callback is not None:  # a snapshot as the coder takes it: the latents rounded, as returned below
                callback(done, {k: jnp.round(v) if k in latent_names else v for k, v in state["params"].items()})
    finally:
        if bar is not None:
            bar.close()
    params = dict(state["params"])
    for name in latent_names:
        params[name] = jnp.round(params[name])
    history = np.concatenate(history) if history else np.zeros((0, model.out_dim + 1))
    return params, {"per_channel_mse_and_bpp": history, "seconds": time.perf_counter() - t0,
                    "rate_model": state.get("rate", state.get("log_scales"))}

"""Per-layer uniform scalar quantization of (params − reference), and its inverse.

Each parameter tensor (a layer's kernel, a layer's bias) gets its own step from its dynamic range:
step = (max d − min d) / (levels − 1), d = w − reference, rounded up to what the header stores. The quantizer
is mid-tread (q = round(d / step)), so a zero difference stays exactly zero (what differential coding from a good
init produces most) and the error is at most step / 2. q spans `levels` values (one more at most, when the range
straddles zero unevenly).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nicjax import container
from nicjax.container import CodedTensor, TensorSpec, storable_step

MIN_LOG2_LEVELS, MAX_LOG2_LEVELS = 2, 12
# Latents (tensors of role "latent") are coded as integers whatever the levels: training rounds them (fit's
# rate-distortion phases), and the network that reads them sets their scale.
LATENT_STEP = np.float32(container.LATENT_STEP)


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def flatten(params) -> list[tuple[str, np.ndarray]]:
    """(name, array) per leaf, in the pytree's deterministic (sorted-key) order."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return [(_path_name(p), np.asarray(x)) for p, x in leaves]


def check_levels(levels: int) -> int:
    levels = int(levels)
    if levels < (1 << MIN_LOG2_LEVELS) or levels > (1 << MAX_LOG2_LEVELS):
        raise ValueError(f"levels must be in [{1 << MIN_LOG2_LEVELS}, {1 << MAX_LOG2_LEVELS}], got {levels}")
    return levels


def layer_step(diff: np.ndarray, levels: int) -> np.float32:
    lo, hi = float(diff.min()), float(diff.max())
    if hi > lo:
        step = np.float32((hi - lo) / (levels - 1))
    else:  # a constant tensor: one level represents it exactly
        step = np.float32(abs(lo) if lo != 0 else 1.0)
    return storable_step(step if step > 0 else np.finfo(np.float32).tiny)


def _diffs(params, reference):
    for (name, w), (ref_name, r) in zip(flatten(params), flatten(reference)):
        if name != ref_name or w.shape != r.shape:
            raise ValueError(f"reference does not match the network at {name} ({ref_name}, {r.shape} vs {w.shape})")
        yield name, w.shape, w.astype(np.float64) - r.astype(np.float64)


def tensor_steps(params, reference, levels: int):
    """The per-tensor steps `quantize` would choose, as a pytree like `params` (float32 scalars)."""
    levels = check_levels(levels)
    steps = [layer_step(diff, levels) for _, _, diff in _diffs(params, reference)]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), steps)


def fake_quantize(params, reference, steps):
    """reference + step·round((w − reference)/step) in the forward pass, identity in the backward pass (the
    straight-through estimator): training through it fits the weights the decoder will reconstruct."""
    def one(w, r, s):
        return w + jax.lax.stop_gradient(r + s * jnp.round((w - r) / s) - w)

    return jax.tree_util.tree_map(one, params, reference, steps)


def quantize(params, reference, levels: int, steps=None, *, specs: list[TensorSpec] | None = None
             ) -> list[CodedTensor]:
    """Quantizes params − reference per tensor. `reference` has the same structure (zeros for direct coding);
    `specs` (the representation's `tensors`: names in pytree order and roles, which pick the entropy contexts) must
    match the pytree; None: specs from the pytree itself, every tensor with the role "kernel".

    `steps` (a pytree like params, from `tensor_steps`) fixes the steps instead of taking them from the ranges:
    after quantization-aware fine-tuning, the steps the network was trained for. Weights that moved beyond the
    original range then get symbols beyond the `levels` span; the coder takes any integer, the decoder reads the
    steps from the header, so nothing else changes.
    """
    levels = check_levels(levels)
    fixed = None if steps is None else [storable_step(s) for _, s in flatten(steps)]
    out = []
    diffs = list(_diffs(params, reference))
    if specs is None:
        specs = [TensorSpec(name, tuple(shape), "kernel") for name, shape, _ in diffs]
    if [(name, tuple(shape)) for name, shape, _ in diffs] != [(s.name, tuple(s.shape)) for s in specs]:
        raise ValueError("the parameters do not match the representation's tensors")
    for i, ((_, _, diff), spec) in enumerate(zip(diffs, specs)):
        if spec.role == "latent":
            step = LATENT_STEP
        else:
            step = layer_step(diff, levels) if fixed is None else fixed[i]
        q = np.rint(diff / np.float64(step)).astype(np.int64).ravel()
        out.append(CodedTensor(spec=spec, step=step, symbols=q))
    return out


def dequantize(quantized: list[CodedTensor], reference):
    """reference + q·step, in float32, with the reference's pytree structure."""
    ref_leaves, treedef = jax.tree_util.tree_flatten(reference)
    if len(ref_leaves) != len(quantized):
        raise ValueError(f"{len(quantized)} quantized tensors for a reference with {len(ref_leaves)}")
    leaves = []
    for qt, r in zip(quantized, ref_leaves):
        r = np.asarray(r, np.float32)
        leaves.append(r + (qt.symbols.reshape(qt.shape).astype(np.float32) * qt.step).astype(np.float32))
    return jax.tree_util.tree_unflatten(treedef, leaves)

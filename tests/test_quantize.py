import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nicjax import quantize
from nicjax.representations import siren



def test_error_at_most_half_a_step_and_levels_respected():
    config = siren.SirenConfig(width=24, depth=3)
    params = siren.init_params(config, jax.random.key(0))
    reference = siren.init_params(config, jax.random.key(1))
    for levels in (4, 16, 256, 4096):
        q = quantize.quantize(params, reference, levels)
        back = quantize.dequantize(q, reference)
        for qt, (_, w), (_, r) in zip(q, quantize.flatten(params), quantize.flatten(back)):
            err = np.abs(w.astype(np.float64) - r.astype(np.float64)).max()
            assert err <= qt.step / 2 * (1 + 1e-5) + 1e-7, (qt.name, levels)
            assert qt.symbols.max() - qt.symbols.min() + 1 <= levels + 1


def test_zero_reference_and_constant_tensors_are_exact():
    params = {"a": np.zeros((3, 4), np.float32), "b": np.full((5,), 0.25, np.float32)}
    zeros = {"a": np.zeros((3, 4), np.float32), "b": np.zeros((5,), np.float32)}
    back = quantize.dequantize(quantize.quantize(params, zeros, 16), zeros)
    np.testing.assert_array_equal(back["a"], params["a"])
    np.testing.assert_array_equal(back["b"], params["b"])


def test_finer_quantization_is_more_accurate():
    params = siren.init_params(siren.SirenConfig(width=16, depth=2), jax.random.key(0))
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    errors = []
    for levels in (4, 64, 1024):
        back = quantize.dequantize(quantize.quantize(params, zeros, levels), zeros)
        errors.append(max(np.abs(np.asarray(a) - np.asarray(b)).max()
                          for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(back))))
    assert errors[0] > errors[1] > errors[2]


def test_bad_levels_and_mismatched_reference():
    params = siren.init_params(siren.SirenConfig(width=8, depth=1), jax.random.key(0))
    with pytest.raises(ValueError):
        quantize.quantize(params, params, 3)
    with pytest.raises(ValueError):
        quantize.quantize(params, params, 8192)
    other = siren.init_params(siren.SirenConfig(width=9, depth=1), jax.random.key(0))
    with pytest.raises(ValueError):
        quantize.quantize(params, other, 16)


def test_fixed_steps_and_fake_quantize_agree_with_the_coder():
    rng = np.random.default_rng(3)
    params = {"a": {"kernel": rng.normal(size=(5, 7)).astype(np.float32), "bias": rng.normal(size=7).astype(np.float32)}}
    reference = jax.tree_util.tree_map(lambda w: (0.3 * rng.normal(size=w.shape)).astype(np.float32), params)
    steps = quantize.tensor_steps(params, reference, 8)
    chosen = quantize.quantize(params, reference, 8)
    assert [q.step for q in chosen] == [s for _, s in quantize.flatten(steps)]
    # coding with given steps uses them, even where the range would now give others
    doubled = jax.tree_util.tree_map(lambda s: np.float32(2 * s), steps)
    assert [q.step for q in quantize.quantize(params, reference, 8, doubled)] == [s for _, s in quantize.flatten(doubled)]
    # the straight-through forward pass is what the decoder reconstructs; its gradient is the identity
    fake = quantize.fake_quantize(params, reference, steps)
    decoded = quantize.dequantize(chosen, reference)
    for (_, f), (_, d) in zip(quantize.flatten(fake), quantize.flatten(decoded)):
        np.testing.assert_allclose(f, d, atol=1e-6)
    grad = jax.grad(lambda p: sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(
        quantize.fake_quantize(p, reference, steps))))(params)
    for _, g in quantize.flatten(grad):
        np.testing.assert_array_equal(g, np.ones_like(g))

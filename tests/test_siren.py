import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft

from nicjax.representations import siren


def test_fast_sin_matches_sin_and_its_derivative_is_cos():
    x = np.linspace(-300.0, 300.0, 200001, dtype=np.float32)
    exact = np.sin(x.astype(np.float64))
    assert np.abs(np.asarray(jax.jit(siren.fast_sin)(x)) - exact).max() < 5e-7
    grad = jax.jit(jax.vmap(jax.grad(siren.fast_sin)))(x)
    assert np.abs(np.asarray(grad) - np.cos(x.astype(np.float64))).max() < 5e-7


def dct_siren_params(coefficients):
    """Proposition 2.1: sine layer k computes cos(πk(2n+1)/2N); the output layer weights are the DCT scalings."""
    n = len(coefficients)
    omega0 = 30.0
    k = np.arange(n)
    # sin(ω0 (w_k t + b_k)) with t = (2n+1)/N − 1 equals cos(πk(t+1)/2) = sin(πk t/2 + πk/2 + π/2)
    w = (np.pi * k / 2 / omega0)[None, :]
    b = (np.pi * k / 2 + np.pi / 2) / omega0
    alpha = np.where(k == 0, np.sqrt(1.0 / n), np.sqrt(2.0 / n))
    return {
        "layer_00": {"kernel": jnp.asarray(w, jnp.float32), "bias": jnp.asarray(b, jnp.float32)},
        "layer_01": {"kernel": jnp.asarray((alpha * coefficients)[:, None], jnp.float32),
                     "bias": jnp.zeros((1,), jnp.float32)},
    }


def test_proposition_2_1_two_layer_siren_is_the_inverse_dct():
    for n in (8, 16, 32):
        coefficients = np.random.default_rng(n).normal(size=n)
        config = siren.SirenConfig(in_dim=1, out_dim=1, width=n, depth=1)
        t = ((2 * np.arange(n) + 1) / n - 1)[:, None].astype(np.float32)
        out = np.asarray(siren.apply(config, dct_siren_params(coefficients), t))[:, 0]
        expected = scipy.fft.idct(coefficients, norm="ortho")
        # float32 precision: a few ulps per term of an N-term sum
        assert np.abs(out - expected).max() < 1e-5 * np.abs(coefficients).sum()
        # and a perturbed output layer is not the inverse DCT (the check can fail)
        assert np.abs(np.asarray(siren.apply(config, dct_siren_params(coefficients + 0.1), t))[:, 0]
                      - expected).max() > 1e-2


def test_architecture_and_sitzmann_init():
    config = siren.SirenConfig(width=32, depth=3)
    params = siren.init_params(config, jax.random.key(0))
    assert sorted(params) == ["layer_00", "layer_01", "layer_02", "layer_03"]
    assert params["layer_00"]["kernel"].shape == (3, 32)
    assert params["layer_03"]["kernel"].shape == (32, 3)
    assert sum(x.size for x in jax.tree_util.tree_leaves(params)) == config.num_params()
    assert np.abs(params["layer_00"]["kernel"]).max() <= 1 / 3
    hidden = np.abs(params["layer_01"]["kernel"]).max()
    assert hidden <= np.sqrt(6 / 32) / 30 and hidden > 0.5 * np.sqrt(6 / 32) / 30


def test_chunked_apply_equals_direct_apply():
    config = siren.SirenConfig(width=16, depth=2)
    params = siren.init_params(config, jax.random.key(1))
    x = np.random.default_rng(0).uniform(-1, 1, (1001, 3)).astype(np.float32)
    direct = np.asarray(siren.apply(config, params, x))
    for chunk in (1, 64, 1000, 5000):
        np.testing.assert_allclose(siren.model(config).evaluate(params, x, chunk=chunk), direct, atol=1e-6)

"""A second representation, for the tests only: a polynomial of degree ≤ `degree` in the coordinates.

It proves the protocol: this module plus the one `register` line in test_representations.py is all it takes to
code signals with it through the whole codec (container, quantization, entropy coding, decoding).
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp

from nicjax import container
from nicjax.errors import NicError


@dataclasses.dataclass(frozen=True)
class PolynomialConfig:
    in_dim: int = 3
    out_dim: int = 3
    degree: int = 2


def _monomials(config: PolynomialConfig) -> list[tuple[int, ...]]:
    """Exponent tuples of every monomial of degree 1..degree (the constant is the bias)."""
    return [e for e in itertools.product(range(config.degree + 1), repeat=config.in_dim) if 0 < sum(e) <= config.degree]


class Polynomial:
    id = 254
    name = "polynomial"
    default_config = PolynomialConfig()

    def with_io(self, config, in_dim, out_dim):
        return dataclasses.replace(config, in_dim=in_dim, out_dim=out_dim)

    def config_bytes(self, config):
        if not (1 <= config.in_dim <= 15 and 1 <= config.out_dim <= 15 and 1 <= config.degree <= 8):
            raise ValueError(f"cannot store {config}")
        return bytes([config.in_dim << 4 | config.out_dim, config.degree])

    def config_from_bytes(self, read, signal):
        dims, degree = read.take(2)
        if not 1 <= degree <= 8:
            raise NicError("file is corrupted (polynomial degree)")
        return PolynomialConfig(dims >> 4, dims & 15, degree)

    def tensors(self, config):
        n = len(_monomials(config))
        return [container.TensorSpec("bias", (config.out_dim,), "bias"),
                container.TensorSpec("kernel", (n, config.out_dim), "kernel")]

    def init(self, config, key):
        n = len(_monomials(config))
        return {"bias": jnp.zeros((config.out_dim,), jnp.float32),
                "kernel": 0.01 * jax.random.normal(key, (n, config.out_dim), jnp.float32)}

    def apply(self, config, params, inputs):
        features = jnp.stack([jnp.prod(inputs ** jnp.asarray(e, inputs.dtype), axis=-1) for e in _monomials(config)],
                             axis=-1)
        return features @ params["kernel"] + params["bias"]

    def rows_per_piece(self, config):
        return None


POLYNOMIAL = Polynomial()

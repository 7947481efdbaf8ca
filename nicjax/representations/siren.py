"""SIREN (Sitzmann et al., 2020): the paper's representation. A pure Flax module, its header bytes and roles."""

from __future__ import annotations

import dataclasses
import math
import struct

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nicjax import container
from nicjax.representations import base


@dataclasses.dataclass(frozen=True)
class SirenConfig:
    """Architecture. `depth` counts the sine (hidden) layers; a final linear layer follows them.

    The paper's "2-layer SIREN" of Proposition 2.1 is depth=1.
    """

    in_dim: int = 3
    out_dim: int = 3
    width: int = 64
    depth: int = 5
    omega0: float = 30.0  # frequency of the first layer
    omega: float = 30.0  # frequency of the other sine layers

    def num_params(self) -> int:
        dims = [self.in_dim] + [self.width] * self.depth + [self.out_dim]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))

    def flops_per_point(self) -> int:
        """Multiply-adds x 2 of one forward pass (sines not counted)."""
        dims = [self.in_dim] + [self.width] * self.depth + [self.out_dim]
        return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


# --- a fast sine --------------------------------------------------------------------------------------------
# XLA's CPU sin costs ~7-10 ns per element here, more than all of a 64-wide SIREN's matmuls together (measured:
# ~60% of a training step). Cody-Waite reduction by π and odd/even Taylor polynomials of degree 11/12 on
# [-π/2, π/2] fuse into the surrounding elementwise loop at <1 ns per element with a max abs error of ~2e-7
# (float32 resolution). The JVP reuses the same reduction for the cosine, so the backward pass is cheap too.
_INV_PI = 1.0 / math.pi
_PI_HI = float(np.float32(math.pi))
_PI_LO = math.pi - _PI_HI
_SIN_COEFFS = [(-1) ** (k // 2) / math.factorial(k) for k in (3, 5, 7, 9, 11)]
_COS_COEFFS = [(-1) ** (k // 2) / math.factorial(k) for k in (2, 4, 6, 8, 10, 12)]


def _reduce(x):
    k = jnp.round(x * _INV_PI)
    r = (x - k * _PI_HI) - k * _PI_LO  # r in [-π/2, π/2], sin(x) = (-1)^k sin(r)
    sign = 1.0 - 2.0 * (k - 2.0 * jnp.floor(0.5 * k))
    return r, sign


def _horner(r2, coeffs):
    p = coeffs[-1]
    for c in coeffs[-2::-1]:
        p = c + r2 * p
    return p


@jax.custom_jvp
def fast_sin(x):
    r, sign = _reduce(x)
    return sign * (r + r * (r * r) * _horner(r * r, _SIN_COEFFS))


@fast_sin.defjvp
def _fast_sin_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    r, sign = _reduce(x)
    r2 = r * r
    return sign * (r + r * r2 * _horner(r2, _SIN_COEFFS)), sign * (1.0 + r2 * _horner(r2, _COS_COEFFS)) * t


def _uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def layer_name(i: int) -> str:
    # Zero-padded so that the pytree's (sorted) key order is the layer order.
    return f"layer_{i:02d}"


class Siren(nn.Module):
    config: SirenConfig

    @nn.compact
    def __call__(self, x):
        c = self.config
        fan_in = c.in_dim
        for i in range(c.depth):
            # Sitzmann initialisation: the first layer spans [-1/fan_in, 1/fan_in] so that omega0 * Wx covers
            # a few periods; later layers are scaled by 1/omega so activations stay arcsine-distributed.
            bound = 1.0 / fan_in if i == 0 else np.sqrt(6.0 / fan_in) / c.omega
            x = nn.Dense(
                c.width,
                kernel_init=_uniform(bound),
                bias_init=_uniform(1.0 / np.sqrt(fan_in)),
                name=layer_name(i),
            )(x)
            x = fast_sin((c.omega0 if i == 0 else c.omega) * x)
            fan_in = c.width
        bound = np.sqrt(6.0 / fan_in) / c.omega
        return nn.Dense(
            c.out_dim, kernel_init=_uniform(bound), bias_init=_uniform(1.0 / np.sqrt(fan_in)), name=layer_name(c.depth)
        )(x)


def init_params(config: SirenConfig, key):
    """Sitzmann-initialised parameters (a plain pytree)."""
    return Siren(config).init(key, jnp.zeros((1, config.in_dim), jnp.float32))["params"]


def apply(config: SirenConfig, params, coords):
    return Siren(config).apply({"params": params}, coords)


_OMEGAS = struct.Struct("<ee")
MAX_WIDTH = 4096  # the widest network the header may ask for (container.MAX_PARAMS bounds the whole network)
# What each kind of signal feeds the network and reads from it (container.SIGNAL_*: (in_dim, allowed out_dims)).
SIGNAL_IO = {container.SIGNAL_POINTCLOUD: (3, (3,)), container.SIGNAL_IMAGE: (2, (1, 3))}


def check_config(config: SirenConfig, signal: container.SignalInfo | None = None) -> None:
    """ValueError (one line) unless the header can store this SIREN exactly (and, given the signal, unless an
    encoder writes it for that signal: SIGNAL_IO's inputs and outputs, three outputs for YCbCr, one for 16-bit
    images, which are grayscale)."""
    for name, value in (("omega0", config.omega0), ("omega", config.omega)):
        if not np.isfinite(value) or float(np.float16(value)) != value or not value > 0:
            raise ValueError(f"{name} = {value:g} cannot be stored exactly (the header holds a positive float16): "
                             "use a value such as 30, 60 or 37.5")
    if not (1 <= config.in_dim <= 15 and 1 <= config.out_dim <= 15):
        raise ValueError(f"a network with {config.in_dim} inputs and {config.out_dim} outputs cannot be stored "
                         "(1 to 15 each)")
    if not (1 <= config.depth <= 99 and 1 <= config.width <= MAX_WIDTH):
        raise ValueError(f"a {config.width}x{config.depth} network cannot be stored (width 1 to {MAX_WIDTH}, "
                         "depth 1 to 99)")
    if config.num_params() > container.MAX_PARAMS:
        raise ValueError(f"a {config.width}x{config.depth} network has {config.num_params()} parameters, over the "
                         f"{container.MAX_PARAMS} that nicjax codes")
    if signal is None:
        return
    if signal.kind not in SIGNAL_IO:
        raise ValueError(f"signal kind {signal.kind} is not known")
    in_dim, out_dims = SIGNAL_IO[signal.kind]
    if config.in_dim != in_dim or config.out_dim not in out_dims or \
            (signal.colour_space == container.COLOUR_YCBCR709 and config.out_dim != 3) or \
            (signal.kind == container.SIGNAL_IMAGE and signal.colour_bits == 16 and config.out_dim != 1):
        raise ValueError(f"a network with {config.in_dim} inputs and {config.out_dim} outputs for this signal")


class SirenRepresentation:
    """The paper's representation: every value the decoder needs is in the network's weights."""

    id = 0
    name = "siren"
    default_config = SirenConfig()

    def with_io(self, config: SirenConfig, in_dim: int, out_dim: int) -> SirenConfig:
        return dataclasses.replace(config, in_dim=in_dim, out_dim=out_dim)

    def config_bytes(self, config: SirenConfig) -> bytes:
        check_config(config)
        return (bytes([config.in_dim << 4 | config.out_dim]) + container.varint(config.width)
                + bytes([config.depth]) + _OMEGAS.pack(config.omega0, config.omega))

    def config_from_bytes(self, read: container.Reader, signal: container.SignalInfo | None) -> SirenConfig:
        dims = read.byte()
        width = read.varint(max_bits=14)
        depth = read.byte()
        omega0, omega = _OMEGAS.unpack(read.take(_OMEGAS.size))
        config = SirenConfig(in_dim=dims >> 4, out_dim=dims & 15, width=width, depth=depth, omega0=float(omega0),
                             omega=float(omega))
        return base.checked(check_config, config, signal)

    def tensors(self, config: SirenConfig) -> list[container.TensorSpec]:
        return base.dense_tensors([config.in_dim] + [config.width] * config.depth + [config.out_dim], layer_name)

    def init(self, config: SirenConfig, key):
        return init_params(config, key)

    def apply(self, config: SirenConfig, params, inputs):
        return apply(config, params, inputs)

    def rows_per_piece(self, config: SirenConfig) -> int | None:
        return base.rows_per_piece(config.width)


SIREN = SirenRepresentation()


def model(config: SirenConfig = SirenConfig()) -> base.Model:
    return base.Model(SIREN, config)

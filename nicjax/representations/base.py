"""The protocol every representation implements, and `Model`: a representation with its configuration.

A representation is what the file codes in place of the signal: a parameter pytree and a function
apply(params, inputs) -> outputs. To add one, write a module with a class implementing `Representation` and add
one line to the registry in `nicjax/representations/__init__.py`.

    id, name                    the header byte and the CLI name
    default_config              a configuration (a frozen, hashable dataclass)
    with_io(config, in, out)    the configuration for a signal with `in` inputs and `out` outputs
    config_bytes(config)        its bytes in the header; config_from_bytes(reader, signal) parses them back and
                                refuses (NicError) anything its encoder cannot write for that signal
                                (signal None: parse only)
    tensors(config)             the coded tensors (container.TensorSpec: pytree path, shape, role), in pytree order;
                                the role (kernel, bias, latent) picks the entropy coder's context set
    init(config, key)           a parameter pytree (the seeded reference the decoder regenerates, too)
    apply(config, params, x)    outputs for a batch of inputs: pure and traceable (jit, grad, vmap)
    rows_per_piece(config)      rows per cache-sized piece when evaluating on CPU, or None: bounds memory
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Protocol

import jax
import numpy as np

from nicjax.container import TensorSpec


class Representation(Protocol):
    id: int
    name: str
    default_config: Any

    def with_io(self, config, in_dim: int, out_dim: int): ...

    def config_bytes(self, config) -> bytes: ...

    def config_from_bytes(self, read, signal): ...

    def tensors(self, config) -> list[TensorSpec]: ...

    def init(self, config, key): ...

    def apply(self, config, params, inputs): ...

    def rows_per_piece(self, config) -> int | None: ...


def rows_per_piece(width: int) -> int | None:
    """Rows per piece such that one layer's activations hold at most 2^18 floats (1 MiB), on CPU; None elsewhere.

    On CPU, XLA's matmuls and bias-gradient sums over a whole 16k-row batch spill out of cache; the same work
    in cache-sized pieces measured 25-40% faster per training step and 15-35% faster per decode (benchmarks/,
    same results to float rounding). Accelerators want the one big matmul, so nothing is split there.
    """
    if jax.default_backend() != "cpu":
        return None
    return 1 << max(0, ((1 << 18) // max(int(width), 1)).bit_length() - 1)


def checked(check_config, config, signal):
    """`config` parsed from a header, if `check_config(config, signal)` passes; else the file is corrupted."""
    from nicjax.errors import NicError

    try:
        check_config(config, signal)
    except ValueError as e:
        raise NicError(f"file is corrupted ({e})")
    return config


def dense_tensors(dims: list[int], layer_name) -> list[TensorSpec]:
    """The coded tensors of a stack of dense layers dims[0] → dims[1] → …: per layer its bias, then its kernel (the
    pytree's sorted-key order), named layer_name(i)/bias and layer_name(i)/kernel."""
    out = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        out.append(TensorSpec(f"{layer_name(i)}/bias", (b,), "bias"))
        out.append(TensorSpec(f"{layer_name(i)}/kernel", (a, b), "kernel"))
    return out


@dataclasses.dataclass(frozen=True)
class Model:
    """A representation and its configuration: hashable, so it can be a static argument of jitted functions."""

    representation: Any
    config: Any

    @property
    def name(self) -> str:
        return self.representation.name

    def init(self, key):
        """Initial parameters (jit-compiled once per model: the decoder regenerates the seeded reference with it)."""
        return _init(self, key)

    def apply(self, params, inputs):
        return self.representation.apply(self.config, params, inputs)

    def tensors(self) -> list[TensorSpec]:
        return self.representation.tensors(self.config)

    @property
    def out_dim(self) -> int:
        return self.config.out_dim

    @property
    def in_dim(self) -> int:
        return self.config.in_dim

    def rows_per_piece(self) -> int | None:
        return self.representation.rows_per_piece(self.config)

    def num_params(self) -> int:
        return sum(t.size for t in self.tensors())

    def evaluate(self, params, inputs, chunk: int = 1 << 16) -> np.ndarray:
        """Outputs (N, out_dim) float32 over any number of inputs, in fixed-size chunks: bounded memory, one compile.

        The last chunk is zero-padded to the chunk size so that every call has the same shape.
        """
        inputs = np.asarray(inputs, dtype=np.float32)
        n = inputs.shape[0]
        chunk = max(1, min(chunk, n))
        out = np.empty((n, self.out_dim), dtype=np.float32)
        for start in range(0, n, chunk):
            block = inputs[start:start + chunk]
            m = block.shape[0]
            if m < chunk:
                block = np.concatenate([block, np.zeros((chunk - m,) + inputs.shape[1:], np.float32)])
            out[start:start + m] = np.asarray(_apply_pieces(self, params, block))[:m]
        return out


@functools.partial(jax.jit, static_argnums=0)
def _init(model: Model, key):
    return model.representation.init(model.config, key)


@functools.partial(jax.jit, static_argnums=0)
def _apply_pieces(model: Model, params, inputs):
    n = inputs.shape[0]
    rows = model.rows_per_piece()
    if rows is None or n <= rows or n % rows:
        return model.apply(params, inputs)
    blocks = inputs.reshape((n // rows, rows) + inputs.shape[1:])
    return jax.lax.map(lambda block: model.apply(params, block), blocks).reshape(n, model.out_dim)

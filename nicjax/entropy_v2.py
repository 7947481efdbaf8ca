"""Entropy coder of format version 2 (`.nic` version 2, RAHT files version 2), kept verbatim so that those
files still decode; its encoder is kept for the rate comparison in `benchmarks/entropy.py`. New files use
`nicjax.entropy`.

Adaptive, integer-exact entropy coding of signed integer arrays over the `range_coder` package.

Pure Python + numpy. Every probability the decoder uses is an integer count updated from symbols it has
already decoded, so decoding never depends on floating-point agreement between machines.

Binarisation (in the spirit of DeepCABAC / JPEG categories), per integer q:
  * category c = bit length of |q| (0 for q == 0), coded with an adaptive multi-symbol model;
  * the sign, for c > 0, with an adaptive binary model;
  * the mantissa |q| - 2**(c-1) (c-1 bits): its top `MODELLED_MANTISSA_BITS` bits with adaptive binary
    models indexed by (c, bit position), the rest raw (equiprobable), gathered into one batch per array.
Few contexts means little learning cost, so small layers code close to their empirical entropy with no side
information in the header. Contexts live for a whole stream (they carry over from one array to the next),
with one set of contexts per caller-given `kind` (e.g. kernels vs biases).

Decoding a damaged payload raises ValueError in bounded time: sizes the payload cannot hold (`max_values`) are
refused before decoding, and the decoder tracks the ideal code length of what it decodes, stopping once that
passes the payload's length (range_coder's output is never shorter than it; as in `nicjax.entropy`).
"""

from __future__ import annotations

import math
import os
import tempfile
from itertools import accumulate
from typing import Iterable, Sequence

import numpy as np
import range_coder

MAX_CATEGORY = 32  # |q| < 2**31
MODELLED_MANTISSA_BITS = 2
_LIMIT = 1 << 13  # halve counts above this total: keeps totals far below range_coder's 16-bit precision
_INC = 24  # count increment per observed symbol: fast adaptation, small learning cost
_RAW_CDF = [0, 1, 2]
_SHORT_BITS = 8  # the payload may fall short of the ideal length of what it decodes to by this much
# The cheapest value: every value codes its category with a model of MAX_CATEGORY + 1 symbols whose counts stay
# >= 1 and total <= _LIMIT, so at least -log2(1 - 32/8192) = 5.65e-3 bits: at most ~1417 values per payload byte.
MIN_VALUE_BITS = -math.log2(1 - MAX_CATEGORY / _LIMIT)


def max_values(payload_bytes: int) -> int:
    """The most values a payload of this many bytes can decode to (see MIN_VALUE_BITS)."""
    return int((8 * payload_bytes + _SHORT_BITS) / MIN_VALUE_BITS)


class _Adaptive:
    """Adaptive frequency model over `n` symbols, each starting at count 1."""

    __slots__ = ("freq", "total")

    def __init__(self, n: int):
        self.freq = [1] * n
        self.total = n

    def cdf(self) -> list[int]:
        return [0, *accumulate(self.freq)]  # C-speed; this and `update` are the coder's inner loop

    def update(self, s: int) -> None:
        self.freq[s] += _INC
        self.total += _INC
        if self.total > _LIMIT:
            self.freq = [(x + 1) >> 1 for x in self.freq]
            self.total = sum(self.freq)


class _Contexts:
    def __init__(self):
        self.category = _Adaptive(MAX_CATEGORY + 1)
        self.sign = _Adaptive(2)
        self.mantissa = {}

    def mantissa_model(self, c: int, pos: int) -> _Adaptive:
        key = (c, pos)
        m = self.mantissa.get(key)
        if m is None:
            m = self.mantissa[key] = _Adaptive(2)
        return m


def _check(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise TypeError(f"entropy coder takes integer arrays, got {a.dtype}")
    a = a.astype(np.int64).ravel()
    if a.size and np.abs(a).max() >= (1 << 31):
        raise ValueError("entropy coder takes integers with |q| < 2**31")
    return a


def encode_ints(arrays: Sequence[np.ndarray], kinds: Sequence[int] | None = None, modes=None) -> bytes:
    """Codes a sequence of signed integer arrays into one range-coded byte string.

    The decoder must be told the sizes (and kinds) of the arrays: the stream does not record them. `modes` is
    ignored: version 2 has one mode (the argument matches nicjax.entropy's, so the container checks both alike).
    """
    kinds = [0] * len(arrays) if kinds is None else list(kinds)
    if len(kinds) != len(arrays):
        raise ValueError("one kind per array")
    contexts: dict[int, _Contexts] = {}
    fd, path = tempfile.mkstemp(suffix=".rc")
    os.close(fd)
    try:
        enc = range_coder.RangeEncoder(path)
        for arr, kind in zip(arrays, kinds):
            ctx = contexts.setdefault(kind, _Contexts())
            a = _check(arr)
            raw_bits: list[int] = []
            for q in a.tolist():
                m = -q if q < 0 else q
                c = m.bit_length()
                enc.encode([c], ctx.category.cdf())
                ctx.category.update(c)
                if c == 0:
                    continue
                s = 1 if q < 0 else 0
                enc.encode([s], ctx.sign.cdf())
                ctx.sign.update(s)
                for pos in range(c - 2, -1, -1):
                    bit = (m >> pos) & 1
                    if c - 2 - pos < MODELLED_MANTISSA_BITS:
                        model = ctx.mantissa_model(c, pos)
                        enc.encode([bit], model.cdf())
                        model.update(bit)
                    else:
                        raw_bits.append(bit)
            if raw_bits:
                enc.encode(raw_bits, _RAW_CDF)
        enc.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.remove(path)


def decode_ints(data: bytes, sizes: Sequence[int], kinds: Sequence[int] | None = None, *, with_modes: bool = False):
    """Inverse of `encode_ints`: returns one int64 array per entry of `sizes` (with `with_modes`: (arrays, []),
    as nicjax.entropy returns them; version 2 has no modes)."""
    if with_modes:
        return decode_ints(data, sizes, kinds), []
    kinds = [0] * len(sizes) if kinds is None else list(kinds)
    if len(kinds) != len(sizes):
        raise ValueError("one kind per array")
    sizes = [int(n) for n in sizes]
    if any(n < 0 for n in sizes):
        raise ValueError("array sizes must be non-negative")
    data = bytes(data)
    if sum(sizes) > max_values(len(data)):
        raise ValueError(f"entropy payload is truncated or corrupted ({len(data)} bytes cannot hold {sum(sizes)} "
                         "values)")
    budget = 8 * len(data) + _SHORT_BITS  # the ideal length of what is decoded may not pass this
    log2 = math.log2
    contexts: dict[int, _Contexts] = {}
    fd, path = tempfile.mkstemp(suffix=".rc")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        dec = range_coder.RangeDecoder(path)
        out = []
        ideal = 0.0
        for size, kind in zip(sizes, kinds):
            ctx = contexts.setdefault(kind, _Contexts())
            mags = [0] * size
            signs = [0] * size
            raw_plan: list[tuple[int, int]] = []  # (index, number of raw low bits)
            for i in range(size):
                model = ctx.category
                c = dec.decode(1, model.cdf())[0]
                if c > MAX_CATEGORY:
                    raise ValueError("entropy payload is corrupted (symbol out of range)")
                ideal += log2(model.total / model.freq[c])
                model.update(c)
                if ideal > budget:
                    raise ValueError("entropy payload is truncated or corrupted (it ends before its symbols)")
                if c == 0:
                    continue
                model = ctx.sign
                s = dec.decode(1, model.cdf())[0]
                if s > 1:
                    raise ValueError("entropy payload is corrupted (symbol out of range)")
                ideal += log2(model.total / model.freq[s])
                model.update(s)
                m = 1
                n_raw = 0
                for pos in range(c - 2, -1, -1):
                    if c - 2 - pos < MODELLED_MANTISSA_BITS:
                        model = ctx.mantissa_model(c, pos)
                        bit = dec.decode(1, model.cdf())[0]
                        if bit > 1:
                            raise ValueError("entropy payload is corrupted (symbol out of range)")
                        ideal += log2(model.total / model.freq[bit])
                        model.update(bit)
                        m = (m << 1) | bit
                    else:
                        n_raw += 1
                if n_raw:
                    raw_plan.append((i, n_raw))
                mags[i] = m
                signs[i] = s
            total_raw = sum(n for _, n in raw_plan)
            ideal += total_raw
            if ideal > budget:
                raise ValueError("entropy payload is truncated or corrupted (it ends before its symbols)")
            if total_raw:
                bits = dec.decode(total_raw, _RAW_CDF)
                k = 0
                for i, n in raw_plan:
                    m = mags[i]
                    for b in bits[k:k + n]:
                        m = (m << 1) | b
                    mags[i] = m
                    k += n
            arr = np.asarray(mags, dtype=np.int64)
            arr[np.asarray(signs, dtype=bool)] *= -1
            out.append(arr)
        dec.close()
        return out
    finally:
        os.remove(path)


def empirical_entropy_bits(arrays: Iterable[np.ndarray]) -> float:
    """Zeroth-order entropy of the concatenated symbols in bits (a yardstick for the coder, not a rate)."""
    a = np.concatenate([np.asarray(x).ravel() for x in arrays])
    if a.size == 0:
        return 0.0
    _, counts = np.unique(a, return_counts=True)
    p = counts / a.size
    return float(-(counts * np.log2(p)).sum())

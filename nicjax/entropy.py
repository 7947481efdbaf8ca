"""Block-adaptive, integer-exact entropy coding of signed integer arrays over the `range_coder` package.

Every probability table the decoder uses is a list of integer counts built from symbols it has already decoded,
so decoding never depends on floating-point agreement between machines; the coder is numpy plus a few
whole-list `range_coder` calls per block, never one Python call per symbol.

Binarisation (as in format version 2, `nicjax.entropy_v2`), per integer q with |q| < 2**31:
  * category c = bit length of |q| (0 for q == 0), 32 symbols;
  * the sign, for c > 0, one binary model;
  * the mantissa |q| - 2**(c-1) (c-1 bits): its top `MODELLED_MANTISSA_BITS` bits with binary models indexed by
    (c, bit position), the rest raw (equiprobable).
One set of models per caller-given `kind` (e.g. kernels vs biases); the arrays of one kind are coded as one
sequence, kind by kind in order of first appearance.

Two modes per kind, the encoder picking the one with the shorter ideal code length (one raw bit says which):
  * plain: each value's category with one category model;
  * grouped: values in groups of `_GROUP` consecutive ones; first each group's largest category (its own model),
    then the categories of the values in groups whose largest is m with a model over 0..m per m. This is how the
    coder follows local activity (RAHT's clusters of nonzero detail coefficients, textured vs flat regions) that
    the per-symbol adaptive coder of version 2 followed by adapting after every symbol; an all-zero group costs
    one cheap symbol.

Adaptation is block-wise: each array of a kind is cut into blocks of slowly growing length (`_block_lengths`:
one value, or one group, at the array's start; then 1/8 of what the array has shown, at most `_MAX_BLOCK`), so a
new tensor's statistics are learnt from its own first values almost as fast as with a per-symbol adaptive model.
Each block is coded against tables frozen at its start, one `range_coder` call per table, and the counts (carried
across the kind's arrays) are then updated from the whole block (increment `_INC` per symbol, counts starting at
1, all halved while their total exceeds `_LIMIT`, so the tables follow drifting statistics such as RAHT's
coarse-to-fine levels). No side information: the decoder derives the block lengths from the sizes and the mode.

Stream layout, per kind: the mode bit; then per block: (grouped) the groups' largest categories, then the values'
categories per m in increasing m; (plain) the values' categories; then the signs of the nonzero values, then for
each category c >= 2 in increasing order its values' first modelled mantissa bits and (c >= 3) their second, then
all raw bits (each value's remaining bits, most significant first, values in order). An empty input codes to b"".

Decoding a damaged payload raises ValueError in time and memory O(sum(sizes)), and sizes that the payload cannot
hold (`max_values`) are refused before anything is decoded. The decoder tracks two code lengths of what it
decodes: the ideal one (-log2 of the frozen tables' probabilities), which range_coder's output exceeds by at most a
few bits, so a payload with bytes to spare (`_SPARE_BITS`) at the end is caught; and a floor under what
range_coder can have spent (`_Counts.account`), so a payload that ends early (by more than a byte) is caught as
soon as the floor passes the payload's length (`_SHORT_BITS`). The floor is not the ideal length: range_coder
gives a table's last symbol the rounding remainder of its range, so that symbol, when the table calls it rare,
can cost up to ~1 bit less than its ideal (measured: tables of total 8000, last count 1), and a real file
(sarah9's dense latents, 223k values) came out 45 bits short of its ideal length.
Without redundancy in the stream this cannot catch everything (a final byte cut off, a few garbage bytes
appended, some bit flips decode to wrong values silently): the containers' CRCs do that.
"""

from __future__ import annotations

import bisect
import math
import os
import tempfile
from collections import Counter
from itertools import accumulate
from typing import Iterable, Sequence

import numpy as np
import range_coder

NUM_CATEGORIES = 32  # categories 0..31: |q| < 2**31
MODELLED_MANTISSA_BITS = 2
_INC = 24  # count added per symbol at a block's end (counts start at 1): fast learning, small learning cost
_LIMIT = 1 << 13  # halve all counts while their total exceeds this: tables track drifting statistics
_GROUP = 32  # grouped mode: values in groups of this many; each group's largest category is coded first
_GROWTH_SHIFT = 3  # next block = (units seen) >> _GROWTH_SHIFT units, at least 1, at most _MAX_BLOCK values
_MAX_BLOCK = 4096
_MODE_PROBE = 1 << 15  # longer sequences: the encoder picks the mode by static entropies, not by coding both
_RAW_CDF = [0, 1, 2]
# Damaged-payload check: range_coder's output is never shorter than the ideal code length of its symbols and
# longer by a few bits plus ~5.4e-5 bit per coded symbol (measured: 0.2-12 bits on streams of 10 to 100k values,
# 102-108 bits on 2 M values, from all zeros to Laplacian scale 1).
_SHORT_BITS = 8  # payload bits may fall short of the floor length of what it decodes to by this much
# The least range_coder's range can be while it codes, as for a 32-bit range coder that renormalises byte by byte
# (an assumption: its source is not at hand). It bounds how much probability rounding can give a table's last
# symbol: at most (total - last count) / _MIN_RANGE on top of its count's share. Checked by measurement: streams
# built to make rare last symbols frequent (runs of one sign or of zeros, then bursts; up to 5.5 kbit short of
# their ideal length) and sarah9's latents all decode with 2**26 here, 4x tighter than this.
_MIN_RANGE = 1 << 24
_SPARE_BITS = 40  # ... and exceed it by this much plus _SPARE_PER_SYMBOL per coded symbol (18x the measured rate)
_SPARE_PER_SYMBOL = 1e-3
_PLAIN, _GROUPED = 0, 1
# The cheapest symbol any model codes: a binary model's rarer count stays >= 1 (halving rounds up) and totals stay
# <= _LIMIT, so no symbol's floor probability (`_Counts.account`) passes 1 - 1/_LIMIT + 1/_MIN_RANGE: at least
# -log2(1 - 2047/2**24) = 1.760e-4 bits. At best one symbol (an all-zero group's largest category) stands for
# _GROUP values, so a payload of B bytes, which the decoder lets fall short of its floor length by _SHORT_BITS,
# holds at most MAX_VALUES_PER_BIT * (8 B + 8) values (~1.45 M per byte): a header that asks for more is refused
# before anything is decoded or allocated.
MIN_SYMBOL_BITS = -math.log2(1 - 1 / _LIMIT + 1 / _MIN_RANGE)
MAX_VALUES_PER_BIT = _GROUP / MIN_SYMBOL_BITS


def max_values(payload_bytes: int) -> int:
    """The most values a payload of this many bytes can decode to (see MIN_SYMBOL_BITS)."""
    return int(MAX_VALUES_PER_BIT * (8 * payload_bytes + _SHORT_BITS))


def present(values: np.ndarray) -> np.ndarray:
    """The distinct values of small non-negative integers (categories, coder kinds), ascending: np.unique's result,
    from a count (numpy 2.4's np.unique hashes, ~7x slower than this on the coders' per-block arrays, and ~50x slower
    than a sort on large int64 arrays such as node keys: latent._sorted_unique)."""
    return np.flatnonzero(np.bincount(values)) if values.size else np.zeros(0, np.int64)


def _block_lengths(sizes: Sequence[int], unit: int, before: Sequence[int] | None = None):
    """Block lengths (in values) for a kind's arrays of these sizes: blocks never straddle two arrays (a new
    tensor's statistics are learnt from its own first values soon), and within an array they grow with what the
    array has shown so far, in whole `unit`s but an array's last. `before` (ordered streams, whose arrays are a
    kind's many small slices of one signal, e.g. the nodes of one context in one pass of one level): per array,
    the values its kind has shown earlier in the same segment (`encode_ints(segments=)`), which the blocks grow
    with too, so that a small array is a block or a few, not ~8 ln n. Depends on the sizes, the mode and the
    segments only: the decoder derives them too. A generator: a decoder told a huge size stops at the first
    damaged block."""
    for i, n in enumerate(sizes):
        done, base = 0, 0 if before is None else before[i]
        while done < n:
            units = min(max(1, ((base + done) // unit) >> _GROWTH_SHIFT), max(1, _MAX_BLOCK // unit))
            b = min(units * unit, n - done)
            yield b
            done += b


class _Counts:
    """Integer counts of one model (Python ints: the models are small, numpy's per-call cost would dominate);
    `cdf` is the frozen table a block is coded with."""

    __slots__ = ("freq", "size")

    def __init__(self, n: int):
        self.freq = [1] * n
        self.size = n

    def cdf(self) -> list[int]:
        return [0, *accumulate(self.freq)]

    def cost(self, hist: list[int]) -> float:
        """Ideal code length in bits of symbols with histogram `hist` under the frozen table."""
        log_total = math.log2(sum(self.freq))
        return math.fsum(h * (log_total - math.log2(f)) for h, f in zip(hist, self.freq) if h)

    def account(self, seen: Counter) -> tuple[float, float]:
        """The decoder's bookkeeping of a block decoded with the frozen table, from its symbols' counts: (the ideal
        code length, a floor under range_coder's), then the update (`update`'s, from the symbols present only). The
        floor is the ideal length but the last symbol's at the probability rounding can give it (its count's share
        plus (total - its count) / _MIN_RANGE). A plain sum: these lengths only meet thresholds with bits of slack."""
        freq = self.freq
        total = sum(freq)
        log_total = math.log2(total)
        ideal = sum([h * (log_total - math.log2(freq[symbol])) for symbol, h in seen.items()])
        floor = ideal
        last = self.size - 1
        if last in seen:
            f = freq[last]
            share = min(1.0, f / total + (total - f) / _MIN_RANGE)
            floor += seen[last] * (math.log2(f) - log_total - math.log2(share))
        self._add(seen.items())
        return ideal, floor

    def update(self, hist: list[int]) -> None:
        """The table after a block of symbols with histogram `hist` (the encoder's; the decoder's is `account`)."""
        self._add(enumerate(hist))

    def _add(self, counts) -> None:
        """+_INC per symbol ((symbol, count) pairs), then all counts halved while their total exceeds _LIMIT."""
        freq = list(self.freq)
        for symbol, h in counts:
            freq[symbol] += _INC * h
        while sum(freq) > _LIMIT:
            freq = [(x + 1) >> 1 for x in freq]
        self.freq = freq


class _Contexts:
    def __init__(self):
        self.category = _Counts(NUM_CATEGORIES)
        self.sign = _Counts(2)
        self.group = _Counts(NUM_CATEGORIES)  # grouped mode: each group's largest category
        # grouped mode: the category of a value in a group whose largest category is m (alphabet 0..m)
        self.category_in = [_Counts(m + 1) for m in range(NUM_CATEGORIES)]
        # mantissa[c][j]: the j-th modelled bit below the leading one of category c
        self.mantissa = [[_Counts(2) for _ in range(MODELLED_MANTISSA_BITS)] for _ in range(NUM_CATEGORIES)]


def _check(arr) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise TypeError(f"entropy coder takes integer arrays, got {a.dtype}")
    if a.dtype == np.uint64 and a.size and a.max() >= (1 << 31):
        raise ValueError("entropy coder takes integers with |q| < 2**31")
    a = a.astype(np.int64).ravel()
    if a.size and np.abs(a).max() >= (1 << 31):
        raise ValueError("entropy coder takes integers with |q| < 2**31")
    return a


def _categories(mag: np.ndarray) -> np.ndarray:
    """Bit length of each magnitude (< 2**31, so float64 frexp is exact)."""
    return np.frexp(mag.astype(np.float64))[1].astype(np.int64)


def _group(kinds: Sequence[int]) -> dict[int, list[int]]:
    """kind -> indices of its arrays, kinds in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(kinds):
        groups.setdefault(int(k), []).append(i)
    return groups


def _raw_layout(r: np.ndarray):
    """For values with r[i] raw bits: (indices of the values with any, bit owner, bit shift, segment starts)."""
    sel = np.flatnonzero(r)
    rs = r[sel]
    owner = np.repeat(np.arange(sel.size), rs)
    starts = np.cumsum(rs) - rs
    shift = rs[owner] - 1 - (np.arange(owner.size) - starts[owner])
    return sel, owner, shift, starts


class _Plan:
    """What the encoder will code: (symbols, model or None for raw bits) calls, and their ideal length in bits."""

    def __init__(self, measure: bool = True):
        self.calls: list[tuple[np.ndarray, _Counts | None]] = []
        self.bits = 0.0
        self.measure = measure  # False: the mode is given, so the ideal length (half the planning time) is not needed

    def add(self, symbols: np.ndarray, model: _Counts | None) -> None:
        if model is None:
            self.calls.append((symbols, None))
            self.bits += symbols.size
            return
        hist = np.bincount(symbols, minlength=model.size).tolist()
        self.calls.append((symbols, model.cdf()))
        if self.measure:
            self.bits += model.cost(hist)
        model.update(hist)


def _by_category(c: np.ndarray):
    """(category, indices of its values in order) for each category >= 2 present, in increasing order."""
    order = np.argsort(c, kind="stable")
    ends = np.cumsum(np.bincount(c, minlength=NUM_CATEGORIES))
    for cat in range(2, NUM_CATEGORIES):
        lo, hi = ends[cat - 1], ends[cat]
        if hi > lo:
            yield cat, order[lo:hi]


def _plan_rest(plan: _Plan, ctx: _Contexts, q: np.ndarray, mag: np.ndarray, c: np.ndarray) -> None:
    """Signs, modelled mantissa bits and raw bits of values whose categories are coded."""
    nz = c > 0
    if not nz.any():
        return
    plan.add((q[nz] < 0).astype(np.int64), ctx.sign)
    for cat, where in _by_category(c):
        m = mag[where]
        for j in range(min(MODELLED_MANTISSA_BITS, cat - 1)):
            plan.add((m >> (cat - 2 - j)) & 1, ctx.mantissa[cat][j])
    sel, owner, shift, _ = _raw_layout(np.maximum(c - 1 - MODELLED_MANTISSA_BITS, 0))
    if owner.size:
        plan.add((mag[sel][owner] >> shift) & 1, None)


def _plan_kind(seq: np.ndarray, mode: int, sizes: Sequence[int] | None = None, measure: bool = True,
               before: Sequence[int] | None = None) -> _Plan:
    """The kind's calls; plan.array_calls[i]: the index of the first call of its i-th array (blocks never straddle
    two arrays, so an ordered stream can emit each array's calls where that array comes). `before`: see
    `_block_lengths`."""
    plan, ctx, start = _Plan(measure), _Contexts(), 0
    sizes = [seq.size] if sizes is None else list(sizes)
    ends = list(accumulate(sizes))
    first_call = [None] * len(sizes)
    for b in _block_lengths(sizes, _GROUP if mode == _GROUPED else 1, before):
        array = bisect.bisect_right(ends, start)  # the array this block belongs to (empty arrays have none)
        if first_call[array] is None:
            first_call[array] = len(plan.calls)
        q = seq[start:start + b]
        start += b
        mag = np.abs(q)
        c = _categories(mag)
        if mode == _GROUPED:
            gmax = np.maximum.reduceat(c, np.arange(0, b, _GROUP))
            plan.add(gmax, ctx.group)
            within = np.repeat(gmax, _GROUP)[:b]
            for m in present(gmax[gmax > 0]).tolist():
                plan.add(c[within == m], ctx.category_in[m])
        else:
            plan.add(c, ctx.category)
        _plan_rest(plan, ctx, q, mag, c)
    nxt = len(plan.calls)  # an empty array's calls: the empty range where the next array's begin
    for i in reversed(range(len(sizes))):
        nxt = first_call[i] = nxt if first_call[i] is None else first_call[i]
    plan.array_calls = first_call + [len(plan.calls)]
    return plan


def _entropy_bits(counts: np.ndarray) -> float:
    counts = counts[counts > 0]
    return float(counts.sum() * np.log2(counts.sum()) - counts @ np.log2(counts)) if counts.size else 0.0


def _static_mode(seq: np.ndarray) -> int:
    """The mode whose categories have the smaller zeroth-order entropy over the whole sequence (the rest of the
    code is the same in both modes)."""
    c = _categories(np.abs(seq))
    plain = _entropy_bits(np.bincount(c, minlength=NUM_CATEGORIES))
    starts = np.arange(0, c.size, _GROUP)
    gmax = np.maximum.reduceat(c, starts)
    within = np.repeat(gmax, _GROUP)[:c.size]
    joint = np.bincount(within * NUM_CATEGORIES + c, minlength=NUM_CATEGORIES**2).reshape(NUM_CATEGORIES, -1)
    grouped = _entropy_bits(np.bincount(gmax, minlength=NUM_CATEGORIES))
    grouped += sum(_entropy_bits(joint[m]) for m in range(1, NUM_CATEGORIES))
    return int(grouped < plain)


def encode_ints(arrays: Sequence[np.ndarray], kinds: Sequence[int] | None = None,
                modes: Sequence[int] | None = None, *, ordered: bool = False, segments: Sequence | None = None) -> bytes:
    """Codes a sequence of signed integer arrays (|q| < 2**31) into one range-coded byte string.

    The decoder must be told the sizes (and kinds) of the arrays: the stream does not record them. `modes`: the
    mode of each non-empty kind (in order of first appearance), as `decode_ints(..., with_modes=True)` returns
    them, instead of the encoder's choice: coding decoded values again to check a payload's canonical form then
    skips planning the mode that was not taken (both modes are valid streams; the choice is the encoder's).
    `ordered`: the stream holds the arrays in the order given (each kind's models carried over from its previous
    array, its mode bit before its first non-empty array) rather than kind by kind, so that a decoder can derive
    the sizes and kinds of later arrays from the values of earlier ones (`OrderedDecoder`; context modelling).
    `segments` (ordered streams only): a label per array (e.g. its level and channel); within a segment a kind's
    blocks grow with all its values there, not only with its current array's (`_block_lengths`).
    """
    kinds = [0] * len(arrays) if kinds is None else list(kinds)
    if len(kinds) != len(arrays):
        raise ValueError("one kind per array")
    given = None if modes is None else iter(modes)
    checked = [_check(a) for a in arrays]
    if segments is not None:
        if not ordered or len(segments) != len(arrays):
            raise ValueError("segments: one label per array, for an ordered stream")
        seen_before, totals = [], {}
        for a, k, g in zip(checked, kinds, segments):
            seen_before.append(totals.get((k, g), 0))
            totals[k, g] = seen_before[-1] + a.size
    if sum(a.size for a in checked) == 0:
        return b""
    planned = {}  # kind -> (mode, plan, its arrays' indices)
    groups = _group(kinds)
    if ordered:  # the modes in the order the decoder meets the kinds: by their first non-empty array
        groups = dict(sorted(groups.items(), key=lambda g: next((i for i in g[1] if checked[i].size), len(checked))))
    for kind, idx in groups.items():
        seq = np.concatenate([checked[i] for i in idx])
        sizes = [checked[i].size for i in idx]
        before = None if segments is None else [seen_before[i] for i in idx]
        if not seq.size:
            continue
        # Each kind takes the mode with the shorter code (one raw bit says which): both planned in full for
        # a short sequence, where learning costs matter; for a long one, judged by static entropies.
        if given is not None:
            mode = next(given, None)
            if mode not in (_PLAIN, _GROUPED):
                raise ValueError("one mode (0 or 1) per non-empty kind")
            plan = _plan_kind(seq, mode, sizes, measure=False, before=before)
        elif seq.size <= _MODE_PROBE:
            plans = [_plan_kind(seq, m, sizes, before=before) for m in (_PLAIN, _GROUPED)]
            mode = int(plans[_GROUPED].bits < plans[_PLAIN].bits)
            plan = plans[mode]
        else:
            mode = _static_mode(seq)
            plan = _plan_kind(seq, mode, sizes, before=before)
        planned[kind] = (mode, plan, idx)
    if given is not None and next(given, None) is not None:
        raise ValueError("one mode (0 or 1) per non-empty kind")
    if ordered:  # (mode bit or None, calls) per array, in the arrays' order
        position = {i: (kind, j) for kind, (_, _, idx) in planned.items() for j, i in enumerate(idx)}
        started, pieces = set(), []
        for i in range(len(checked)):
            if i not in position or not checked[i].size:
                continue
            kind, j = position[i]
            mode, plan, _ = planned[kind]
            pieces.append((None if kind in started else mode, plan.calls[plan.array_calls[j]:plan.array_calls[j + 1]]))
            started.add(kind)
    else:
        pieces = [(mode, plan.calls) for mode, plan, _ in planned.values()]

    def range_calls():
        for mode, calls in pieces:
            if mode is not None:
                yield [mode], None  # the mode bit
            for symbols, cdf in calls:
                yield symbols.tolist(), cdf

    return _range_code(range_calls())


def _range_code(calls: Iterable[tuple[list[int], list[int] | None]]) -> bytes:
    """range_coder's bytes for (symbols, cdf or None for raw bits) calls, in order."""
    fd, path = tempfile.mkstemp(suffix=".rc")
    os.close(fd)
    try:
        enc = range_coder.RangeEncoder(path)
        for symbols, cdf in calls:
            enc.encode(symbols, _RAW_CDF if cdf is None else cdf)
        enc.close()
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.remove(path)


class _Decoder:
    """range_coder's decoder plus the ideal and the floor code length of what it has decoded (for the damaged-
    payload checks: bytes to spare, and a payload that ends early), and the calls it made (`recoded`)."""

    def __init__(self, path: str, payload_bits: int):
        self.dec = range_coder.RangeDecoder(path)
        self.payload_bits = payload_bits
        self.ideal_bits = 0.0
        self.floor_bits = 0.0
        self.symbols = 0
        self.calls: list[tuple[list[int], list[int] | None]] = []

    def recoded(self) -> bytes:
        """The bytes the encoder writes for what was decoded (its canonical form). The decoder's calls are the
        encoder's for the decoded values and modes, one for one: block lengths follow from the sizes, modes and
        segments; each call's symbols are the ones the encoder derives from the values (a group's largest category
        is checked against its values', every other symbol is a bit field or category the values are built from);
        and the tables are the same counts updated by the same symbols. So coding the calls again gives
        `encode_ints(values, kinds, modes, ...)` without planning it again (tests compare the two)."""
        return _range_code(self.calls)

    def decode(self, n: int, model: _Counts | None) -> np.ndarray:
        self.symbols += n
        if model is None:  # raw bits
            symbols = self.dec.decode(n, _RAW_CDF)
            out = np.fromiter(symbols, dtype=np.int64, count=n)
            if out.size and out.max() > 1:
                raise ValueError("entropy payload is corrupted (symbol out of range)")
            self.calls.append((symbols, None))
            self.ideal_bits += n
            self.floor_bits += n * -math.log2(0.5 + 1 / _MIN_RANGE)
        else:
            cdf = model.cdf()
            symbols = self.dec.decode(n, cdf)
            seen = Counter(symbols)
            if seen and max(seen) >= model.size:
                raise ValueError("entropy payload is corrupted (symbol out of range)")
            out = np.fromiter(symbols, dtype=np.int64, count=n)
            self.calls.append((symbols, cdf))
            ideal, floor = model.account(seen)
            self.ideal_bits += ideal
            self.floor_bits += floor
        if self.floor_bits > self.payload_bits + _SHORT_BITS:
            raise ValueError("entropy payload is truncated or corrupted (it ends before its symbols)")
        return out


def _decode_rest(dec: _Decoder, ctx: _Contexts, c: np.ndarray) -> np.ndarray:
    n = c.size
    nz = c > 0
    mag = np.zeros(n, dtype=np.int64)
    if not nz.any():
        return mag
    s = dec.decode(int(nz.sum()), ctx.sign)
    mag[nz] = np.int64(1) << (c[nz] - 1)
    for cat, where in _by_category(c):
        for j in range(min(MODELLED_MANTISSA_BITS, cat - 1)):
            mag[where] |= dec.decode(where.size, ctx.mantissa[cat][j]) << (cat - 2 - j)
    sel, owner, shift, starts = _raw_layout(np.maximum(c - 1 - MODELLED_MANTISSA_BITS, 0))
    if owner.size:
        mag[sel] |= np.add.reduceat(dec.decode(owner.size, None) << shift, starts)
    neg = np.zeros(n, dtype=bool)
    neg[nz] = s.astype(bool)
    mag[neg] = -mag[neg]
    return mag


def _decode_array(dec: _Decoder, ctx: _Contexts, mode: int, n: int, before: int | None = None) -> np.ndarray:
    """One array of n values of a kind whose models are `ctx`; `before`: see `_block_lengths`."""
    parts = [np.zeros(0, dtype=np.int64)]
    for b in _block_lengths([n], _GROUP if mode == _GROUPED else 1, None if before is None else [before]):
        if mode == _GROUPED:
            gmax = dec.decode((b + _GROUP - 1) // _GROUP, ctx.group)
            within = np.repeat(gmax, _GROUP)[:b]
            c = np.zeros(b, dtype=np.int64)
            for m in present(gmax[gmax > 0]).tolist():
                where = within == m
                c[where] = dec.decode(int(where.sum()), ctx.category_in[m])
            # each group's largest category must be its stated one
            if gmax.size and not np.array_equal(np.maximum.reduceat(c, np.arange(0, b, _GROUP)), gmax):
                raise ValueError("entropy payload is corrupted (inconsistent group)")
        else:
            c = dec.decode(b, ctx.category)
        parts.append(_decode_rest(dec, ctx, c))
    return np.concatenate(parts)


def _decode_kind(dec: _Decoder, sizes: Sequence[int]) -> tuple[np.ndarray, int]:
    """The kind's values, and the mode its stream took."""
    mode = int(dec.decode(1, None)[0])
    ctx = _Contexts()
    return np.concatenate([_decode_array(dec, ctx, mode, s) for s in sizes]), mode


def decode_ints(data: bytes, sizes: Sequence[int], kinds: Sequence[int] | None = None, *, with_modes: bool = False):
    """Inverse of `encode_ints`: returns one int64 array per entry of `sizes` (with `with_modes`: (arrays, the
    mode of each non-empty kind), for `encode_ints(..., modes=)`). ValueError on a damaged payload."""
    sizes = [int(s) for s in sizes]
    kinds = [0] * len(sizes) if kinds is None else list(kinds)
    if len(kinds) != len(sizes):
        raise ValueError("one kind per array")
    if any(s < 0 for s in sizes):
        raise ValueError("array sizes must be non-negative")
    data = bytes(data)
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(sizes)
    modes: list[int] = []
    if sum(sizes) > max_values(len(data)):
        raise ValueError(f"entropy payload is truncated or corrupted ({len(data)} bytes cannot hold {sum(sizes)} "
                         "values)")
    if sum(sizes) == 0:
        if data:
            raise ValueError("entropy payload is corrupted (bytes but no symbols)")
        return (out, modes) if with_modes else out
    if not data:
        raise ValueError("entropy payload is empty but symbols are expected")
    fd, path = tempfile.mkstemp(suffix=".rc")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        dec = _Decoder(path, 8 * len(data))
        for idx in _group(kinds).values():
            n = sum(sizes[i] for i in idx)
            if not n:
                continue
            seq, mode = _decode_kind(dec, [sizes[i] for i in idx])
            modes.append(mode)
            start = 0
            for i in idx:
                out[i] = seq[start:start + sizes[i]]
                start += sizes[i]
        dec.dec.close()
        # A payload with bytes to spare (garbage appended, or not a stream of these sizes): more than the slack
        # beyond the ideal length of what it decoded to.
        if 8 * len(data) > dec.ideal_bits + _SPARE_BITS + _SPARE_PER_SYMBOL * dec.symbols:
            raise ValueError("entropy payload is corrupted (bytes beyond its symbols)")
        return (out, modes) if with_modes else out
    finally:
        os.remove(path)


class OrderedDecoder:
    """Decodes a stream of `encode_ints(..., ordered=True)` one array at a time (`read(n, kind)`), so that the
    caller can work out the next array's size and kind from what it has decoded. `finish()` then checks that the
    payload holds nothing more and returns the modes (for `encode_ints(..., modes=, ordered=True)`). At most
    `max_total` values are decoded in all (ValueError beyond: the caller's bound on the work). A context manager
    (the payload lives in a temporary file while it is read)."""

    def __init__(self, data: bytes, max_total: int):
        data = bytes(data)
        self.data, self.max_total, self.total = data, min(int(max_total), max_values(len(data))), 0
        self.kinds: dict[int, tuple[int, _Contexts]] = {}  # kind -> (mode, models), in order of first appearance
        self.seen: dict[tuple, int] = {}  # (kind, segment) -> values decoded so far (blocks grow with them)
        fd, self.path = tempfile.mkstemp(suffix=".rc")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.dec = _Decoder(self.path, 8 * len(data)) if data else None
        self.closed = False

    def read(self, n: int, kind: int, segment=0) -> np.ndarray:
        n = int(n)
        if n < 0:
            raise ValueError("array sizes must be non-negative")
        if not n:
            return np.zeros(0, dtype=np.int64)
        self.total += n
        if self.total > self.max_total or self.dec is None:
            raise ValueError(f"entropy payload is truncated or corrupted ({len(self.data)} bytes cannot hold "
                             f"{self.total} values)")
        if kind not in self.kinds:
            self.kinds[kind] = (int(self.dec.decode(1, None)[0]), _Contexts())
        mode, ctx = self.kinds[kind]
        before = self.seen.get((kind, segment), 0)
        self.seen[kind, segment] = before + n
        return _decode_array(self.dec, ctx, mode, n, before)

    def _close(self) -> None:
        if self.dec is not None and not self.closed:
            self.dec.dec.close()
        self.closed = True

    def finish(self) -> list[int]:
        if self.dec is None:
            return []
        self._close()
        if 8 * len(self.data) > self.dec.ideal_bits + _SPARE_BITS + _SPARE_PER_SYMBOL * self.dec.symbols:
            raise ValueError("entropy payload is corrupted (bytes beyond its symbols)")
        if not self.total:
            raise ValueError("entropy payload is corrupted (bytes but no symbols)")
        return [mode for mode, _ in self.kinds.values()]

    def recoded(self) -> bytes:
        """After `finish`: what `encode_ints(arrays, kinds, modes, ordered=True, segments=)` gives for the arrays
        read (`_Decoder.recoded`); the payload if and only if it is in canonical form."""
        return self.dec.recoded() if self.dec is not None else b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close()
        os.remove(self.path)


def empirical_entropy_bits(arrays: Iterable[np.ndarray]) -> float:
    """Zeroth-order entropy of the concatenated symbols in bits (a yardstick for the coder, not a rate)."""
    a = np.concatenate([np.asarray(x).ravel() for x in arrays])
    if a.size == 0:
        return 0.0
    _, counts = np.unique(a, return_counts=True)
    p = counts / a.size
    return float(-(counts * np.log2(p)).sum())

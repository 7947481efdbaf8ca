"""RAHT baseline codec: Region-Adaptive Hierarchical Transform (de Queiroz & Chou, IEEE TIP 2016).

The transform walks the voxel octree from the finest level up, one bit of one axis at a time (x, y, z, then
the next bit). At each step, two occupied nodes that differ only in that bit are merged by the orthonormal
butterfly

    [low ]   1            [ sqrt(w1)  sqrt(w2)] [x1]
    [high] = ----------- *[-sqrt(w2)  sqrt(w1)] [x2],     w = number of points under a node,
             sqrt(w1+w2)

the high-pass coefficient is emitted and the low-pass one (with weight w1 + w2) goes up a level; a node with
no partner goes up unchanged. After all levels a single DC coefficient remains. Everything depends only on
the geometry, so the decoder rebuilds the same structure from the coordinates it already has.

Vectorised: points are sorted by Morton code once; at every step the nodes stay sorted, so partners are
adjacent entries whose codes agree above the current bit. Only the ~3*depth steps are a Python loop.

Codec: RGB -> BT.709 YCbCr, forward RAHT, uniform quantisation q = round(coef / step) (same step for all
channels), block-adaptive range coding of q with `nicjax.entropy.encode_ints`, coarse coefficients first.
Version 3 files use that coder; version 2 files (the per-symbol coder, `nicjax.entropy_v2`) still decode.

Decoding accepts only what the encoder writes: a positive finite step, coefficients whose energy the colours can
have (the transform is orthonormal: per channel ||q·step|| <= sqrt(N)·(256 + step/2)), and the canonical form (the
symbols coded again give the file's payload; ~60% of the entropy decode's time). Anything else, and any failure
while decoding, is one ValueError line.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from nicjax import entropy, entropy_v2
from nicjax.signals.color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb

MAX_COORD_BITS = 21  # 3 * 21 = 63 bits: the Morton code fits in an int64

MAGIC = b"RH"
VERSION = 3
_DECODERS = {2: entropy_v2.decode_ints, 3: entropy.decode_ints}  # version -> entropy decoder
# magic, version, step (float32), CRC32 of the canonical geometry; the payload runs to the trailer. Packed like
# the .nic header (nothing the decoder can derive from the geometry or the file size), so the two compare fairly.
_HEADER = struct.Struct("<2sBfI")
_TRAILER = struct.Struct("<I")


# ---------------------------------------------------------------------------------------------------------
# Geometry: canonical order and the transform structure
# ---------------------------------------------------------------------------------------------------------


def check_coords(coords) -> np.ndarray:
    """(N, 3) integer-valued, non-negative coordinates below 2**21 -> int64; ValueError otherwise."""
    c = np.asarray(coords)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"coordinates must have shape (N, 3), got {c.shape}")
    if c.dtype.kind == "f":
        if not np.all(np.isfinite(c)) or not np.all(c == np.round(c)):
            raise ValueError("coordinates must be integers (voxelise the cloud first)")
    elif c.dtype.kind not in "iu":
        raise ValueError(f"coordinates must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= (1 << MAX_COORD_BITS)):
        raise ValueError(f"coordinates must lie in [0, 2**{MAX_COORD_BITS})")
    return c


def morton_codes(coords: np.ndarray, depth: int) -> np.ndarray:
    """Interleaves the low `depth` bits of x, y, z; x is the least significant bit of each triple, so the
    finest merge is along x, then y, then z, then the next bit of x, ..."""
    code = np.zeros(len(coords), dtype=np.int64)
    for b in range(depth):
        for axis in range(3):
            code |= ((coords[:, axis] >> b) & 1) << (3 * b + axis)
    return code


@dataclass(frozen=True)
class Level:
    """One merge step: nodes `left` and `left + 1` (indices among this step's `num_nodes` sorted nodes)
    are partners with weights `w_left`, `w_right`; all other nodes go up unchanged."""

    num_nodes: int
    left: np.ndarray
    w_left: np.ndarray
    w_right: np.ndarray


@dataclass(frozen=True)
class RahtStructure:
    """Everything the transform needs from the geometry. `order` sorts the caller's points into canonical
    (Morton) order; `levels` runs from the finest merge step to the coarsest."""

    order: np.ndarray
    levels: tuple[Level, ...]

    @property
    def num_points(self) -> int:
        return len(self.order)


def canonical_order(coords) -> tuple[np.ndarray, np.ndarray, int]:
    """(order, sorted Morton codes, depth) for integer coordinates; rejects duplicate points."""
    c = check_coords(coords)
    depth = int(c.max()).bit_length() if c.size else 0
    codes = morton_codes(c, depth)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    if np.any(codes[1:] == codes[:-1]):
        raise ValueError("duplicate coordinates: RAHT needs one attribute per occupied voxel")
    return order, codes, depth


def raht_structure(coords) -> RahtStructure:
    """Builds the merge steps from the geometry alone (the decoder calls this too)."""
    order, codes, depth = canonical_order(coords)
    weights = np.ones(len(codes), dtype=np.int64)
    levels = []
    for _ in range(3 * depth):
        parents = codes >> 1
        # Partners are adjacent in Morton order and share the parent code; at most two children per step.
        left = np.flatnonzero(parents[1:] == parents[:-1])
        levels.append(Level(len(codes), left, weights[left], weights[left + 1]))
        keep = np.ones(len(codes), dtype=bool)
        keep[left + 1] = False
        weights = weights.copy()
        weights[left] += weights[left + 1]
        codes, weights = parents[keep], weights[keep]
    return RahtStructure(order, tuple(levels))


# ---------------------------------------------------------------------------------------------------------
# Transform
# ---------------------------------------------------------------------------------------------------------


def _butterfly(level: Level) -> tuple[np.ndarray, np.ndarray]:
    total = (level.w_left + level.w_right).astype(np.float64)
    a = np.sqrt(level.w_left / total)[:, None]
    b = np.sqrt(level.w_right / total)[:, None]
    return a, b


def raht_forward_with_structure(structure: RahtStructure, attributes) -> np.ndarray:
    """(N, C) attributes in the caller's order -> (N, C) coefficients in canonical order:
    [DC, high-pass of the coarsest step, ..., high-pass of the finest step]."""
    x = np.asarray(attributes, dtype=np.float64)
    if x.ndim != 2 or len(x) != structure.num_points:
        raise ValueError(f"attributes must have shape ({structure.num_points}, C), got {x.shape}")
    low = x[structure.order]
    highs = []
    for level in structure.levels:
        a, b = _butterfly(level)
        x1, x2 = low[level.left], low[level.left + 1]
        highs.append(-b * x1 + a * x2)
        keep = np.ones(level.num_nodes, dtype=bool)
        keep[level.left + 1] = False
        low = low.copy()
        low[level.left] = a * x1 + b * x2
        low = low[keep]
    return np.concatenate([low] + highs[::-1], axis=0)


def raht_inverse_with_structure(structure: RahtStructure, coefficients) -> np.ndarray:
    """Inverse of `raht_forward_with_structure`: coefficients -> attributes in the caller's order."""
    coef = np.asarray(coefficients, dtype=np.float64)
    if coef.ndim != 2 or len(coef) != structure.num_points:
        raise ValueError(f"coefficients must have shape ({structure.num_points}, C), got {coef.shape}")
    if structure.num_points == 0:
        return coef.copy()
    low = coef[:1]
    start = 1
    for level in reversed(structure.levels):
        n_pairs = len(level.left)
        high = coef[start:start + n_pairs]
        start += n_pairs
        keep = np.ones(level.num_nodes, dtype=bool)
        keep[level.left + 1] = False
        x = np.empty((level.num_nodes, coef.shape[1]), dtype=np.float64)
        x[keep] = low
        a, b = _butterfly(level)
        merged = x[level.left]
        x[level.left] = a * merged - b * high
        x[level.left + 1] = b * merged + a * high
        low = x
    out = np.empty_like(low)
    out[structure.order] = low
    return out


def raht_forward(coords_int, attributes) -> tuple[np.ndarray, RahtStructure]:
    """(N, 3) integer coordinates, (N, C) attributes -> ((N, C) float64 coefficients, structure)."""
    structure = raht_structure(coords_int)
    return raht_forward_with_structure(structure, attributes), structure


def raht_inverse(coefficients, structure: RahtStructure) -> np.ndarray:
    """(N, C) coefficients from `raht_forward` -> (N, C) attributes in the original point order."""
    return raht_inverse_with_structure(structure, coefficients)


# ---------------------------------------------------------------------------------------------------------
# Codec
# ---------------------------------------------------------------------------------------------------------


def geometry_crc(coords, order: np.ndarray | None = None) -> int:
    """CRC32 of the coordinates in canonical order: identifies the geometry independently of point order.
    `order`: the canonical order when the caller has it already (`RahtStructure.order`)."""
    c = check_coords(coords)
    if order is None:
        order, _, _ = canonical_order(c)
    return zlib.crc32(np.ascontiguousarray(c[order], dtype="<u4").tobytes())


def _coding_layout(channels: int) -> list[int]:
    """One array per channel, each in coarse-to-fine order (the adaptive models follow the magnitudes as they
    shrink from level to level); one context set per channel, since luma and chroma statistics differ.
    (Extra contexts by merged-node weight class were measured on longdress: no gain, so none.)"""
    return list(range(channels))


def _reconstruct(q: np.ndarray, step: float, structure: RahtStructure) -> np.ndarray:
    """Dequantise and invert; shared by encoder and decoder so both get bit-identical colours."""
    ycc = raht_inverse_with_structure(structure, q.astype(np.float64) * step)
    return to_uint8(ycbcr_to_rgb(ycc))


def _check_step(step: float) -> float:
    # The header stores step as float32: quantise with exactly that value so the decoder matches.
    s = float(np.float32(step))
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"step must be a positive finite number, got {step}")
    return s


def _encode(coords_int, rgb_uint8, step: float) -> tuple[bytes, np.ndarray, float, RahtStructure]:
    coords = check_coords(coords_int)
    rgb = np.asarray(rgb_uint8)
    if rgb.shape != (len(coords), 3):
        raise ValueError(f"colours must have shape ({len(coords)}, 3), got {rgb.shape}")
    step = _check_step(step)
    structure = raht_structure(coords)
    coef = raht_forward_with_structure(structure, rgb_to_ycbcr(rgb))
    q = np.rint(coef / step).astype(np.int64)
    payload = entropy.encode_ints([q[:, ch] for ch in range(3)], _coding_layout(3))
    header = _HEADER.pack(MAGIC, VERSION, step, geometry_crc(coords, structure.order))
    body = header + payload
    return body + _TRAILER.pack(zlib.crc32(body)), q, step, structure


def encode_with_reconstruction(coords_int, rgb_uint8, step: float) -> tuple[bytes, np.ndarray]:
    """Encodes colours of a voxelised cloud; returns (bitstream, decoded (N, 3) uint8 RGB in input order)."""
    data, q, step, structure = _encode(coords_int, rgb_uint8, step)
    return data, _reconstruct(q, step, structure)


def encode(coords_int, rgb_uint8, step: float) -> bytes:
    """The bitstream alone (no reconstruction: the inverse transform is the decoder's work)."""
    return _encode(coords_int, rgb_uint8, step)[0]


_ENCODERS = {2: entropy_v2.encode_ints, 3: entropy.encode_ints}  # version -> its entropy encoder (canonical form)


def decode(data: bytes, coords_int) -> np.ndarray:
    """Bitstream + the same geometry (any point order) -> (N, 3) uint8 RGB in the order of `coords_int`.

    ValueError (one line) for a damaged or hostile bitstream or a geometry that does not fit; no other exception."""
    try:
        return _decode(data, coords_int)
    except ValueError:
        raise
    except MemoryError:
        raise ValueError("RAHT bitstream cannot be decoded (out of memory)")
    except Exception as e:  # a damaged stream whose checksum collided: still one clear line
        first = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"RAHT bitstream is corrupted ({type(e).__name__}{': ' + first if first else ''})")


def _decode(data: bytes, coords_int) -> np.ndarray:
    data = bytes(data)
    if len(data) < _HEADER.size + _TRAILER.size:
        raise ValueError("RAHT bitstream truncated: shorter than its header")
    if data[:2] != MAGIC:
        raise ValueError("not a RAHT bitstream (bad magic)")
    (stored_crc,) = _TRAILER.unpack(data[-_TRAILER.size:])
    if zlib.crc32(data[:-_TRAILER.size]) != stored_crc:
        raise ValueError("RAHT bitstream corrupted or truncated (CRC mismatch)")
    _, version, step, geom_crc = _HEADER.unpack(data[:_HEADER.size])
    if version not in _DECODERS:
        raise ValueError(f"unsupported RAHT bitstream version {version}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"RAHT bitstream corrupted (step {step:g})")
    coords = check_coords(coords_int)
    structure = raht_structure(coords)
    crc = geometry_crc(coords, structure.order)
    if crc != geom_crc:
        raise ValueError(f"geometry mismatch: bitstream was encoded for geometry CRC {geom_crc:#010x}, got "
                         f"{len(coords)} points with CRC {crc:#010x}")
    payload = data[_HEADER.size:-_TRAILER.size]
    arrays = _DECODERS[version](payload, [len(coords)] * 3, _coding_layout(3))
    # Orthonormal transform: each channel's coefficients have the energy of its values (YCbCr within [0, 256]: Cb and Cr reach 255.5), and
    # rounding moves each by at most step/2.
    bound = np.sqrt(len(coords)) * (256.0 + step / 2) * (1 + 1e-9) + 1e-6
    if any(np.linalg.norm(a.astype(np.float64) * step) > bound for a in arrays):
        raise ValueError("RAHT bitstream corrupted (coefficients larger than any colours give)")
    if _ENCODERS[version](arrays, _coding_layout(3)) != payload:
        raise ValueError("RAHT bitstream corrupted (its payload is not as the encoder writes it)")
    return _reconstruct(np.stack(arrays, axis=1), step, structure)

"""The .nic file format, version 3: typed sections in a fixed order, then the payload and a CRC. numpy only.

Nothing the decoder can derive is stored: the payload length follows from the file size, the symbol counts from
the representation's configuration, a point cloud's coordinate normalisation from the geometry the decoder is
given (`pointcloud.normalisation`). Little-endian; varints are unsigned LEB128.

    bytes   section / field
    2       magic b"NJ"
    1       format version (3)
            -- signal --
    1       flags: bits 0-1 signal kind (0 point cloud, 1 image); bit 2 colour space (0 BT.709 YCbCr full range,
            1 RGB); bit 3 16-bit colours (else 8-bit); bit 4 voxelize (point clouds); bits 5-6 reference kind
            (0 zeros, 1 seeded init, 2 init artefact); bit 7 zero
    ...     point cloud: uint32 order-independent CRC32 of the geometry; image: varint height, varint width
            -- representation --
    1       representation id (the registry in nicjax.representations: 0 SIREN)
    ...     its configuration, written and checked by the representation (SIREN: in_dim·16 + out_dim, varint
            width, depth, ω0 and ω as float16)
            -- reference (what the coded tensors are differences from) --
    1-5     seed (varint; only for the seeded reference)
    8       id (only for an init artefact): the first 8 bytes of the artefact's content hash
            -- quantization steps --
    2·T     one step per coded tensor (bfloat16: the top half of a float32 whose bottom half is zero), T and the
            tensors' order from the representation
            -- payload --
    ...     the symbols of every tensor, range-coded by nicjax.entropy (one context set per tensor role)
    4       CRC32 of every byte before it

Version-2 files (SIREN only; the header without the representation byte) still decode: `decode` hands them to
`nicjax.container_v2`, which reads them into the same Header.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from nicjax import entropy
from nicjax.errors import NicError

MAGIC = b"NJ"
VERSION = 3
_OLD_MAGIC = b"NICJ"  # version 1 (until 2026-11): a 4-byte magic and a header with fixed-size fields

SIGNAL_POINTCLOUD, SIGNAL_IMAGE = 0, 1
COLOUR_YCBCR709, COLOUR_RGB = 0, 1
REFERENCE_ZEROS, REFERENCE_SEEDED, REFERENCE_ARTEFACT = 0, 1, 2

# Tensor roles pick the entropy coder's context set: tensors of one role share statistics.
ROLES = ("kernel", "bias", "latent")

U32 = struct.Struct("<I")
MAX_SEED = 1 << 32  # seeds are in [0, 2**32)


@dataclasses.dataclass(frozen=True)
class SignalInfo:
    """What the decoder needs to know of the signal: its kind, colours and (for images) its size."""

    kind: int
    colour_space: int = COLOUR_YCBCR709
    colour_bits: int = 8
    geometry_crc: int = 0  # point clouds
    voxelize: bool = False  # point clouds
    height: int = 0  # images
    width: int = 0  # images


@dataclasses.dataclass(frozen=True)
class Reference:
    """What the coded tensors are differences from."""

    kind: int = REFERENCE_ZEROS
    seed: int = 0  # REFERENCE_SEEDED
    id: bytes = b"\0" * 8  # REFERENCE_ARTEFACT


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str  # the pytree path, e.g. "layer_00/kernel"
    shape: tuple
    role: str  # one of ROLES

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclasses.dataclass(frozen=True)
class CodedTensor:
    """One tensor as the file holds it: integer symbols and the step that scales them."""

    spec: TensorSpec
    step: np.float32
    symbols: np.ndarray  # int64, row-major flattening of spec.shape

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def shape(self) -> tuple:
        return self.spec.shape


@dataclasses.dataclass(frozen=True)
class Header:
    signal: SignalInfo
    representation: int  # registry id
    model: object  # the representation's configuration (a frozen dataclass)
    reference: Reference = Reference()
    steps: tuple = ()  # filled in by `decode` (and ignored by `encode`, which takes the tensors' steps)


def storable_step(step) -> np.float32:
    """The smallest step ≥ `step` that the header stores exactly (bfloat16: a float32 whose low 16 bits are zero).

    Rounding up (by at most 2^-7 relative) keeps the symbols within the quantizer's level span.
    """
    bits = int(np.float32(step).view(np.uint32))
    if bits & 0xFFFF:
        bits = (bits | 0xFFFF) + 1
    return np.uint32(bits).view(np.float32)


def varint(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"varints are unsigned, got {n}")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Reader:
    """A cursor over the header bytes; running past the end means the file is damaged."""

    def __init__(self, data: bytes, end: int, pos: int = 0):
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise NicError("file is corrupted (the header runs past the end)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self, max_bits: int = 35) -> int:
        n = 0
        for shift in range(0, max_bits, 7):
            byte = self.byte()
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return n
        raise NicError("file is corrupted (a header integer is too long)")


def step_bits(step) -> int:
    """The stored 16 bits of a step: the top half of its float32 (`storable_step` leaves the bottom half zero)."""
    s = np.float32(step)
    if not (np.isfinite(s) and s > 0) or storable_step(s) != s:
        raise ValueError(f"step {step!r} is not storable (see storable_step)")
    return int(s.view(np.uint32)) >> 16


def step_from_bits(bits: int) -> float:
    return float(np.uint32(bits << 16).view(np.float32))


def _flags(header: Header) -> int:
    s, r = header.signal, header.reference
    if s.kind not in (SIGNAL_POINTCLOUD, SIGNAL_IMAGE) or s.colour_bits not in (8, 16) \
            or s.colour_space not in (COLOUR_YCBCR709, COLOUR_RGB) \
            or r.kind not in (REFERENCE_ZEROS, REFERENCE_SEEDED, REFERENCE_ARTEFACT):
        raise ValueError(f"header cannot be stored: {header}")
    return s.kind | s.colour_space << 2 | (s.colour_bits == 16) << 3 | bool(s.voxelize) << 4 | r.kind << 5


def _signal_bytes(signal: SignalInfo) -> bytes:
    if signal.kind == SIGNAL_POINTCLOUD:
        return U32.pack(signal.geometry_crc)
    return varint(signal.height) + varint(signal.width)


def _reference_bytes(reference: Reference) -> bytes:
    if reference.kind == REFERENCE_SEEDED:
        if not 0 <= reference.seed < MAX_SEED:
            raise ValueError(f"the seed must be in [0, 2**32), got {reference.seed}")
        return varint(reference.seed)
    if reference.kind == REFERENCE_ARTEFACT:
        if len(reference.id) != 8:
            raise ValueError("an init artefact's id is 8 bytes")
        return bytes(reference.id)
    return b""


def encode(header: Header, tensors: list[CodedTensor], representations) -> bytes:
    """The file's bytes. `representations`: registry id → representation (nicjax.representations.REGISTRY)."""
    rep = representations[header.representation]
    specs = rep.tensors(header.model)
    if [t.spec for t in tensors] != specs:
        raise ValueError("coded tensors do not match the representation in the header")
    out = bytearray(MAGIC + bytes([VERSION, _flags(header)]))
    out += _signal_bytes(header.signal)
    out += bytes([header.representation]) + rep.config_bytes(header.model)
    out += _reference_bytes(header.reference)
    out += struct.pack(f"<{len(tensors)}H", *(step_bits(t.step) for t in tensors))
    out += entropy.encode_ints([t.symbols for t in tensors], [ROLES.index(t.spec.role) for t in tensors])
    out += U32.pack(zlib.crc32(out))
    return bytes(out)


def checked(data: bytes) -> int:
    """Checks magic, version and CRC; returns the version. NicError with one clear line otherwise."""
    if data[:4] == _OLD_MAGIC:
        raise NicError(f"unsupported format version 1 (an older nicjax wrote it; this one reads versions 2 and "
                       f"{VERSION})")
    if data[:2] != MAGIC:
        raise NicError("not a nicjax file (bad magic number)")
    if len(data) < 3 + 4:
        raise NicError(f"file is truncated ({len(data)} bytes)")
    if data[2] not in (2, VERSION):
        raise NicError(f"unsupported format version {data[2]} (this nicjax reads versions 2 and {VERSION})")
    end = len(data) - 4
    if zlib.crc32(data[:end]) != U32.unpack_from(data, end)[0]:
        raise NicError("checksum mismatch: the file is truncated or corrupted")
    return data[2]


def read_signal(read: Reader, flags: int) -> tuple[SignalInfo, int]:
    """(SignalInfo, reference kind) from the flags byte and the signal section."""
    kind, colour_space, colour_bits = flags & 3, flags >> 2 & 1, 16 if flags >> 3 & 1 else 8
    reference = flags >> 5 & 3
    if kind not in (SIGNAL_POINTCLOUD, SIGNAL_IMAGE) or reference > REFERENCE_ARTEFACT or flags & 0x80 \
            or (kind == SIGNAL_IMAGE and flags >> 4 & 1):
        raise NicError(f"file is corrupted (header flags {flags:#04x})")
    if kind == SIGNAL_POINTCLOUD:
        signal = SignalInfo(kind, colour_space, colour_bits, geometry_crc=U32.unpack(read.take(4))[0],
                            voxelize=bool(flags >> 4 & 1))
    else:
        signal = SignalInfo(kind, colour_space, colour_bits, height=read.varint(), width=read.varint())
    return signal, reference


def read_reference(read: Reader, kind: int) -> Reference:
    if kind == REFERENCE_SEEDED:
        seed = read.varint()
        if seed >= MAX_SEED:
            raise NicError(f"file is corrupted (seed {seed})")
        return Reference(kind, seed=seed)
    if kind == REFERENCE_ARTEFACT:
        return Reference(kind, id=read.take(8))
    return Reference(kind)


def read_tensors(data: bytes, read: Reader, specs: list[TensorSpec], decode_ints=entropy.decode_ints
                 ) -> tuple[tuple, list[CodedTensor]]:
    """The steps section and the payload (which runs from the cursor to the checksum)."""
    raw = struct.unpack(f"<{len(specs)}H", read.take(2 * len(specs)))
    steps = tuple(step_from_bits(b) for b in raw)
    for s in steps:
        if not (np.isfinite(s) and s > 0):
            raise NicError(f"file is corrupted (quantization step {s})")
    try:
        arrays = decode_ints(data[read.pos:read.end], [s.size for s in specs], [ROLES.index(s.role) for s in specs])
    except NicError:
        raise
    except Exception as e:  # a checksum collision or an encoder bug: still one clear line
        raise NicError(f"payload cannot be decoded ({type(e).__name__})")
    return steps, [CodedTensor(spec, np.float32(st), a) for spec, st, a in zip(specs, steps, arrays)]


def decode(data: bytes, representations) -> tuple[Header, list[CodedTensor]]:
    """Parses and checks a .nic file (version 3 or 2); NicError with one clear line on anything wrong."""
    data = bytes(data)
    if checked(data) == 2:
        from nicjax import container_v2

        return container_v2.decode(data, representations)
    # Past the checksum, a malformed header means a damaged file whose checksum collided (or an encoder bug).
    read = Reader(data, len(data) - 4, pos=3)
    signal, reference_kind = read_signal(read, read.byte())
    rep_id = read.byte()
    if rep_id not in representations:
        raise NicError(f"file uses representation {rep_id}, which this nicjax does not know")
    rep = representations[rep_id]
    model = rep.config_from_bytes(read, signal)
    reference = read_reference(read, reference_kind)
    steps, tensors = read_tensors(data, read, rep.tensors(model))
    return Header(signal, rep_id, model, reference, steps), tensors

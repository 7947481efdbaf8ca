"""The .nic file format, version 2 (pure Python: struct + zlib + the entropy coder). Little-endian.

The files are small (a few hundred bytes for a small cloud), so the header is packed: nothing the decoder can
derive is stored. The payload length follows from the file size; the symbol counts from the architecture;
the coordinate normalisation of a point cloud from the geometry the decoder is given (`pointcloud.normalisation`).

    bytes   field
    2       magic b"NJ"
    1       format version (2)
    1       flags: bits 0-1 signal kind (0 point cloud, 1 image); bit 2 colour space (0 BT.709 YCbCr full range,
            1 RGB); bit 3 16-bit colours (else 8-bit); bit 4 voxelize (point clouds); bits 5-6 reference kind
            (0 zeros, 1 seeded Sitzmann init, 2 init artefact); bit 7 zero
    1       SIREN in_dim (high nibble), out_dim (low nibble)
    1-3     SIREN width (unsigned LEB128 varint)
    1       SIREN depth (sine layers; a linear layer follows)
    2+2     ω0 of the first layer, ω of the other sine layers (float16)
    1-5     reference seed (varint; only for the seeded reference)
    8       reference id (only for an init artefact): first 8 bytes of the artefact's content hash
    ...     signal part
              point cloud: uint32 order-independent CRC32 of the geometry
              image:       varint height, varint width
    2·T     per-tensor quantization step (bfloat16: the top half of a float32 whose bottom half is zero),
            T = 2·(depth + 1) tensors in pytree order
    ...     range-coded symbols (nicjax.entropy_v2), tensors in pytree order, up to the checksum
    4       CRC32 of every byte before it
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from nicjax import entropy_v2 as entropy  # format version 2: the coder it was written with
from nicjax.errors import NicError
from nicjax.quantize import QuantizedTensor, context_kind, storable_step

MAGIC = b"NJ"
VERSION = 2
_OLD_MAGIC = b"NICJ"  # version 1 (until 2026-11): a 4-byte magic and a header with fixed-size fields

SIGNAL_POINTCLOUD, SIGNAL_IMAGE = 0, 1
COLOUR_YCBCR709, COLOUR_RGB = 0, 1
REFERENCE_ZEROS, REFERENCE_SEEDED, REFERENCE_ARTEFACT = 0, 1, 2

_U32 = struct.Struct("<I")
_OMEGAS = struct.Struct("<ee")


@dataclasses.dataclass(frozen=True)
class Header:
    signal: int
    colour_space: int
    colour_bits: int
    in_dim: int
    out_dim: int
    width: int
    depth: int
    omega0: float
    omega: float
    reference: int = REFERENCE_ZEROS
    reference_seed: int = 0
    reference_id: bytes = b"\0" * 8
    # point cloud
    geometry_crc: int = 0
    voxelize: bool = False
    # image
    height: int = 0
    image_width: int = 0
    steps: tuple = ()

    def __post_init__(self):
        # Checked when the header is made (before any training), not when the file is written.
        check_network(self.in_dim, self.out_dim, self.width, self.depth, self.omega0, self.omega)
        if self.reference_seed < 0:
            raise ValueError(f"the reference seed must be non-negative, got {self.reference_seed}")

    @property
    def num_tensors(self) -> int:
        return 2 * (self.depth + 1)

    def tensor_shapes(self) -> list[tuple[str, tuple]]:
        """(name, shape) per tensor, in the order the pytree (and so the bitstream) lists them."""
        dims = [self.in_dim] + [self.width] * self.depth + [self.out_dim]
        out = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            out.append((f"layer_{i:02d}/bias", (b,)))
            out.append((f"layer_{i:02d}/kernel", (a, b)))
        return out


def check_network(in_dim: int, out_dim: int, width: int, depth: int, omega0: float, omega: float) -> None:
    """ValueError (one line) unless the header can store this SIREN exactly."""
    for name, value in (("omega0", omega0), ("omega", omega)):
        if not np.isfinite(value) or float(np.float16(value)) != value:
            raise ValueError(f"{name} = {value:g} cannot be stored exactly (the header holds float16): use a value "
                             "such as 30, 60 or 37.5")
    if not (1 <= in_dim <= 15 and 1 <= out_dim <= 15):
        raise ValueError(f"a network with {in_dim} inputs and {out_dim} outputs cannot be stored (1 to 15 each)")
    if not 1 <= depth <= 255 or width < 1:
        raise ValueError(f"a {width}x{depth} network cannot be stored")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _step_bits(step) -> int:
    """The stored 16 bits of a step: the top half of its float32 (`storable_step` leaves the bottom half zero)."""
    s = np.float32(step)
    if not (np.isfinite(s) and s > 0) or storable_step(s) != s:
        raise ValueError(f"step {step!r} is not storable (see quantize.storable_step)")
    return int(s.view(np.uint32)) >> 16


class _Reader:
    """A cursor over the header bytes; running past the end means the header is damaged."""

    def __init__(self, data: bytes, end: int):
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise NicError("file is corrupted (the header runs past the end)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self) -> int:
        n = 0
        for shift in range(0, 35, 7):
            byte = self.take(1)[0]
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return n
        raise NicError("file is corrupted (a header integer is too long)")


def encode(header: Header, quantized: list[QuantizedTensor]) -> bytes:
    """Packs the header and range-codes the symbols. `header.steps` is taken from `quantized`."""
    shapes = header.tensor_shapes()
    if [(q.name, q.shape) for q in quantized] != shapes:
        raise ValueError("quantized tensors do not match the architecture in the header")
    if header.colour_bits not in (8, 16) or header.colour_space not in (COLOUR_YCBCR709, COLOUR_RGB) \
            or header.reference not in (REFERENCE_ZEROS, REFERENCE_SEEDED, REFERENCE_ARTEFACT):
        raise ValueError(f"header cannot be stored: {header}")
    flags = (header.signal | header.colour_space << 2 | (header.colour_bits == 16) << 3
             | bool(header.voxelize) << 4 | header.reference << 5)
    out = bytearray(MAGIC + bytes([VERSION, flags, header.in_dim << 4 | header.out_dim]))
    out += _varint(header.width) + bytes([header.depth]) + _OMEGAS.pack(header.omega0, header.omega)
    if header.reference == REFERENCE_SEEDED:
        out += _varint(header.reference_seed)
    elif header.reference == REFERENCE_ARTEFACT:
        out += bytes(header.reference_id)
    if header.signal == SIGNAL_POINTCLOUD:
        out += _U32.pack(header.geometry_crc)
    elif header.signal == SIGNAL_IMAGE:
        out += _varint(header.height) + _varint(header.image_width)
    else:
        raise ValueError(f"unknown signal kind {header.signal}")
    out += struct.pack(f"<{len(quantized)}H", *(_step_bits(q.step) for q in quantized))
    out += entropy.encode_ints([q.symbols for q in quantized], [q.kind for q in quantized])
    out += _U32.pack(zlib.crc32(out))
    return bytes(out)


def decode(data: bytes) -> tuple[Header, list[QuantizedTensor]]:
    """Parses and checks a .nic file; raises NicError with one clear line on anything wrong."""
    data = bytes(data)
    if data[:4] == _OLD_MAGIC:
        raise NicError(f"unsupported format version 1 (an older nicjax wrote it; this one reads version {VERSION})")
    if data[:2] != MAGIC:
        raise NicError("not a nicjax file (bad magic number)")
    if len(data) < 3 + 4:
        raise NicError(f"file is truncated ({len(data)} bytes)")
    if data[2] != VERSION:
        raise NicError(f"unsupported format version {data[2]} (this nicjax reads version {VERSION})")
    end = len(data) - 4
    if zlib.crc32(data[:end]) != _U32.unpack_from(data, end)[0]:
        raise NicError("checksum mismatch: the file is truncated or corrupted")
    # Past the checksum, a malformed header means a damaged file whose checksum collided (or an encoder bug).
    read = _Reader(data, end)
    read.take(3)
    flags, dims = read.take(2)
    signal, colour_space, colour_bits = flags & 3, flags >> 2 & 1, 16 if flags >> 3 & 1 else 8
    reference = flags >> 5 & 3
    if signal not in (SIGNAL_POINTCLOUD, SIGNAL_IMAGE) or reference > REFERENCE_ARTEFACT or flags & 0x80:
        raise NicError(f"file is corrupted (header flags {flags:#04x})")
    width = read.varint()
    depth = read.take(1)[0]
    omega0, omega = _OMEGAS.unpack(read.take(_OMEGAS.size))
    fields = dict(reference=reference, voxelize=bool(flags >> 4 & 1))
    if reference == REFERENCE_SEEDED:
        fields["reference_seed"] = read.varint()
    elif reference == REFERENCE_ARTEFACT:
        fields["reference_id"] = read.take(8)
    if signal == SIGNAL_POINTCLOUD:
        fields["geometry_crc"] = _U32.unpack(read.take(4))[0]
    else:
        fields["height"], fields["image_width"] = read.varint(), read.varint()
    try:
        header = Header(signal=signal, colour_space=colour_space, colour_bits=colour_bits, in_dim=dims >> 4,
                        out_dim=dims & 15, width=width, depth=depth, omega0=float(omega0), omega=float(omega),
                        **fields)
    except ValueError as e:
        raise NicError(f"file is corrupted ({e})")
    shapes = header.tensor_shapes()
    steps = struct.unpack(f"<{len(shapes)}H", read.take(2 * len(shapes)))
    steps = tuple(float(np.uint32(b << 16).view(np.float32)) for b in steps)
    header = dataclasses.replace(header, steps=steps)
    try:
        arrays = entropy.decode_ints(data[read.pos:end], [int(np.prod(s)) for _, s in shapes],
                                     [context_kind(n) for n, _ in shapes])
    except Exception as e:  # a checksum collision or an encoder bug: still one clear line
        raise NicError(f"payload cannot be decoded ({type(e).__name__})")
    quantized = [QuantizedTensor(name=n, shape=s, step=np.float32(st), symbols=a)
                 for (n, s), st, a in zip(shapes, steps, arrays)]
    return header, quantized

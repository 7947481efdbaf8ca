"""The .nic file format (pure Python: struct + zlib + the entropy coder). All integers little-endian.

    offset  size  field
    0       4     magic b"NICJ"
    4       1     format version (1)
    5       1     signal kind: 0 point cloud, 1 image
    6       1     colour space: 0 BT.709 YCbCr (full range), 1 RGB
    7       1     colour bits per channel: 8 or 16
    8       1     SIREN in_dim
    9       1     SIREN out_dim
    10      2     SIREN width
    12      1     SIREN depth (sine layers; a linear layer follows)
    13      4     ω0 of the first layer (float32)
    17      4     ω of the other sine layers (float32)
    21      1     reference kind: 0 zeros, 1 seeded Sitzmann init, 2 init artefact
    22      4     reference seed (kind 1)
    26      8     reference id (kind 2): first 8 bytes of the artefact's content hash
    34      ...   signal part
                  point cloud: uint32 points, uint32 geometry CRC, uint8 voxelize flag,
                               3 × float32 offset, float32 scale     (coordinate = (xyz − offset)·scale)
                  image:       uint16 height, uint16 width
    ...     4·T   per-tensor quantization step (float32), T = 2·(depth + 1) tensors in pytree order
    ...     4     payload length P
    ...     P     range-coded symbols (nicjax.entropy), tensors in pytree order
    end−4   4     CRC32 of every byte before it

The symbol counts follow from the architecture, so they are not stored.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from nicjax import entropy
from nicjax.errors import NicError
from nicjax.quantize import QuantizedTensor, context_kind

MAGIC = b"NICJ"
VERSION = 1

SIGNAL_POINTCLOUD, SIGNAL_IMAGE = 0, 1
COLOUR_YCBCR709, COLOUR_RGB = 0, 1
REFERENCE_ZEROS, REFERENCE_SEEDED, REFERENCE_ARTEFACT = 0, 1, 2

_FIXED = struct.Struct("<4sBBBBBBHBffBI8s")
_POINTCLOUD = struct.Struct("<IIB3ff")
_IMAGE = struct.Struct("<HH")
_U32 = struct.Struct("<I")


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
    num_points: int = 0
    geometry_crc: int = 0
    voxelize: bool = False
    offset: tuple = (0.0, 0.0, 0.0)
    scale: float = 1.0
    # image
    height: int = 0
    image_width: int = 0
    steps: tuple = ()

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


def encode(header: Header, quantized: list[QuantizedTensor]) -> bytes:
    """Packs the header and range-codes the symbols. `header.steps` is taken from `quantized`."""
    shapes = header.tensor_shapes()
    if [(q.name, q.shape) for q in quantized] != shapes:
        raise ValueError("quantized tensors do not match the architecture in the header")
    header = dataclasses.replace(header, steps=tuple(float(q.step) for q in quantized))
    payload = entropy.encode_ints([q.symbols for q in quantized], [q.kind for q in quantized])
    out = bytearray(_FIXED.pack(
        MAGIC, VERSION, header.signal, header.colour_space, header.colour_bits, header.in_dim, header.out_dim,
        header.width, header.depth, header.omega0, header.omega, header.reference, header.reference_seed,
        header.reference_id))
    if header.signal == SIGNAL_POINTCLOUD:
        out += _POINTCLOUD.pack(header.num_points, header.geometry_crc, int(header.voxelize), *header.offset,
                                header.scale)
    elif header.signal == SIGNAL_IMAGE:
        out += _IMAGE.pack(header.height, header.image_width)
    else:
        raise ValueError(f"unknown signal kind {header.signal}")
    out += struct.pack(f"<{len(header.steps)}f", *header.steps)
    out += _U32.pack(len(payload)) + payload
    out += _U32.pack(zlib.crc32(out))
    return bytes(out)


def decode(data: bytes) -> tuple[Header, list[QuantizedTensor]]:
    """Parses and checks a .nic file; raises NicError with one clear line on anything wrong."""
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise NicError("not a nicjax file (bad magic number)")
    if len(data) < _FIXED.size:
        raise NicError(f"file is truncated ({len(data)} bytes, header alone needs {_FIXED.size})")
    fields = _FIXED.unpack_from(data, 0)
    version = fields[1]
    if version != VERSION:
        raise NicError(f"unsupported format version {version} (this nicjax reads version {VERSION})")
    (_, _, signal, colour_space, colour_bits, in_dim, out_dim, width, depth, omega0, omega, reference,
     reference_seed, reference_id) = fields
    pos = _FIXED.size
    extra = {}
    part = {SIGNAL_POINTCLOUD: _POINTCLOUD, SIGNAL_IMAGE: _IMAGE}.get(signal)
    if part is None:
        raise NicError(f"file is corrupted (unknown signal kind {signal})")
    if len(data) < pos + part.size:
        raise NicError("file is truncated (inside the header)")
    values = part.unpack_from(data, pos)
    pos += part.size
    if signal == SIGNAL_POINTCLOUD:
        n, crc, vox, ox, oy, oz, scale = values
        extra = dict(num_points=n, geometry_crc=crc, voxelize=bool(vox), offset=(ox, oy, oz), scale=scale)
    else:
        extra = dict(height=values[0], image_width=values[1])
    n_tensors = 2 * (depth + 1)
    need = pos + 4 * n_tensors + 4
    if len(data) < need:
        raise NicError("file is truncated (inside the header)")
    steps = struct.unpack_from(f"<{n_tensors}f", data, pos)
    pos += 4 * n_tensors
    (payload_len,) = _U32.unpack_from(data, pos)
    pos += 4
    if len(data) < pos + payload_len + 4:
        raise NicError(f"file is truncated ({len(data)} bytes, the header announces {pos + payload_len + 4})")
    if len(data) > pos + payload_len + 4:
        raise NicError(f"file has {len(data) - pos - payload_len - 4} unexpected trailing bytes")
    (crc,) = _U32.unpack_from(data, pos + payload_len)
    if zlib.crc32(data[:pos + payload_len]) != crc:
        raise NicError("checksum mismatch: the file is corrupted")
    header = Header(signal=signal, colour_space=colour_space, colour_bits=colour_bits, in_dim=in_dim,
                    out_dim=out_dim, width=width, depth=depth, omega0=omega0, omega=omega, reference=reference,
                    reference_seed=reference_seed, reference_id=reference_id, steps=steps, **extra)
    shapes = header.tensor_shapes()
    try:
        arrays = entropy.decode_ints(data[pos:pos + payload_len], [int(np.prod(s)) for _, s in shapes],
                                     [context_kind(n) for n, _ in shapes])
    except Exception as e:  # a checksum collision or an encoder bug: still one clear line
        raise NicError(f"payload cannot be decoded ({type(e).__name__})")
    quantized = [QuantizedTensor(name=n, shape=s, step=np.float32(st), symbols=a)
                 for (n, s), st, a in zip(shapes, steps, arrays)]
    return header, quantized

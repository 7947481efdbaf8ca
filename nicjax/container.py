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

Only what the encoder writes decodes ("canonical form"): once the header and the symbols are decoded, they are
encoded again and must give the file's bytes. That refuses every value an encoder cannot write (a step that is
not a positive finite bfloat16, a seed of 2^32 or more, a network that does not fit the signal), non-minimal
varints, a payload coded in the mode the encoder would not pick, and bytes after the symbols (measured: re-coding
1 M symbols costs 0.2-0.3 s, 60-80% of decoding them). The work a header may ask for is bounded before anything is
allocated: at most MAX_PARAMS coded values, no more than the payload can hold (`entropy.max_values`, ~1.45 M values
per payload byte at the coder's probability floor), images of at most MAX_IMAGE_SIDE pixels a side and
MAX_IMAGE_PIXELS in all.
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
MAX_IMAGE_SIDE = 65535  # pixels per side (each side is a varint; 16 bits were the format's first limit)
# Pixels per image, and per decode at any scale: a decode holds the float32 grid (8 B/pixel, built from 32 B/pixel
# of float64 temporaries), the network's outputs (4 B/pixel per channel) and float64 temporaries of the colour
# conversion (24 B/pixel each for RGB): measured on CPU, an RGB decode peaks at 1.04 GB of resident memory at 2^23
# pixels (4096×2048; 4K UHD, 3840×2160, fits) and at 1.78 GB at 2^24 (~89 B/pixel over the ~0.3 GB that Python,
# numpy and JAX take). signals.image.MAX_DECODED_PIXELS is this constant, so the encoder refuses larger images too.
MAX_IMAGE_PIXELS = 1 << 23
# Coded values (network parameters) per file: 64x the largest network of the experiments (170x9, 2.4e5), and
# what one decode holds in a few int64 copies (~1 GB at the cap, with the canonical re-coding).
MAX_PARAMS = 1 << 24
_MAX_FLOAT32 = float(np.finfo(np.float32).max)
# Latents (tensors of role "latent") are integers: their step is always 1 (the network that reads them sets their
# scale); quantize writes it, the decoder refuses any other.
LATENT_STEP = 1.0


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


def check_signal(signal: SignalInfo) -> None:
    """ValueError (one line) unless an encoder writes this signal section: point clouds in YCbCr (the paper's
    loss; nicjax codes them in nothing else), images of 1 to MAX_IMAGE_SIDE pixels a side, MAX_IMAGE_PIXELS in all."""
    if signal.kind not in (SIGNAL_POINTCLOUD, SIGNAL_IMAGE) or signal.colour_bits not in (8, 16) \
            or signal.colour_space not in (COLOUR_YCBCR709, COLOUR_RGB):
        raise ValueError(f"signal kind {signal.kind}, colour space {signal.colour_space}, {signal.colour_bits}-bit "
                         "colours cannot be stored")
    if signal.kind == SIGNAL_POINTCLOUD:
        if signal.colour_space != COLOUR_YCBCR709:
            raise ValueError("point-cloud colours are coded in YCbCr only")
        if not 0 <= signal.geometry_crc < 1 << 32:
            raise ValueError(f"geometry CRC {signal.geometry_crc} is not a 32-bit value")
        return
    h, w = signal.height, signal.width
    if signal.voxelize:
        raise ValueError("an image cannot be voxelized")
    if not (1 <= h <= MAX_IMAGE_SIDE and 1 <= w <= MAX_IMAGE_SIDE):
        raise ValueError(f"an image of {w}×{h} pixels: sides must be 1 to {MAX_IMAGE_SIDE}")
    if h * w > MAX_IMAGE_PIXELS:
        raise ValueError(f"an image of {w}×{h} pixels, over the {MAX_IMAGE_PIXELS} that nicjax decodes at once")


def _flags(header: Header) -> int:
    s, r = header.signal, header.reference
    check_signal(s)
    if r.kind not in (REFERENCE_ZEROS, REFERENCE_SEEDED, REFERENCE_ARTEFACT):
        raise ValueError(f"reference kind {r.kind} cannot be stored")
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


def representation_of(header: Header, representations):
    if header.representation not in representations:
        raise ValueError(f"representation {header.representation} is not known")
    return representations[header.representation]


def steps_bytes(steps) -> bytes:
    return struct.pack(f"<{len(steps)}H", *(step_bits(s) for s in steps))


def check_size(specs: list[TensorSpec]) -> None:
    total = sum(s.size for s in specs)
    if total > MAX_PARAMS:
        raise ValueError(f"{total} coded values (nicjax codes at most {MAX_PARAMS})")


def header_bytes(header: Header, steps, representations) -> bytes:
    """Everything before the payload, as the encoder writes it; ValueError for a header it cannot write."""
    rep = representation_of(header, representations)
    out = bytearray(MAGIC + bytes([VERSION, _flags(header)]))
    out += _signal_bytes(header.signal)
    out += bytes([header.representation]) + rep.config_bytes(header.model)
    out += _reference_bytes(header.reference)
    out += steps_bytes(steps)
    return bytes(out)


def payload_bytes(tensors: list[CodedTensor], encode_ints=entropy.encode_ints) -> bytes:
    return encode_ints([t.symbols for t in tensors], [ROLES.index(t.spec.role) for t in tensors])


def ordered_payload(rep, header: Header) -> bool:
    """Whether the file's symbols are coded against the geometry (the representation's `payload_arrays`, in
    stream order) rather than tensor by tensor with one context set per role."""
    return hasattr(rep, "ordered_payload") and rep.ordered_payload(header.model)


def encode(header: Header, tensors: list[CodedTensor], representations, geometry=None) -> bytes:
    """The file's bytes. `representations`: registry id → representation (nicjax.representations.REGISTRY);
    `geometry`: the coded geometry, for representations that code their symbols against it (latent contexts).

    ValueError for anything the decoder would refuse: the header written is parsed back as `decode` parses it."""
    rep = representation_of(header, representations)
    specs = rep.tensors(header.model)
    if [t.spec for t in tensors] != specs:
        raise ValueError("coded tensors do not match the representation in the header")
    check_size(specs)
    head = header_bytes(header, [t.step for t in tensors], representations)
    try:
        parsed, _ = parse_header(Reader(head, len(head), pos=3), representations)
    except NicError as e:
        why = str(e)
        if why.startswith("file is corrupted (") and why.endswith(")"):
            why = why[len("file is corrupted ("):-1]
        raise ValueError(f"header cannot be stored: {why}")
    if header_bytes(parsed, parsed.steps, representations) != head:
        raise ValueError("header cannot be stored: it does not read back as written")
    if ordered_payload(rep, header):
        if geometry is None:
            raise ValueError("this file's symbols are coded against the geometry: give it")
        plan = rep.payload_plan(header.model, geometry)
        arrays, kinds, segments = rep.payload_arrays(header.model, [t.symbols for t in tensors], plan)
        payload = entropy.encode_ints(arrays, kinds, ordered=True, segments=segments)
    else:
        payload = payload_bytes(tensors)
    out = bytearray(head + payload)
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


def read_steps(read: Reader, n: int) -> tuple:
    """The steps section: n bfloat16 steps, each positive and finite."""
    steps = tuple(step_from_bits(b) for b in struct.unpack(f"<{n}H", read.take(2 * n)))
    for s in steps:
        if not (np.isfinite(s) and s > 0):
            raise NicError(f"file is corrupted (quantization step {s:g})")
    return steps


def check_canonical_header(data: bytes, header: Header, end: int, header_bytes=header_bytes, *args) -> None:
    """NicError unless data[:end] is what the encoder writes for `header` (canonical form)."""
    try:
        expected = header_bytes(header, header.steps, *args)
    except ValueError as e:
        raise NicError(f"file is corrupted ({e})")
    if expected != data[:end]:
        raise NicError("file is corrupted (its header is not as an encoder writes it)")


def read_tensors(data: bytes, read: Reader, header: Header, specs: list[TensorSpec], decode_ints=entropy.decode_ints,
                 encode_ints=entropy.encode_ints, max_values=entropy.max_values, representations=None,
                 geometry=None) -> list[CodedTensor]:
    """The payload (which runs from the cursor to the checksum), decoded and checked to be in canonical form: the
    symbols coded again give the same bytes. The work is bounded before anything is decoded. A representation that
    codes its symbols against the geometry (`ordered_payload`) needs `representations` and `geometry`."""
    payload = data[read.pos:read.end]
    total = sum(s.size for s in specs)
    try:
        check_size(specs)
    except ValueError as e:
        raise NicError(f"file is corrupted ({e})")
    if total > max_values(len(payload)):
        raise NicError(f"file is corrupted (a payload of {len(payload)} bytes cannot hold {total} values)")
    kinds = [ROLES.index(s.role) for s in specs]
    rep = representation_of(header, representations) if representations is not None else None
    ordered = rep is not None and ordered_payload(rep, header)
    if ordered and geometry is None:
        raise NicError("file's payload decodes only with its geometry (a latent file coded with contexts)")
    try:
        if ordered:
            plan = rep.payload_plan(header.model, geometry)
            with entropy.OrderedDecoder(payload, total) as dec:
                arrays = rep.read_payload(header.model, dec.read, plan)
                dec.finish()
                canonical = dec.recoded() == payload  # = encode_ints of the arrays in stream order, modes given
        else:
            arrays, modes = decode_ints(payload, [s.size for s in specs], kinds, with_modes=True)
            canonical = encode_ints(arrays, kinds, modes) == payload
    except NicError:
        raise
    except MemoryError:
        raise NicError("payload cannot be decoded (out of memory)")
    except Exception as e:  # a damaged payload whose checksum collided: still one clear line
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NicError(f"file is corrupted ({first})")
    if not canonical:
        raise NicError("file is corrupted (its payload is not as an encoder writes it)")
    for spec, step, a in zip(specs, header.steps, arrays):
        # q·step stands for a difference of two float32 weights: the encoder never writes one that overflows
        if a.size and float(np.abs(a).max()) * step > _MAX_FLOAT32:
            raise NicError(f"file is corrupted ({spec.name}: values beyond float32)")
    return [CodedTensor(spec, np.float32(st), a) for spec, st, a in zip(specs, header.steps, arrays)]


def parse_header(read: Reader, representations) -> tuple[Header, list[TensorSpec]]:
    """The header of a version-3 file from the cursor past the version byte through the steps section."""
    signal, reference_kind = read_signal(read, read.byte())
    rep_id = read.byte()
    if rep_id not in representations:
        raise NicError(f"file uses representation {rep_id}, which this nicjax does not know")
    rep = representations[rep_id]
    model = rep.config_from_bytes(read, signal)
    reference = read_reference(read, reference_kind)
    specs = rep.tensors(model)
    try:
        check_size(specs)
    except ValueError as e:
        raise NicError(f"file is corrupted ({e})")
    steps = read_steps(read, len(specs))
    if any(spec.role == "latent" and step != LATENT_STEP for spec, step in zip(specs, steps)):
        raise NicError(f"file is corrupted (latents are coded with step {LATENT_STEP:g})")
    return Header(signal, rep_id, model, reference, steps), specs


def decode(data: bytes, representations, geometry=None) -> tuple[Header, list[CodedTensor]]:
    """Parses and checks a .nic file (version 3 or 2); NicError with one clear line on anything wrong.
    `geometry`: the coded geometry, or a function of the header that returns it (and may refuse the file first),
    for files whose symbols are coded against it (latent contexts); other files do not need it."""
    header, read, specs = decode_header(data, representations)
    if read is None:
        from nicjax import container_v2

        return container_v2.decode(bytes(data), representations)
    if callable(geometry) and ordered_payload(representation_of(header, representations), header):
        geometry = geometry(header)
    return header, read_tensors(bytes(data), read, header, specs, representations=representations,
                                geometry=geometry)


def decode_header(data: bytes, representations):
    """(header, reader at the payload, tensor specs) of a version-3 file, checked up to its payload; (None, None,
    None) for a version-2 file. NicError with one clear line on anything wrong."""
    data = bytes(data)
    if checked(data) == 2:
        return None, None, None
    # Past the checksum, a malformed header means a damaged file whose checksum collided (or an encoder bug).
    read = Reader(data, len(data) - 4, pos=3)
    header, specs = parse_header(read, representations)
    check_canonical_header(data, header, read.pos, header_bytes, representations)
    return header, read, specs

"""Reads format-version-2 .nic files (SIREN only; 2026-11) into version 3's Header, so users' files keep decoding.

Version 2 has no representation byte and orders its sections differently:

    2 magic b"NJ", 1 version (2), 1 flags (as in version 3), the SIREN's configuration (the same bytes version 3
    writes for it), the reference (seed or id), the signal part, the steps, the payload coded by
    nicjax.entropy_v2 (kernels context 0, biases context 1), and the CRC32.

As in version 3, only what the version-2 encoder wrote decodes (canonical form): the header and the symbols are
written again (`encode`, kept for that and for tests) and must give the file's bytes.
"""

from __future__ import annotations

import zlib

from nicjax import container, entropy_v2
from nicjax.errors import NicError

VERSION = 2
SIREN_ID = 0  # the only representation version 2 knew


def header_bytes(header: container.Header, steps, representations) -> bytes:
    """Everything before the payload, as nicjax 2026-11 wrote it; ValueError for what it could not write."""
    if header.representation != SIREN_ID:
        raise ValueError("version-2 files hold SIREN networks only")
    rep = representations[SIREN_ID]
    out = bytearray(container.MAGIC + bytes([VERSION, container._flags(header)]))
    out += rep.config_bytes(header.model)
    out += container._reference_bytes(header.reference)
    out += container._signal_bytes(header.signal)
    out += container.steps_bytes(steps)
    return bytes(out)


def encode(header: container.Header, tensors: list[container.CodedTensor], representations) -> bytes:
    """A version-2 file's bytes (what nicjax 2026-11 wrote): for the canonical-form check and for tests."""
    specs = representations[SIREN_ID].tensors(header.model)
    if [t.spec for t in tensors] != specs:
        raise ValueError("coded tensors do not match the representation in the header")
    container.check_size(specs)
    out = bytearray(header_bytes(header, [t.step for t in tensors], representations))
    out += container.payload_bytes(tensors, entropy_v2.encode_ints)
    out += container.U32.pack(zlib.crc32(out))
    return bytes(out)


def decode(data: bytes, representations) -> tuple[container.Header, list[container.CodedTensor]]:
    """`data` has passed container.checked (magic, version 2, CRC)."""
    read = container.Reader(data, len(data) - 4, pos=3)
    flags = read.byte()
    rep = representations[SIREN_ID]
    # The SIREN's bytes come before the signal part: skip them, then parse them once the signal is known.
    config = container.Reader(data, read.end, read.pos)
    rep.config_from_bytes(read, None)
    config.end = read.pos
    reference = container.read_reference(read, flags >> 5 & 3)  # the kind is checked by read_signal
    signal, _ = container.read_signal(read, flags)
    model = rep.config_from_bytes(config, signal)
    specs = rep.tensors(model)
    try:
        container.check_size(specs)
    except ValueError as e:
        raise NicError(f"file is corrupted ({e})")
    steps = container.read_steps(read, len(specs))
    header = container.Header(signal, SIREN_ID, model, reference, steps)
    container.check_canonical_header(data, header, read.pos, header_bytes, representations)
    tensors = container.read_tensors(data, read, header, specs, entropy_v2.decode_ints, entropy_v2.encode_ints,
                                     entropy_v2.max_values)
    return header, tensors

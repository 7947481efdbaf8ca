"""Reads format-version-2 .nic files (SIREN only; 2026-11) into version 3's Header, so users' files keep decoding.

Version 2 has no representation byte and orders its sections differently:

    2 magic b"NJ", 1 version (2), 1 flags (as in version 3), the SIREN's configuration (the same bytes version 3
    writes for it), the reference (seed or id), the signal part, the steps, the payload coded by
    nicjax.entropy_v2 (kernels context 0, biases context 1), and the CRC32.
"""

from __future__ import annotations

from nicjax import container, entropy_v2

SIREN_ID = 0  # the only representation version 2 knew


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
    steps, tensors = container.read_tensors(data, read, rep.tensors(model), entropy_v2.decode_ints)
    return container.Header(signal, SIREN_ID, model, reference, steps), tensors

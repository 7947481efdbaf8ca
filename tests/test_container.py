import dataclasses
import subprocess
import sys
import zlib

import jax
import numpy as np
import pytest

from nicjax import container, entropy, quantize, representations
from nicjax.errors import NicError
from nicjax.representations import siren

REGISTRY = representations.REGISTRY
SEEDED = container.Reference(container.REFERENCE_SEEDED, seed=7)
CLOUD = container.SignalInfo(container.SIGNAL_POINTCLOUD, geometry_crc=0xDEADBEEF, voxelize=True)


def make_file(reference=SEEDED, seed=0, signal=CLOUD):
    config = siren.SirenConfig(width=16, depth=2)
    params = siren.init_params(config, jax.random.key(seed))
    header = container.Header(signal, siren.SIREN.id, config, reference)
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    q = quantize.quantize(params, zeros, 64, specs=siren.SIREN.tensors(config))
    return header, q, container.encode(header, q, REGISTRY)


def test_round_trip_is_bit_exact():
    header, q, data = make_file()
    h2, q2 = container.decode(data, REGISTRY)
    assert dataclasses.replace(h2, steps=()) == header
    assert h2.steps == tuple(float(t.step) for t in q)
    for a, b in zip(q, q2):
        assert (a.spec, a.step) == (b.spec, b.step)
        np.testing.assert_array_equal(a.symbols, b.symbols)
    assert container.encode(h2, q2, REGISTRY) == data  # re-encoding the decoded file gives the same bytes


def test_image_header_round_trip():
    _, q, _ = make_file()
    image = container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, height=512, width=768)
    config = siren.SirenConfig(in_dim=2, out_dim=3, width=16, depth=2)
    header = container.Header(image, siren.SIREN.id, config)
    params = siren.init_params(config, jax.random.key(0))
    q = quantize.quantize(params, params, 16, specs=siren.SIREN.tensors(config))
    h2, _ = container.decode(container.encode(header, q, REGISTRY), REGISTRY)
    assert h2.signal == image and h2.model == config


def forged(data: bytes, pos: int, value: int) -> bytes:
    """`data` with byte `pos` set to `value` and the CRC recomputed (what a buggy writer or an attacker makes)."""
    body = bytearray(data[:-4])
    body[pos] = value
    return bytes(body) + container.U32.pack(zlib.crc32(body))


def test_a_network_that_does_not_fit_the_signal_is_refused():
    """A point-cloud file whose network takes 2 inputs, or an image's with 2 outputs: the encoder cannot write it,
    and such a file is damaged, not decoded."""
    with pytest.raises(ValueError, match="inputs"):
        make_file(signal=container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, height=4, width=4))
    _, _, data = make_file()
    dims = 3 + 1 + 4 + 1  # magic and version, flags, geometry CRC, representation: then in_dim·16 + out_dim
    assert data[dims] == 0x33
    for bad in (0x23, 0x31, 0x34, 0x13):
        with pytest.raises(NicError, match="inputs"):
            container.decode(forged(data, dims, bad), REGISTRY)


def test_what_no_encoder_writes_is_refused_even_with_a_valid_checksum():
    """Canonical form: a non-minimal varint, a step that is not positive and finite, a seed of 2^32, trailing
    bytes, an image side of 0 or over the limits: each with the CRC recomputed."""
    _, _, data = make_file()
    seed_at = 3 + 1 + 4 + 1 + 1 + 1 + 1 + 4
    assert data[seed_at] == 7
    head, rest = data[:seed_at], data[seed_at + 1:-4]

    def crc(body):
        return body + container.U32.pack(zlib.crc32(body))

    bad = [crc(head + b"\x87\x00" + rest),  # seed 7 as a two-byte varint
           crc(head + b"\x80\x80\x80\x80\x10" + rest),  # seed 2^32
           crc(data[:-4] + b"\x00"),  # a trailing byte
           ]
    steps_at = seed_at + 1
    for bits in (0x0000, 0x8000 | 0x3C00, 0x7F80, 0x7FC0, 0xFF80):  # 0, negative, +inf, NaN, -inf
        bad.append(crc(data[:steps_at] + bits.to_bytes(2, "little") + data[steps_at + 2:-4]))
    for b in bad:
        with pytest.raises(NicError, match="corrupted"):
            container.decode(b, REGISTRY)
    image = container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, height=4, width=4)
    config = siren.SirenConfig(in_dim=2, out_dim=3, width=16, depth=2)
    params = siren.init_params(config, jax.random.key(0))
    q = quantize.quantize(params, params, 16, specs=siren.SIREN.tensors(config))
    for h, w in ((0, 4), (65536, 1), (4097, 2048), (1 << 30, 1)):
        header = container.Header(dataclasses.replace(image, height=h, width=w), siren.SIREN.id, config)
        with pytest.raises(ValueError, match="pixels"):
            container.encode(header, q, REGISTRY)
    data = container.encode(container.Header(image, siren.SIREN.id, config), q, REGISTRY)
    for varints in (b"\x00\x04", b"\x80\x80\x04\x04", b"\x81\x80\x04\x80\x80\x04"):  # 0 high, 65536 high, 65537²
        forged_file = crc(data[:4] + varints + data[6:-4])
        with pytest.raises(NicError, match="corrupted"):
            container.decode(forged_file, REGISTRY)


def test_16_bit_colour_images_and_rgb_clouds_are_refused():
    """What no encoder writes: a 16-bit image with three outputs (16-bit images are grayscale), a point cloud in
    RGB (clouds are coded in YCbCr)."""
    with pytest.raises(ValueError, match="outputs"):
        make_file(signal=container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, 16, height=4, width=4))
    with pytest.raises(ValueError, match="YCbCr"):
        make_file(signal=dataclasses.replace(CLOUD, colour_space=container.COLOUR_RGB))


def test_the_payload_bounds_the_work_a_header_asks_for():
    """A header may not ask for more values than the payload can hold (entropy.max_values) or than MAX_PARAMS."""
    config = siren.SirenConfig(width=2048, depth=4)  # 1.3e7 parameters, within MAX_PARAMS
    assert config.num_params() <= container.MAX_PARAMS
    _, _, data = make_file()
    width_at = 3 + 1 + 4 + 1 + 1
    assert data[width_at] == 16
    head = data[:width_at] + container.varint(2048) + bytes([4]) + data[width_at + 2:]
    # the steps section is now too short for the larger network: refused as a header that runs past the end,
    # or by the payload bound, in well under a second
    import time
    t = time.perf_counter()
    with pytest.raises(NicError, match="corrupted"):
        container.decode(head[:-4] + container.U32.pack(zlib.crc32(head[:-4])), REGISTRY)
    assert time.perf_counter() - t < 2
    with pytest.raises(ValueError, match="parameters"):
        siren.check_config(siren.SirenConfig(width=4096, depth=3))


def test_every_truncation_is_rejected():
    _, _, data = make_file()
    for n in range(len(data)):
        with pytest.raises(NicError):
            container.decode(data[:n], REGISTRY)


def test_every_single_bit_flip_is_rejected():
    _, _, data = make_file()
    rng = np.random.default_rng(0)
    for pos in range(len(data)):
        corrupted = bytearray(data)
        corrupted[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(NicError):
            container.decode(bytes(corrupted), REGISTRY)


def test_garbage_and_trailing_bytes_are_rejected():
    _, _, data = make_file()
    with pytest.raises(NicError, match="magic"):
        container.decode(b"PNG\x00" + data[4:], REGISTRY)
    with pytest.raises(NicError, match="checksum"):
        container.decode(data + b"\0", REGISTRY)
    with pytest.raises(NicError, match="version 1"):  # what nicjax wrote before format version 2
        container.decode(b"NICJ\x01" + data[3:], REGISTRY)
    with pytest.raises(NicError, match="version 7"):
        container.decode(data[:2] + b"\x07" + data[3:], REGISTRY)
    with pytest.raises(NicError):
        container.decode(b"", REGISTRY)


def test_header_is_packed():
    """A seeded 16x2 cloud file: 33 bytes besides the payload (the layout in the module docstring)."""
    header, q, data = make_file()
    payload = entropy.encode_ints([t.symbols for t in q], [container.ROLES.index(t.spec.role) for t in q])
    # magic+version 3, flags 1, geometry CRC 4, representation 1, dims 1, width 1, depth 1, ω0 and ω 4, seed 1,
    # 6 steps × 2, CRC 4
    assert len(data) - len(payload) == 33
    assert data[-4 - len(payload):-4] == payload


def test_steps_are_stored_exactly():
    """The quantizer only picks steps the header holds exactly (bfloat16), rounding up by less than 2^-7."""
    rng = np.random.default_rng(0)
    for step in np.exp(rng.uniform(-20, 5, 200)).astype(np.float32):
        s = container.storable_step(step)
        assert step <= s < step * (1 + 2.0 ** -7)
        assert int(s.view(np.uint32)) & 0xFFFF == 0
        assert container.storable_step(s) == s
    header, q, data = make_file()
    _, q2 = container.decode(data, REGISTRY)
    assert [t.step for t in q2] == [t.step for t in q]
    bad = [dataclasses.replace(q[0], step=np.float32(0.1))] + q[1:]
    with pytest.raises(ValueError, match="storable"):
        container.encode(header, bad, REGISTRY)


def test_omega_must_be_exact_in_float16():
    header = make_file()[0]
    ok = dataclasses.replace(header, model=dataclasses.replace(header.model, omega0=37.5))
    assert container.decode(container.encode(ok, make_file()[1], REGISTRY), REGISTRY)[0].model.omega0 == 37.5
    bad = dataclasses.replace(header, model=dataclasses.replace(header.model, omega0=30.1))
    with pytest.raises(ValueError, match="float16"):
        container.encode(bad, make_file()[1], REGISTRY)


def test_the_container_does_not_import_jax():
    """The file format is numpy only: a tool that reads headers need not load jax."""
    code = ("import sys, nicjax.container, nicjax.container_v2, nicjax.entropy; "
            "sys.exit(any(m == 'jax' or m.startswith('jax.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


GOLDEN_V2 = bytes.fromhex("4e4a02203304018053804fac0267452301243ca43cf63c243d2d94099f4319b2b91e506b"
                          "b48f25fe26a63f7b401a6cd49d0d")


def golden_tensors(config):
    from test_entropy import golden_arrays

    symbols, q = golden_arrays()[0], []
    for k, spec in enumerate(siren.SIREN.tensors(config)):
        q.append(container.CodedTensor(spec, container.storable_step(0.01 * (k + 1)), symbols[:spec.size]))
        symbols = symbols[spec.size:]
    return q


GOLDEN_HEADER = container.Header(
    container.SignalInfo(container.SIGNAL_POINTCLOUD, geometry_crc=0x01234567), siren.SIREN.id,
    siren.SirenConfig(in_dim=3, out_dim=3, width=4, depth=1, omega0=60.0, omega=30.0),
    container.Reference(container.REFERENCE_SEEDED, seed=300))


def test_golden_version_2_file_still_decodes():
    """A version-2 file written once by nicjax 2026-11 and pinned: magic "NJ", version 2, flags 0x20 (point cloud,
    YCbCr, 8-bit, seeded), dims 0x33, width 4, depth 1, ω0 60 and ω 30 (float16), seed 300 (varint ac 02),
    geometry CRC, four bfloat16 steps, payload (nicjax.entropy_v2), CRC32. Users have such files on disk."""
    header, tensors = container.decode(GOLDEN_V2, REGISTRY)
    assert dataclasses.replace(header, steps=()) == GOLDEN_HEADER
    for a, b in zip(golden_tensors(GOLDEN_HEADER.model), tensors):
        assert (a.spec, a.step) == (b.spec, b.step)
        np.testing.assert_array_equal(a.symbols, b.symbols)


GOLDEN_V3 = bytes.fromhex("4e4a032067452301003304018053804fac02243ca43cf63c243d975797f36eabfd4e7d901cd3a6300bb14b"
                          "7d4845c0c7de")


def test_golden_version_3_file():
    """A version-3 file written once and pinned: magic "NJ", version 3, flags 0x20 (point cloud, YCbCr, 8-bit,
    seeded), geometry CRC 0x01234567, representation 0 (SIREN): dims 0x33, width 4, depth 1, ω0 60 and ω 30
    (float16); seed 300 (varint ac 02), four bfloat16 steps, payload (nicjax.entropy), CRC32. Any change to the
    format or the coder must be deliberate (a new version, and a reader for this one)."""
    tensors = golden_tensors(GOLDEN_HEADER.model)
    assert container.encode(GOLDEN_HEADER, tensors, REGISTRY) == GOLDEN_V3
    header, decoded = container.decode(GOLDEN_V3, REGISTRY)
    assert dataclasses.replace(header, steps=()) == GOLDEN_HEADER
    for a, b in zip(tensors, decoded):
        assert (a.spec, a.step) == (b.spec, b.step)
        np.testing.assert_array_equal(a.symbols, b.symbols)

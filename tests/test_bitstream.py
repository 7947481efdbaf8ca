import dataclasses

import jax
import numpy as np
import pytest

from nicjax import bitstream, entropy_v2 as entropy, quantize, siren  # version 2 files: the v2 coder
from nicjax.errors import NicError


def make_file(reference=bitstream.REFERENCE_SEEDED, seed=0):
    config = siren.SirenConfig(width=16, depth=2)
    params = siren.init_params(config, jax.random.key(seed))
    header = bitstream.Header(
        signal=bitstream.SIGNAL_POINTCLOUD, colour_space=bitstream.COLOUR_YCBCR709, colour_bits=8, in_dim=3,
        out_dim=3, width=16, depth=2, omega0=30.0, omega=30.0, reference=reference, reference_seed=7,
        geometry_crc=0xDEADBEEF, voxelize=True)
    zeros = jax.tree_util.tree_map(np.zeros_like, params)
    q = quantize.quantize(params, zeros, 64)
    return header, q, bitstream.encode(header, q)


def test_round_trip_is_bit_exact():
    header, q, data = make_file()
    h2, q2 = bitstream.decode(data)
    assert dataclasses.replace(h2, steps=()) == header
    assert h2.steps == tuple(float(t.step) for t in q)
    for a, b in zip(q, q2):
        assert (a.name, a.shape, a.step) == (b.name, b.shape, b.step)
        np.testing.assert_array_equal(a.symbols, b.symbols)
    assert bitstream.encode(h2, q2) == data  # re-encoding the decoded file gives the same bytes


def test_image_header_round_trip():
    _, q, _ = make_file()
    header = bitstream.Header(signal=bitstream.SIGNAL_IMAGE, colour_space=bitstream.COLOUR_RGB, colour_bits=8,
                              in_dim=3, out_dim=3, width=16, depth=2, omega0=30.0, omega=30.0, height=512,
                              image_width=768)
    h2, _ = bitstream.decode(bitstream.encode(header, q))
    assert (h2.height, h2.image_width, h2.signal) == (512, 768, bitstream.SIGNAL_IMAGE)


def test_every_truncation_is_rejected():
    _, _, data = make_file()
    for n in range(len(data)):
        with pytest.raises(NicError):
            bitstream.decode(data[:n])


def test_every_single_bit_flip_is_rejected():
    _, _, data = make_file()
    rng = np.random.default_rng(0)
    for pos in range(len(data)):
        corrupted = bytearray(data)
        corrupted[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(NicError):
            bitstream.decode(bytes(corrupted))


def test_garbage_and_trailing_bytes_are_rejected():
    _, _, data = make_file()
    with pytest.raises(NicError, match="magic"):
        bitstream.decode(b"PNG\x00" + data[4:])
    with pytest.raises(NicError, match="checksum"):
        bitstream.decode(data + b"\0")
    with pytest.raises(NicError, match="version 1"):  # what nicjax wrote before format version 2
        bitstream.decode(b"NICJ\x01" + data[3:])
    with pytest.raises(NicError, match="version 7"):
        bitstream.decode(data[:2] + b"\x07" + data[3:])
    with pytest.raises(NicError):
        bitstream.decode(b"")


def test_header_is_packed():
    """A seeded 16x2 cloud file: 32 bytes besides the payload (the layout in the module docstring)."""
    header, q, data = make_file(reference=bitstream.REFERENCE_SEEDED)
    payload = entropy.encode_ints([t.symbols for t in q], [t.kind for t in q])
    # magic+version 3, flags 1, dims 1, width 1, depth 1, ω0 and ω 4, seed 1, geometry CRC 4, 6 steps × 2, CRC 4
    assert len(data) - len(payload) == 32
    assert data[-4 - len(payload):-4] == payload


def test_steps_are_stored_exactly():
    """The quantizer only picks steps the header holds exactly (bfloat16), rounding up by less than 2^-7."""
    rng = np.random.default_rng(0)
    for step in np.exp(rng.uniform(-20, 5, 200)).astype(np.float32):
        s = quantize.storable_step(step)
        assert step <= s < step * (1 + 2.0 ** -7)
        assert int(s.view(np.uint32)) & 0xFFFF == 0
        assert quantize.storable_step(s) == s
    header, q, data = make_file()
    _, q2 = bitstream.decode(data)
    assert [t.step for t in q2] == [t.step for t in q]
    bad = [dataclasses.replace(q[0], step=np.float32(0.1))] + q[1:]
    with pytest.raises(ValueError, match="storable"):
        bitstream.encode(header, bad)


def test_omega_must_be_exact_in_float16():
    header = make_file()[0]
    assert dataclasses.replace(header, omega0=37.5).omega0 == 37.5
    with pytest.raises(ValueError, match="float16"):
        dataclasses.replace(header, omega0=30.1)


GOLDEN = bytes.fromhex("4e4a02203304018053804fac0267452301243ca43cf63c243d2d94099f4319b2b91e506b"
                       "b48f25fe26a63f7b401a6cd49d0d")


def test_golden_file():
    """A version-2 file written once and pinned: magic "NJ", version 2, flags 0x20 (point cloud, YCbCr, 8-bit,
    seeded), dims 0x33, width 4, depth 1, ω0 60 and ω 30 (float16), seed 300 (varint ac 02), geometry CRC, four
    bfloat16 steps, payload, CRC32. Any change to the format or the coder must be deliberate (a new version)."""
    from test_entropy import golden_arrays

    header = bitstream.Header(signal=bitstream.SIGNAL_POINTCLOUD, colour_space=bitstream.COLOUR_YCBCR709,
                              colour_bits=8, in_dim=3, out_dim=3, width=4, depth=1, omega0=60.0, omega=30.0,
                              reference=bitstream.REFERENCE_SEEDED, reference_seed=300, geometry_crc=0x01234567)
    symbols, q = golden_arrays()[0], []
    for k, (name, shape) in enumerate(header.tensor_shapes()):
        n = int(np.prod(shape))
        q.append(quantize.QuantizedTensor(name=name, shape=shape, step=quantize.storable_step(0.01 * (k + 1)),
                                          symbols=symbols[:n]))
        symbols = symbols[n:]
    assert bitstream.encode(header, q) == GOLDEN
    h2, q2 = bitstream.decode(GOLDEN)
    assert dataclasses.replace(h2, steps=()) == header
    for a, b in zip(q, q2):
        assert a.step == b.step
        np.testing.assert_array_equal(a.symbols, b.symbols)

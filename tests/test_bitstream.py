import dataclasses

import jax
import numpy as np
import pytest

from nicjax import bitstream, quantize, siren
from nicjax.errors import NicError


def make_file(reference=bitstream.REFERENCE_ZEROS, seed=0):
    config = siren.SirenConfig(width=16, depth=2)
    params = siren.init_params(config, jax.random.key(seed))
    header = bitstream.Header(
        signal=bitstream.SIGNAL_POINTCLOUD, colour_space=bitstream.COLOUR_YCBCR709, colour_bits=8, in_dim=3,
        out_dim=3, width=16, depth=2, omega0=30.0, omega=30.0, reference=reference, reference_seed=7,
        num_points=1234, geometry_crc=0xDEADBEEF, voxelize=True, offset=(1.5, -2.0, 3.25), scale=0.125)
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
    with pytest.raises(NicError, match="trailing"):
        bitstream.decode(data + b"\0")
    with pytest.raises(NicError):
        bitstream.decode(b"")

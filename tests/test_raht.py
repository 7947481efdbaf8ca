import zlib

import numpy as np
import pytest

from nicjax.baselines import raht
from nicjax.signals.color import rgb_to_ycbcr


def _cloud(n=3000, grid=64, seed=0):
    """Random unique voxels on a grid^3 lattice with smooth colours (plus a little noise)."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(grid**3, size=n, replace=False)
    coords = np.stack(np.unravel_index(flat, (grid, grid, grid)), axis=1).astype(np.int64)
    t = coords / grid
    rgb = np.stack(
        [
            128 + 100 * np.sin(2 * np.pi * t[:, 0]),
            128 + 100 * np.cos(2 * np.pi * t[:, 1]) * t[:, 2],
            60 + 150 * t[:, 2] * t[:, 0],
        ],
        axis=1,
    )
    rgb += rng.normal(0, 3, rgb.shape)
    return coords, np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _y_psnr(rgb_ref, rgb_dec):
    mse = np.mean((rgb_to_ycbcr(rgb_ref)[:, 0] - rgb_to_ycbcr(rgb_dec)[:, 0]) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_perfect_reconstruction_without_quantization():
    coords, rgb = _cloud()
    attrs = rgb_to_ycbcr(rgb)
    coef, structure = raht.raht_forward(coords, attrs)
    assert coef.shape == attrs.shape
    np.testing.assert_allclose(raht.raht_inverse(coef, structure), attrs, atol=1e-9)


def test_orthonormal_energy_preserved():
    coords, _ = _cloud(seed=1)
    attrs = np.random.default_rng(2).normal(size=(len(coords), 2))
    coef, _ = raht.raht_forward(coords, attrs)
    np.testing.assert_allclose((coef**2).sum(axis=0), (attrs**2).sum(axis=0), rtol=1e-12)


def test_dc_is_scaled_mean_and_constant_signal_has_no_detail():
    coords, _ = _cloud(n=500, seed=3)
    attrs = np.full((len(coords), 1), 7.0)
    coef, _ = raht.raht_forward(coords, attrs)
    # Canonical order puts the DC first: sqrt(N) * mean; every high-pass coefficient of a constant is zero.
    np.testing.assert_allclose(coef[0, 0], np.sqrt(len(coords)) * 7.0)
    np.testing.assert_allclose(coef[1:], 0.0, atol=1e-9)


def test_coefficients_do_not_depend_on_point_order():
    coords, rgb = _cloud(n=1000, seed=4)
    attrs = rgb_to_ycbcr(rgb)
    perm = np.random.default_rng(5).permutation(len(coords))
    coef, _ = raht.raht_forward(coords, attrs)
    coef_perm, structure = raht.raht_forward(coords[perm], attrs[perm])
    np.testing.assert_array_equal(coef, coef_perm)
    np.testing.assert_allclose(raht.raht_inverse(coef_perm, structure), attrs[perm], atol=1e-9)


def test_two_points_butterfly():
    # Neighbours along x merge at the first step with weights 1, 1: low = (a+b)/sqrt2, high = (b-a)/sqrt2.
    coef, _ = raht.raht_forward(np.array([[0, 0, 0], [1, 0, 0]]), np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(coef[:, 0], [4 / np.sqrt(2), 2 / np.sqrt(2)])


def test_bitstream_round_trip_matches_encoder_reconstruction():
    coords, rgb = _cloud(n=2000, seed=6)
    data, recon = raht.encode_with_reconstruction(coords, rgb, step=4.0)
    assert data[:3] == b"RH\x03"
    np.testing.assert_array_equal(raht.decode(data, coords), recon)
    assert _y_psnr(rgb, recon) > 35
    # Decoding with the points in another order returns colours in that order.
    perm = np.random.default_rng(7).permutation(len(coords))
    np.testing.assert_array_equal(raht.decode(data, coords[perm]), recon[perm])
    # Float coordinates holding integers (as PLY files store them) are accepted.
    np.testing.assert_array_equal(raht.decode(data, coords.astype(np.float32)), recon)


def test_version_2_stream_still_decodes():
    """Version 2 files (the per-symbol coder, entropy_v2) decode through the version-2 path."""
    import struct

    from nicjax import entropy, entropy_v2

    coords, rgb = _cloud(n=1500, seed=12)
    step = 6.0
    data3, recon = raht.encode_with_reconstruction(coords, rgb, step)
    structure = raht.raht_structure(coords)
    q = np.rint(raht.raht_forward_with_structure(structure, rgb_to_ycbcr(rgb)) / step).astype(np.int64)
    payload3 = data3[raht._HEADER.size:-raht._TRAILER.size]
    assert entropy.encode_ints([q[:, ch] for ch in range(3)], [0, 1, 2]) == payload3  # same symbols as v3
    body = struct.pack("<2sBfI", b"RH", 2, step, raht.geometry_crc(coords))
    body += entropy_v2.encode_ints([q[:, ch] for ch in range(3)], [0, 1, 2])
    data2 = body + zlib.crc32(body).to_bytes(4, "little")
    np.testing.assert_array_equal(raht.decode(data2, coords), recon)
    # A version-2 payload labelled version 3 does not decode as one (the coders differ).
    body3 = b"RH\x03" + body[3:]
    with pytest.raises(ValueError):
        raht.decode(body3 + zlib.crc32(body3).to_bytes(4, "little"), coords)


def test_rate_and_psnr_fall_as_step_grows():
    coords, rgb = _cloud(n=2000, seed=8)
    rates, psnrs = [], []
    for step in [1, 4, 16, 64]:
        data, recon = raht.encode_with_reconstruction(coords, rgb, step)
        rates.append(len(data))
        psnrs.append(_y_psnr(rgb, recon))
    assert all(np.diff(rates) < 0), rates
    assert all(np.diff(psnrs) < 0), psnrs


def test_corrupted_or_truncated_stream_raises():
    coords, rgb = _cloud(n=800, seed=9)
    data = raht.encode(coords, rgb, step=8.0)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    for bad in [bytes(flipped), data[:-1], data[: len(data) // 2], data[:5], b"", b"XXXX" + data[4:]]:
        with pytest.raises(ValueError):
            raht.decode(bad, coords)


def test_header_tampering_detected_even_with_valid_crc():
    coords, rgb = _cloud(n=800, seed=10)
    data = bytearray(raht.encode(coords, rgb, step=8.0))
    data[2] = 99  # unknown version, trailer recomputed so only the version check can catch it
    body = bytes(data[:-4])
    with pytest.raises(ValueError, match="version"):
        raht.decode(body + zlib.crc32(body).to_bytes(4, "little"), coords)


def test_mismatched_geometry_raises():
    coords, rgb = _cloud(n=800, seed=11)
    data = raht.encode(coords, rgb, step=8.0)
    occupied = set(map(tuple, coords.tolist()))
    free = next(v for v in np.ndindex(64, 64, 64) if v not in occupied)
    moved = coords.copy()
    moved[0] = free  # same point count, one voxel moved to an empty cell
    with pytest.raises(ValueError, match="geometry"):
        raht.decode(data, moved)
    with pytest.raises(ValueError, match="geometry"):
        raht.decode(data, coords[:-1])


def test_invalid_coordinates_rejected():
    rgb = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="integer"):
        raht.encode(np.array([[0.5, 0, 0], [1, 0, 0]]), rgb, 1.0)
    with pytest.raises(ValueError):
        raht.encode(np.array([[-1, 0, 0], [1, 0, 0]]), rgb, 1.0)
    with pytest.raises(ValueError):
        raht.encode(np.array([[1 << 21, 0, 0], [1, 0, 0]]), rgb, 1.0)
    with pytest.raises(ValueError, match="duplicate"):
        raht.encode(np.array([[1, 0, 0], [1, 0, 0]]), rgb, 1.0)


def test_tiny_clouds():
    for coords in [np.zeros((1, 3), dtype=np.int64), np.array([[5, 9, 2]])]:
        rgb = np.array([[10, 200, 30]], dtype=np.uint8)
        data, recon = raht.encode_with_reconstruction(coords, rgb, 1.0)
        np.testing.assert_array_equal(raht.decode(data, coords), recon)
        assert np.abs(recon.astype(int) - rgb).max() <= 1


def _with_crc(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_what_no_encoder_writes_is_refused_even_with_a_valid_crc():
    """Steps that are not positive and finite, coefficients larger than any colours give, a payload with a byte
    cut off or added: ValueError, one line."""
    import struct

    coords, rgb = _cloud(n=500, seed=13)
    data = raht.encode(coords, rgb, step=8.0)
    for step in (0.0, -8.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="step"):
            raht.decode(_with_crc(data[:3] + struct.pack("<f", step) + data[7:-4]), coords)
    with pytest.raises(ValueError, match="coefficients"):  # the same symbols, each standing for 10^6 times more
        raht.decode(_with_crc(data[:3] + struct.pack("<f", 8e6) + data[7:-4]), coords)
    for body in (data[:-5], data[:-4] + b"\0"):  # the payload's last byte cut off, a byte appended
        with pytest.raises(ValueError):
            raht.decode(_with_crc(body), coords)
    rng = np.random.default_rng(0)
    for _ in range(200):  # damage anywhere, CRC recomputed: ValueError or an exact (canonical) decode
        body = bytearray(data[:-4])
        body[int(rng.integers(len(body)))] ^= 1 << int(rng.integers(8))
        try:
            raht.decode(_with_crc(bytes(body)), coords)
        except ValueError as e:
            assert "\n" not in str(e)

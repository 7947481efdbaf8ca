import hashlib

import numpy as np
import pytest

from nicjax import entropy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_bit_exact(seed):
    rng = np.random.default_rng(seed)
    arrays = [np.rint(rng.laplace(0, 7, 2000)).astype(np.int64), rng.integers(-2048, 2048, 777),
              np.zeros(0, np.int64), np.zeros(50, np.int64), np.array([2**31 - 1, -(2**31 - 1), 0, 1, -1, 2, -3])]
    kinds = [0, 0, 1, 1, 0]
    data = entropy.encode_ints(arrays, kinds)
    back = entropy.decode_ints(data, [a.size for a in arrays], kinds)
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(a, b)


def test_rate_is_close_to_empirical_entropy_and_deterministic():
    rng = np.random.default_rng(0)
    a = np.rint(rng.laplace(0, 12, 20000)).astype(np.int64)
    data = entropy.encode_ints([a])
    assert data == entropy.encode_ints([a])
    h = entropy.empirical_entropy_bits([a])
    assert h <= 8 * len(data) <= 1.03 * h + 64  # an adaptive coder pays a little for learning


def test_rejects_floats_and_huge_values():
    with pytest.raises(TypeError):
        entropy.encode_ints([np.zeros(3)])
    with pytest.raises(ValueError):
        entropy.encode_ints([np.array([2**40])])


def golden_arrays():
    i = np.arange(3000, dtype=np.int64)
    return [((i * 7919) % 61 - 30) * ((i % 3) == 0), (i[:500] ** 2 % 4099) - 2049, np.zeros(40, np.int64)]


def test_golden_stream():
    """The coder's output is part of the file format: any change to it must be deliberate (a new version)."""
    data = entropy.encode_ints(golden_arrays(), [0, 1, 0])
    assert hashlib.sha256(data).hexdigest()[:16] == "be27a7582fad64a9"

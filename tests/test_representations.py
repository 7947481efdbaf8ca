"""Every representation through the protocol, and a second one (tests/polynomial_representation.py) coded end to
end with one registry line."""

import jax
import numpy as np
import pytest

from nicjax import codec, configs, container, representations
from nicjax.errors import NicError
from nicjax.representations import siren
from polynomial_representation import POLYNOMIAL, PolynomialConfig

representations.register(POLYNOMIAL)  # the one line a new representation needs (in the registry module itself)

CONFIGS = {siren.SIREN.name: siren.SirenConfig(width=8, depth=2), POLYNOMIAL.name: PolynomialConfig(degree=2)}
CLOUD = container.SignalInfo(container.SIGNAL_POINTCLOUD)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_protocol(name):
    rep = representations.by_name(name)
    config = rep.with_io(CONFIGS[name], 3, 3)
    raw = rep.config_bytes(config)
    read = container.Reader(raw + b"tail", len(raw) + 4)
    assert rep.config_from_bytes(read, CLOUD) == config and read.pos == len(raw)
    params = rep.init(config, jax.random.key(0))
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    specs = rep.tensors(config)
    assert [tuple(x.shape) for _, x in leaves] == [s.shape for s in specs]
    assert all(s.role in container.ROLES for s in specs)
    x = np.random.default_rng(0).uniform(-1, 1, (100, 3)).astype(np.float32)
    model = representations.Model(rep, config)
    np.testing.assert_allclose(model.evaluate(params, x, chunk=32), np.asarray(rep.apply(config, params, x)),
                               atol=1e-6)


def test_a_second_representation_codes_a_cloud_end_to_end(small_cloud):
    config = configs.CodecConfig(representation="polynomial", model=PolynomialConfig(degree=3),
                                 fit=configs.FitConfig(steps=300, learning_rate=1e-2, batch_size=1024), levels=256)
    result = codec.compress_cloud(small_cloud, config, progress=False)
    header, _ = codec.read(result.data)
    assert header.representation == POLYNOMIAL.id and header.model == PolynomialConfig(3, 3, 3)
    np.testing.assert_array_equal(codec.decompress(result.data, small_cloud.xyz), result.decoded_rgb)
    assert result.psnr["y"] > 20, result.psnr  # a smooth cloud: a cubic fits it roughly
    siren_file = codec.compress(small_cloud, configs.CodecConfig(model=siren.SirenConfig(width=8, depth=1),
                                                                 fit=configs.FitConfig(steps=10)), progress=False)
    assert codec.read(siren_file)[0].representation == siren.SIREN.id


def test_an_unknown_representation_is_refused(small_cloud):
    data = codec.compress(small_cloud, configs.CodecConfig(representation="polynomial", model=PolynomialConfig(),
                                                           fit=configs.FitConfig(steps=5)), progress=False)
    del representations.REGISTRY[POLYNOMIAL.id]
    try:
        with pytest.raises(NicError, match="representation 254"):
            codec.read(data)
    finally:
        representations.register(POLYNOMIAL)
    with pytest.raises(ValueError, match="unknown representation"):
        representations.by_name("octree")

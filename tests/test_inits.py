import dataclasses

import jax
import numpy as np
import pytest

from nicjax import codec, configs, fit, inits
from nicjax.representations import siren
from nicjax.errors import NicError

MODEL = siren.SirenConfig(width=16, depth=2)


def make_init(tmp_path, seed):
    init = inits.Init(model=MODEL, params=jax.tree_util.tree_map(np.asarray,
                                                                 siren.init_params(MODEL, jax.random.key(seed))))
    path = str(tmp_path / f"init{seed}.init")
    inits.save(init, path)
    return init, path


def test_init_file_round_trips_and_its_id_is_stable(tmp_path):
    init, path = make_init(tmp_path, 3)
    back = inits.load(path)
    assert back.model == MODEL and back.id == init.id and len(init.id) == 16
    for a, b in zip(jax.tree_util.tree_leaves(init.params), jax.tree_util.tree_leaves(back.params)):
        np.testing.assert_array_equal(a, b)
    again, _ = make_init(tmp_path, 3)
    assert again.id == init.id  # same content, same id
    assert make_init(tmp_path, 4)[0].id != init.id
    other_arch = inits.Init(model=dataclasses.replace(MODEL, omega=20.0), params=init.params)
    assert other_arch.id != init.id  # the architecture is part of the id
    assert inits.find(init.id, (str(tmp_path),)).id == init.id
    with pytest.raises(NicError):
        inits.load(str(tmp_path / "missing.init"))
    (tmp_path / "bad.init").write_bytes(b"NICI\x01" + b"\0" * 20)
    with pytest.raises(NicError):
        inits.load(str(tmp_path / "bad.init"))


def test_coding_against_an_init_needs_that_init(tmp_path, small_cloud):
    init, path = make_init(tmp_path, 5)
    other, other_path = make_init(tmp_path, 6)
    config = configs.CodecConfig(model=MODEL, fit=configs.FitConfig(steps=60, batch_size=1024), init=path)
    result = codec.compress_cloud(small_cloud, config, progress=False)
    rgb = codec.decompress(result.data, small_cloud.xyz, init_search=(path,))
    np.testing.assert_array_equal(rgb, result.decoded_rgb)
    with pytest.raises(NicError, match=init.id):
        codec.decompress(result.data, small_cloud.xyz)
    with pytest.raises(NicError, match=other.id):
        codec.decompress(result.data, small_cloud.xyz, init_search=(other_path,))
    # direct coding of weights trained from the init decodes without it
    direct = codec.compress_cloud(small_cloud, dataclasses.replace(config, reference="zeros"), progress=False)
    np.testing.assert_array_equal(codec.decompress(direct.data, small_cloud.xyz), direct.decoded_rgb)

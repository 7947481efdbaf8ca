import dataclasses

import jax
import numpy as np
import pytest

from nicjax import codec, fit, quantize, siren
from nicjax.errors import NicError
from nicjax.signals import pointcloud

SMALL = codec.CodecConfig(model=siren.SirenConfig(width=32, depth=3),
                          fit=fit.FitConfig(steps=600, batch_size=2048, learning_rate=3e-4), levels=256)


@pytest.fixture(scope="module")
def encoded():
    from conftest import smooth_cloud

    cloud = smooth_cloud()
    return cloud, codec.compress_cloud(cloud, SMALL, progress=False)


def test_compress_decompress_reaches_psnr_floor(encoded):
    cloud, result = encoded
    assert result.psnr["y"] > 30.0, result.psnr
    rgb = codec.decompress(result.data, cloud.xyz)
    np.testing.assert_array_equal(rgb, result.decoded_rgb)  # exactly what the encoder measured
    assert result.bits_per_point == 8 * len(result.data) / cloud.num_points


def test_decoding_is_order_independent(encoded):
    cloud, result = encoded
    perm = np.random.default_rng(0).permutation(cloud.num_points)
    np.testing.assert_array_equal(codec.decompress(result.data, cloud.xyz[perm]), result.decoded_rgb[perm])


def test_same_input_and_seed_give_the_same_bytes(encoded):
    cloud, result = encoded
    assert codec.compress(cloud, SMALL, progress=False) == result.data
    other_seed = codec.CodecConfig(model=SMALL.model, fit=fit.FitConfig(steps=600, batch_size=2048,
                                                                        learning_rate=3e-4, seed=1))
    assert codec.compress(cloud, other_seed, progress=False) != result.data


def test_wrong_geometry_is_rejected(encoded):
    cloud, result = encoded
    with pytest.raises(NicError, match="points"):
        codec.decompress(result.data, cloud.xyz[:-1])
    moved = cloud.xyz.copy()
    moved[3] += 100
    with pytest.raises(NicError, match="does not match"):
        codec.decompress(result.data, moved)


def test_direct_and_differential_coding_both_decode(small_cloud):
    for reference in ("zeros", "seeded", "auto"):
        config = codec.CodecConfig(model=siren.SirenConfig(width=16, depth=2), fit=fit.FitConfig(steps=50),
                                   levels=64, reference=reference)
        result = codec.compress_cloud(small_cloud, config, progress=False)
        np.testing.assert_array_equal(codec.decompress(result.data, small_cloud.xyz), result.decoded_rgb)


def test_voxelized_coding_decodes_on_the_raw_geometry():
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 20, (800, 3))
    rgb = rng.integers(0, 256, (800, 3)).astype(np.uint8)
    cloud = pointcloud.PointCloud(xyz=xyz, rgb=rgb)
    config = codec.CodecConfig(model=siren.SirenConfig(width=16, depth=2), fit=fit.FitConfig(steps=20),
                               voxelize=True)
    result = codec.compress_cloud(cloud, config, progress=False)
    assert len(result.xyz) < 800
    vox_xyz, vox_rgb = codec.decompress_cloud(result.data, xyz)
    np.testing.assert_array_equal(vox_xyz, result.xyz)
    np.testing.assert_array_equal(vox_rgb, result.decoded_rgb)


def test_sixteen_bit_colours_round_trip():
    from conftest import smooth_cloud

    cloud = smooth_cloud(n=500)
    cloud16 = pointcloud.PointCloud(xyz=cloud.xyz, rgb=(cloud.rgb.astype(np.uint16) * 257))
    config = codec.CodecConfig(model=siren.SirenConfig(width=16, depth=2), fit=fit.FitConfig(steps=200))
    result = codec.compress_cloud(cloud16, config, progress=False)
    assert result.decoded_rgb.dtype == np.uint16
    assert result.psnr["y"] > 15
    np.testing.assert_array_equal(codec.decompress(result.data, cloud.xyz), result.decoded_rgb)


def test_quantization_aware_fine_tuning_helps_at_few_levels(small_cloud):
    coarse = codec.CodecConfig(model=siren.SirenConfig(width=16, depth=2),
                               fit=fit.FitConfig(steps=400, batch_size=2048, learning_rate=1e-3), levels=8)
    plain = codec.compress_cloud(small_cloud, coarse, progress=False)
    qat_config = dataclasses.replace(coarse, fit=dataclasses.replace(coarse.fit, qat_steps=150))
    aware = codec.compress_cloud(small_cloud, qat_config, progress=False)
    # the file decodes to what the encoder measured, and training through the quantizer paid off
    np.testing.assert_array_equal(codec.decompress(aware.data, small_cloud.xyz), aware.decoded_rgb)
    assert aware.psnr["y"] > plain.psnr["y"] + 0.5, (plain.psnr, aware.psnr)
    assert codec.compress(small_cloud, qat_config, progress=False) == aware.data


def test_delta_l1_penalty_trades_bits_for_fit(small_cloud):
    base = codec.CodecConfig(model=siren.SirenConfig(width=32, depth=2),
                             fit=fit.FitConfig(steps=300, batch_size=2048, learning_rate=1e-3), levels=64)
    plain = codec.compress_cloud(small_cloud, base, progress=False)
    sparse = codec.compress_cloud(small_cloud, dataclasses.replace(base, fit=dataclasses.replace(base.fit,
                                                                                              delta_l1=1.0)),
                                  progress=False)
    # pulled towards the reference, the differences code in far fewer bytes; the file still decodes exactly
    assert len(sparse.data) < 0.8 * len(plain.data), (len(sparse.data), len(plain.data))
    np.testing.assert_array_equal(codec.decompress(sparse.data, small_cloud.xyz), sparse.decoded_rgb)
    with pytest.raises(ValueError, match="reference"):
        model = base.model
        fit.fit(model, siren.init_params(model, jax.random.key(0)), np.zeros((4, 3), np.float32),
                np.zeros((4, 3), np.float32), dataclasses.replace(base.fit, delta_l1=1.0), progress=False)


def test_encoder_keeps_the_better_of_plain_and_quantization_aware(small_cloud):
    config = codec.CodecConfig(model=siren.SirenConfig(width=16, depth=2),
                               fit=fit.FitConfig(steps=200, batch_size=1024, qat_steps=60, qat_learning_rate=3e-3))
    signal = codec.cloud_signal(small_cloud, config)
    header = codec.signal_header(signal, config)
    params, _ = codec.fit_signal(signal, config, progress=False)
    targets = codec.targets_for(signal)
    for levels in (8, 1024):
        reference = codec.reference_params(header)
        plain = (params, quantize.tensor_steps(params, reference, levels))
        tuned = codec.quantization_aware(header, params, levels, signal.coords, targets, config.fit, progress=False)
        best = codec.quantization_aware(header, params, levels, signal.coords, targets, config.fit, progress=False,
                                        keep_better=True)
        errors = [codec.quantized_error(header, *c, signal.coords, targets, config.fit) for c in (plain, tuned, best)]
        assert errors[2] == min(errors[:2]), (levels, errors)

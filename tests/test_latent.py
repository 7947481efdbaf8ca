"""The latent representation: octree features, rate-distortion training, its file format, decoding."""

import dataclasses
import hashlib
import zlib

import jax
import numpy as np
import pytest

from nicjax import codec, configs, container, entropy, representations
from nicjax import fit as fitting
from nicjax.errors import NicError
from nicjax.metrics import colour_psnr
from nicjax.representations import latent
from nicjax.signals import image as imaging, pointcloud

REGISTRY = representations.REGISTRY


def cube(side: int, spacing: int = 1) -> np.ndarray:
    g = np.arange(0, side, spacing, dtype=np.float64)
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)


def quick(steps: int = 300, lam: float = 2e-3, latent_noise: str = "noise", **model) -> configs.CodecConfig:
    """The latent preset, shorter (one training, as the preset; both with latent_noise="best")."""
    return dataclasses.replace(configs.LATENT, model=dataclasses.replace(configs.LATENT.model, **model),
                               fit=dataclasses.replace(configs.LATENT.fit, steps=steps, rate_lambda=lam,
                                                       steps_per_call=30, latent_noise=latent_noise))


@pytest.fixture(scope="module")
def cloud():
    return pointcloud.voxelize(pointcloud.procedural_cloud(3000, bits=6, seed=1))


def test_levels_by_rule_from_density():
    """From the coarsest node size whose nodes hold at most 2 points on average to where < 64 nodes are left."""
    assert latent.default_scales(cube(32)) == (0, 1, 2, 3, 4)  # 32768 (a node per point), 4096, 512, 64, then 8
    # points every 4 voxels: one per 1-, 2- and 4-node, then 8 per 8-node
    assert latent.default_scales(cube(64, spacing=4)) == (2, 3, 4, 5)


def test_the_network_by_rule_from_the_point_count():
    """The largest of latent.NETWORKS with at least POINTS_PER_NETWORK_PARAMETER points per network parameter (times
    λ / NETWORK_LAMBDA above that λ), else the smallest; a width that is set is kept (with the layers given)."""
    def network(n_points, **given):
        xyz = np.random.default_rng(0).permutation(cube(64))[:n_points]  # sparse at small n: levels from 2^1 or up
        config = latent.for_geometry(latent.LatentConfig(**given), xyz)
        return config, (config.hidden, config.layers)

    small, tiny = network(3000)
    assert tiny == latent.NETWORKS[-1]  # 3000 points cannot pay for any of them
    large, widest = network(250_000, channels=1)  # 6 levels x 1 channel: 16x2 has 435 parameters
    assert widest == latent.NETWORKS[0]
    assert large.network_params() * latent.POINTS_PER_NETWORK_PARAMETER <= 250_000
    for n in (20_000, 60_000, 120_000):  # each the largest that fits: the next larger one does not
        config, chosen = network(n)
        i = latent.NETWORKS.index(chosen)
        if i < len(latent.NETWORKS) - 1:
            assert config.network_params() * latent.POINTS_PER_NETWORK_PARAMETER <= n
        if i > 0:
            larger = dataclasses.replace(config, hidden=latent.NETWORKS[i - 1][0], layers=latent.NETWORKS[i - 1][1])
            assert larger.network_params() * latent.POINTS_PER_NETWORK_PARAMETER > n
    assert network(3000, hidden=16)[1] == (16, 2)  # set: kept
    # λ above NETWORK_LAMBDA asks for λ / NETWORK_LAMBDA times the points per parameter; at or below it, nothing changes
    xyz = np.random.default_rng(0).permutation(cube(64))[:250_000]
    by_lambda = lambda lam: latent.for_geometry(latent.LatentConfig(channels=1), xyz, rate_lambda=lam)  # noqa: E731
    assert by_lambda(latent.NETWORK_LAMBDA) == large
    assert latent.points_per_network_parameter(10 * latent.NETWORK_LAMBDA) == 10 * latent.POINTS_PER_NETWORK_PARAMETER
    smaller = by_lambda(2 * latent.NETWORK_LAMBDA)  # 16x2 (435 parameters) needs 435,000 points at 2x
    assert (smaller.hidden, smaller.layers) == latent.NETWORKS[1]
    # no network has the points per parameter: the smallest, or above NETWORK_LAMBDA the linear read-out
    assert (by_lambda(1.0).hidden, by_lambda(1.0).layers) == latent.LINEAR_READOUT
    assert network(3000)[1] == latent.NETWORKS[-1]
    few = latent.for_geometry(latent.LatentConfig(), xyz[:3000], rate_lambda=2 * latent.NETWORK_LAMBDA)
    assert (few.hidden, few.layers, few.dims) == (*latent.LINEAR_READOUT, [few.feature_dim, 3])
    with pytest.raises(ValueError, match="width 0"):
        latent.check_config(dataclasses.replace(small, hidden=0))


def test_dense_clouds_get_three_channels_faster_latents_and_more_steps_by_rule():
    """Levels from 2^0 (dense) → DENSE_CHANNELS channels, the latents at DENSE_LATENT_LR, DENSE_STEPS steps at λ
    below DENSE_STEPS_LAMBDA; else 1 channel at the network's rate, LATENT_STEPS steps. Set values are kept."""
    def signal_of(xyz):
        return codec.cloud_signal(pointcloud.PointCloud(xyz, np.full((len(xyz), 3), 128, np.uint8)))

    dense, sparse = cube(16), cube(32, spacing=4)
    small_lambda = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(
        configs.LATENT.fit, rate_lambda=configs.DENSE_STEPS_LAMBDA / 2))
    for xyz, channels, lr, steps in ((dense, latent.DENSE_CHANNELS, configs.DENSE_LATENT_LR, configs.DENSE_STEPS),
                                     (sparse, 1, 0.0, configs.LATENT_STEPS)):
        signal = signal_of(xyz)
        model, _ = codec.architecture(configs.LATENT, signal)
        assert model.config.channels == channels and latent.is_dense(model.config) == (xyz is dense)
        fit = codec.fit_config_for(signal, small_lambda, model)
        assert fit.latent_learning_rate == lr and fit.latent_noise == "noise" and fit.steps == steps
        # the preset's λ (2e-3) is above DENSE_STEPS_LAMBDA: 1000 steps on any cloud
        assert codec.fit_config_for(signal, configs.LATENT, model).steps == configs.LATENT_STEPS
    set_by_hand = dataclasses.replace(configs.LATENT, model=dataclasses.replace(configs.LATENT.model, channels=2),
                                      fit=dataclasses.replace(configs.LATENT.fit, latent_learning_rate=5e-2,
                                                              latent_noise="mixed", steps=700))
    model, _ = codec.architecture(set_by_hand, signal_of(dense))
    assert model.config.channels == 2
    fit = codec.fit_config_for(signal_of(dense), set_by_hand, model)
    assert fit.latent_learning_rate == 5e-2 and fit.latent_noise == "mixed" and fit.steps == 700


def test_small_lambda_gives_every_cloud_a_point_level_and_the_dense_rule():
    """Below POINT_LEVEL_LAMBDA the levels start at 2^0 whatever the density (a latent per point), and the cloud is
    then coded as a dense one; at the preset's λ a sparse cloud keeps its levels by density; set scales are kept."""
    sparse = cube(32, spacing=4)
    signal = codec.cloud_signal(pointcloud.PointCloud(sparse, np.full((len(sparse), 3), 128, np.uint8)))
    small = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(
        configs.LATENT.fit, rate_lambda=configs.POINT_LEVEL_LAMBDA / 2))
    model, _ = codec.architecture(small, signal)
    assert model.config.scales == (0, 1, 2, 3, 4) and latent.is_dense(model.config)
    assert model.config.channels == latent.DENSE_CHANNELS
    fit = codec.fit_config_for(signal, small, model)
    assert fit.latent_learning_rate == configs.DENSE_LATENT_LR
    # the dense steps below their own threshold only (the point level reaches above it since session 17)
    assert configs.DENSE_STEPS_LAMBDA < configs.POINT_LEVEL_LAMBDA
    for lam, steps in ((configs.DENSE_STEPS_LAMBDA / 2, configs.DENSE_STEPS),
                       ((configs.DENSE_STEPS_LAMBDA + configs.POINT_LEVEL_LAMBDA) / 2, configs.LATENT_STEPS)):
        at = dataclasses.replace(small, fit=dataclasses.replace(small.fit, rate_lambda=lam))
        assert codec.fit_config_for(signal, at, codec.architecture(at, signal)[0]).steps == steps
    model, _ = codec.architecture(configs.LATENT, signal)
    assert model.config.scales == latent.default_scales(sparse) == (2, 3, 4)
    given = dataclasses.replace(small, model=dataclasses.replace(small.model, scales=(3, 4)))
    assert codec.architecture(given, signal)[0].config.scales == (3, 4)


def test_the_rounding_finish_by_rule():
    """No rounding finish where only λ brought the levels down to 2^0 (a sparse cloud below POINT_LEVEL_LAMBDA);
    HARD_FRACTION on dense clouds at any λ and on sparse ones at larger λ; a value set by hand is kept."""
    def fit_of(xyz, lam, **fit):
        config = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(configs.LATENT.fit, rate_lambda=lam,
                                                                             **fit))
        signal = codec.cloud_signal(pointcloud.PointCloud(xyz, np.full((len(xyz), 3), 128, np.uint8)))
        return codec.fit_config_for(signal, config, codec.architecture(config, signal)[0])

    small = configs.POINT_LEVEL_LAMBDA / 2
    sparse, dense = cube(32, spacing=4), cube(16)
    assert configs.LATENT.fit.hard_fraction is None  # by rule
    assert fit_of(sparse, small).hard_fraction == 0.0
    assert fit_of(sparse, configs.POINT_LEVEL_LAMBDA * 2).hard_fraction == configs.HARD_FRACTION
    assert fit_of(dense, small).hard_fraction == configs.HARD_FRACTION
    assert fit_of(sparse, small, hard_fraction=0.3).hard_fraction == 0.3


def test_the_network_is_coded_at_the_levels_of_least_rate_distortion_cost(cloud):
    """The preset codes the network at each of configs.LATENT_LEVEL_CHOICES and keeps the file of least D + λ·R, D
    from the network the decoder reads back out of each file's bytes and R from the bytes; `--levels` (no choices)
    codes at that number alone."""
    config = quick(steps=120)
    assert config.level_choices == configs.LATENT_LEVEL_CHOICES and len(config.level_choices) > 1
    signal = codec.cloud_signal(cloud, config)
    p = codec.plan(signal, config)
    params, _ = codec.train(signal, p, progress=False)
    files = {lv: codec.code(signal, p, params, lv) for lv in config.level_choices}

    def cost(data):
        header, decoded = codec.read(data, geometry=signal.geometry)
        out = codec.model_of(header).evaluate(decoded, p.inputs)
        return fitting.weighted_mse64(out, p.targets, p.fit.loss_weights) + p.fit.rate_lambda * 8 * len(data) / len(out)

    costs = {lv: cost(data) for lv, data in files.items()}
    assert len(set(costs.values())) == len(costs)  # the candidates differ
    best = min(costs, key=costs.get)
    assert codec.least_cost_file(signal, p, params, config.level_choices) == (files[best], best)
    assert codec.code(signal, p, params, 64, level_choices=config.level_choices) == files[best]
    assert codec.code(signal, p, params, 64) == files[64]


def test_weights_of_dead_features_are_coded_as_their_reference(cloud):
    """The first layer's rows that read a level's channel whose latents are all zero are set to the reference before
    coding: the decoded colours stay what they were (at any point), the file gets no larger, and rows of live
    features are untouched."""
    config = quick(steps=60, channels=2)
    signal = codec.cloud_signal(cloud, config)
    p = codec.plan(signal, config)
    params, _ = codec.train(signal, p, progress=False)
    cfg = p.model.config
    params = dict(params)
    dead_level = len(cfg.scales) - 1  # a dead channel and a live one in the same level; the other level stays live
    lat = np.array(params[latent.latent_name(dead_level)])
    lat[0] = np.where(np.arange(lat.shape[1]) % 2, 0.3, -0.2)  # rounds to zero: dead in the file
    lat[1, 0] = 3.0
    params[latent.latent_name(dead_level)] = lat
    out = codec.pruned(p, params)
    kernel, ref = (np.asarray(x[latent.layer_name(0)]["kernel"]) for x in (out, p.reference))
    before = np.asarray(params[latent.layer_name(0)]["kernel"])
    dead_row = dead_level * cfg.channels
    np.testing.assert_array_equal(kernel[dead_row], ref[dead_row])
    assert not np.array_equal(before[dead_row], ref[dead_row])  # the test changes something
    live = [r for r in range(kernel.shape[0]) if r != dead_row and
            np.any(np.asarray(params[latent.latent_name(r // cfg.channels)])[r % cfg.channels])]
    np.testing.assert_array_equal(kernel[live], before[live])
    points = np.concatenate([signal.geometry, signal.geometry[:50] + 0.3])
    inputs = codec.network_inputs(p.model, signal.geometry, points)
    as_coded = lambda q: {k: np.rint(v) if k.startswith("latent_") else v for k, v in q.items()}  # noqa: E731
    np.testing.assert_allclose(p.model.evaluate(as_coded(out), inputs), p.model.evaluate(as_coded(params), inputs),
                               atol=1e-6)
    assert len(codec.code(signal, p, params, 64)) <= len(codec.write(p.header, params, p.reference, 64,
                                                                      geometry=signal.geometry))


def test_features_are_trilinear_over_occupied_nodes():
    """Weights sum to 1 over occupied neighbours; a point's own node weighs ≥ 1/8; with every neighbour occupied,
    latents that are a linear function of the node centres interpolate to that function at the point."""
    xyz = cube(16)
    tree = latent.octree(xyz, (1, 2))
    idx, w = map(np.asarray, latent.neighbour_weights((1, 2), latent.features(tree, xyz)))
    assert ((idx >= 0) == (w > 0)).all()  # on a full cube no corner weight is 0 by position
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    for level, k in enumerate((1, 2)):
        keys = tree.keys[level]
        centres = latent._unpack(keys) + 0.5
        centres = centres * (1 << k)  # in the frame of xyz + 0.5
        own = latent._pack(np.floor((xyz + 0.5) / (1 << k)).astype(np.int64))
        own_w = np.where(keys[idx[:, level]] == own[:, None], w[:, level], 0).sum(-1)
        assert own_w.min() >= 1 / 8 - 1e-6
        field = centres @ np.array([1.0, -2.0, 0.5])
        value = (w[:, level] * field[idx[:, level]]).sum(-1)
        p = xyz + 0.5
        inside = ((p >= (1 << k) / 2) & (p <= 16 - (1 << k) / 2)).all(-1)  # all 8 neighbours exist
        np.testing.assert_allclose(value[inside], (p @ np.array([1.0, -2.0, 0.5]))[inside], atol=1e-4)
    # the network reads the position in float32: a point that rounds onto a cell boundary gets the indices of the
    # cell its float32 position is in (as if it were on the boundary), not of the cell its float64 one is in
    on, below = np.array([[2.5, 3.0, 4.0]]), np.array([[2.5 - 1e-9, 3.0, 4.0]])
    np.testing.assert_array_equal(latent.features(tree, below), latent.features(tree, on))


def test_a_cloud_round_trips_through_the_file(cloud):
    """Decoding the bytes gives what the encoder reported, in any point order; the header holds the octree's node
    counts; random access at the geometry's points gives the decoded colours; same input and λ, same bytes."""
    r = codec.compress_cloud(cloud, quick(), progress=False)
    header = codec.read_header(r.data)
    assert header.representation == latent.LATENT.id
    assert header.model == latent.for_geometry(latent.LatentConfig(), cloud.xyz)
    assert (codec.decompress(r.data, cloud.xyz) == r.decoded_rgb).all()
    perm = np.random.default_rng(0).permutation(len(cloud.xyz))
    assert (codec.decompress(r.data, cloud.xyz[perm]) == r.decoded_rgb[perm]).all()
    assert (codec.sample_cloud(r.data, cloud.xyz, cloud.xyz[:50]) == r.decoded_rgb[:50]).all()
    mean = np.repeat(np.round(cloud.rgb.mean(0, keepdims=True)).astype(np.uint8), len(cloud.rgb), 0)
    assert r.psnr["y"] > colour_psnr(cloud.rgb, mean)["y"] + 4  # it learnt the colours (the mean: 15.5 dB)
    assert codec.compress_cloud(cloud, quick(), progress=False).data == r.data


def test_lambda_trades_rate_for_distortion(cloud):
    """A larger λ spends fewer bytes on the latents, and the colours get worse."""
    def latent_bytes(data):
        _, tensors = container.decode(data, REGISTRY, cloud.xyz)
        latents = [t.symbols for t in tensors if t.spec.role == "latent"]
        return len(entropy.encode_ints(latents, [2] * len(latents)))

    low = codec.compress_cloud(cloud, quick(steps=150, lam=1e-4), progress=False)
    high = codec.compress_cloud(cloud, quick(steps=150, lam=5e-2), progress=False)
    assert latent_bytes(high.data) < 0.5 * latent_bytes(low.data)
    assert len(high.data) < len(low.data) and high.psnr["y"] < low.psnr["y"]


def _file(cloud, counts=None, contexts=True):
    config = latent.for_geometry(latent.LatentConfig(hidden=8, contexts=contexts), cloud.xyz)
    if counts is not None:
        config = dataclasses.replace(config, counts=counts)
    header = container.Header(pointcloud.to_signal(cloud).info, latent.LATENT.id, config,
                              container.Reference(container.REFERENCE_SEEDED, seed=3))
    ref = codec.reference_params(header)
    params = dict(ref)
    rng = np.random.default_rng(0)
    for i in range(len(config.counts)):
        params[latent.latent_name(i)] = np.round(rng.laplace(0, 2, ref[latent.latent_name(i)].shape))
    return codec.write(header, params, ref, 32, geometry=cloud.xyz)


def test_a_file_whose_octree_is_not_the_geometry_is_refused(cloud):
    """Node counts in the header that the geometry does not give (the geometry hash matching): a clean error (a
    context-coded file cannot even be written so: the encoder refuses it too)."""
    good = latent.for_geometry(latent.LatentConfig(), cloud.xyz).counts
    data = _file(cloud, counts=tuple(c + 1 for c in good), contexts=False)
    with pytest.raises(NicError, match="latent structure"):
        codec.decompress(data, cloud.xyz)
    with pytest.raises(NicError, match="latent structure"):
        _file(cloud, counts=tuple(c + 1 for c in good))


def test_context_coding_round_trips_and_needs_the_geometry(cloud):
    """The context-coded payload (the encoder's default) decodes to the same symbols as the per-level layout,
    re-encodes to its bytes, is refused in one line without the geometry (the header alone still reads), and codes
    smooth latents in fewer bytes than the per-level layout."""
    data, plain = _file(cloud), _file(cloud, contexts=False)
    assert codec.read_header(data).model.contexts and not codec.read_header(plain).model.contexts
    h, with_contexts = container.decode(data, REGISTRY, cloud.xyz)
    _, without = container.decode(plain, REGISTRY)
    for a, b in zip(with_contexts, without):
        np.testing.assert_array_equal(a.symbols, b.symbols)
    assert container.encode(h, with_contexts, REGISTRY, cloud.xyz) == data
    with pytest.raises(NicError, match="only with its geometry"):
        container.decode(data, REGISTRY)
    with pytest.raises(ValueError, match="against the geometry"):
        container.encode(h, with_contexts, REGISTRY)
    # smooth latents (a linear ramp over the nodes, rounded): the neighbours predict each value's size and sign
    config = h.model
    tree = latent.octree(cloud.xyz, config.scales)
    smooth = []
    for keys in tree.keys:
        nodes = latent._unpack(keys).astype(np.float64)
        smooth.append(np.round((nodes @ np.array([0.7, -0.4, 0.2]) - 3) / (1 + nodes.max() / 8))[None]
                      .repeat(config.channels, 0).astype(np.int64))
    plan = latent.LATENT.payload_plan(config, cloud.xyz)
    arrays, kinds, segments = latent.context_stream(plan, smooth)
    coded = entropy.encode_ints(arrays, kinds, ordered=True, segments=segments)
    assert len(coded) < 0.9 * len(entropy.encode_ints([q.ravel() for q in smooth], [2] * len(smooth)))
    back = latent.read_context_stream(plan, config.channels, config.counts, _reader(coded))
    for a, b in zip(smooth, back):
        np.testing.assert_array_equal(a, b)


def _reader(data):
    dec = entropy.OrderedDecoder(data, 1 << 24)
    return dec.read


def test_latents_with_another_step_are_refused(cloud):
    """Latents are integers: a file whose latent step is not 1 (CRC recomputed) is not what an encoder writes."""
    data = _file(cloud)
    header = codec.read_header(data)
    specs = latent.LATENT.tensors(header.model)
    assert [s.role for s in specs][:len(header.model.counts)] == ["latent"] * len(header.model.counts)
    steps_at = data.index(container.steps_bytes(header.steps))
    body = bytearray(data[:-4])
    body[steps_at:steps_at + 2] = container.step_bits(2.0).to_bytes(2, "little")
    with pytest.raises(NicError, match="latents"):
        container.decode(bytes(body) + container.U32.pack(zlib.crc32(body)), REGISTRY)


GOLDEN_HEADER = container.Header(
    container.SignalInfo(container.SIGNAL_POINTCLOUD, geometry_crc=0x89ABCDEF), latent.LATENT.id,
    latent.LatentConfig(scales=(2, 3, 4), channels=2, hidden=4, layers=1, counts=(40, 9, 2), contexts=False),
    container.Reference(container.REFERENCE_SEEDED, seed=5))
GOLDEN_SHA = "7596101cae9d4b1e"


def golden_tensors(config=GOLDEN_HEADER.model):
    """The pinned symbols of a latent configuration's tensors (the golden files' payloads)."""
    out = []
    for k, spec in enumerate(latent.LATENT.tensors(config)):
        i = np.arange(spec.size, dtype=np.int64)
        symbols = ((i * 7919 + 13 * k) % 23 - 11) * ((i % (k + 2)) == 0)
        step = container.LATENT_STEP if spec.role == "latent" else container.storable_step(0.02 * (k + 1))
        out.append(container.CodedTensor(spec, np.float32(step), symbols))
    return out


def test_golden_latent_file():
    """A latent-representation file written once and pinned (representation 1: first scale 2, 3 levels, 2
    channels with the Morton-layout bit, 1 hidden layer of 4, node counts 40, 9, 2 as varints; latent steps 1): any
    change to this format or its coder must be deliberate."""
    data = container.encode(GOLDEN_HEADER, golden_tensors(), REGISTRY)
    assert data[8:17] == bytes([1, 2, 3, 0x80 | 2, 1, 4, 40, 9, 2])
    assert hashlib.sha256(data).hexdigest()[:16] == GOLDEN_SHA
    header, decoded = container.decode(data, REGISTRY)
    assert dataclasses.replace(header, steps=()) == GOLDEN_HEADER
    for a, b in zip(golden_tensors(), decoded):
        assert (a.spec, a.step) == (b.spec, b.step)
        np.testing.assert_array_equal(a.symbols, b.symbols)


GOLDEN_GEOMETRY = np.concatenate([cube(8, 2), cube(12) + 9])  # 1792 points, a sparse block and a dense one
GOLDEN_CONTEXT_SHA = "609e981014c4bdd7"


def golden_context_file():
    config = latent.for_geometry(latent.LatentConfig(channels=2, hidden=4, layers=1), GOLDEN_GEOMETRY)
    header = dataclasses.replace(GOLDEN_HEADER, model=config)
    return header, golden_tensors(config)


def test_golden_context_coded_latent_file():
    """A context-coded latent file (bit 6 of the channels byte) on a small fixed geometry, pinned: the parity
    passes, the neighbour contexts, the ordered coder and its segments (blocks growing over a level's channel) must
    not change by accident (the stream without segments is 7 bytes shorter here, so the pin sees them)."""
    header, tensors = golden_context_file()
    assert header.model.contexts
    data = container.encode(header, tensors, REGISTRY, GOLDEN_GEOMETRY)
    assert data[11] & latent.CONTEXT_CODED
    assert hashlib.sha256(data).hexdigest()[:16] == GOLDEN_CONTEXT_SHA
    decoded_header, decoded = container.decode(data, REGISTRY, GOLDEN_GEOMETRY)
    assert dataclasses.replace(decoded_header, steps=()) == header
    for a, b in zip(tensors, decoded):
        assert (a.spec, a.step) == (b.spec, b.step)
        np.testing.assert_array_equal(a.symbols, b.symbols)


def test_files_of_the_raster_layout_are_refused():
    """Files written before the Morton layout (bit 7 of the channels byte clear) hold their latents in another
    order: refused in one line, never decoded to wrong colours."""
    data = bytearray(container.encode(GOLDEN_HEADER, golden_tensors(), REGISTRY)[:-4])
    data[11] &= 0x7F
    with pytest.raises(NicError, match="earlier layout"):
        container.decode(bytes(data) + container.U32.pack(zlib.crc32(data)), REGISTRY)


def test_context_passes_find_the_occupied_neighbours_of_earlier_classes():
    """Each node's causal neighbours (offsets whose node is of a parity class before its own), found by adding in
    Morton space, are the brute-force ones, at the frame's edges too (coordinates 0 and 2^21 − 1)."""
    top = (1 << 21) - 1
    rng = np.random.default_rng(3)
    nodes = np.concatenate([rng.integers(0, 6, (150, 3)), [[0, 0, 0], [top, 5, 0], [top - 1, 5, 0], [top] * 3,
                                                            [top - 1, top, top - 1], [0, top, 1]]])
    keys = np.unique(latent._pack(nodes))
    where = {tuple(n): i for i, n in enumerate(latent._unpack(keys).tolist())}
    passes = latent.context_passes(keys)
    assert sorted(np.concatenate([sel for sel, _ in passes]).tolist()) == list(range(len(keys)))
    for p, (sel, neighbours) in enumerate(passes):
        offsets = latent._OFFSETS[(latent._OFFSET_CLASSES ^ p) < p]
        for row, i in enumerate(sel):
            node = latent._unpack(keys[i])
            expected = [where.get(tuple((node + d).tolist()), -1) for d in offsets]
            assert neighbours[row].tolist() == expected


def test_the_neighbour_table_holds_every_neighbour():
    """neighbour_table (from the causal passes, written forwards and back) has at each of the 27 offsets the
    brute-force neighbour, or −1."""
    rng = np.random.default_rng(5)
    xyz = np.concatenate([rng.integers(0, 7, (200, 3)), rng.integers(40, 44, (30, 3))]).astype(np.float64)
    tree = latent.octree(xyz, (0, 1))
    for level, keys in enumerate(tree.keys):
        nodes = latent._unpack(keys)
        where = {tuple(n): i for i, n in enumerate(nodes.tolist())}
        table = latent.neighbour_table(tree, level)
        for d in np.array([(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]):
            expected = [where.get(tuple((n + d).tolist()), -1) for n in nodes]
            assert table[latent._offset_code(d)].tolist() == expected


def test_features_from_the_neighbour_table_are_the_searched_ones(monkeypatch):
    """At the geometry's own points (each in an occupied node) features read each cell's corners from the
    neighbour table; they are the key search's (random access keeps it), on sparse and dense clouds, at levels
    from 2^0 (where voxel centres weigh only their own node) and above. Within `keeping_octrees` the octree is
    kept for the same content and levels only; outside, none is."""
    rng = np.random.default_rng(6)
    sparse = np.unique(rng.integers(0, 60, (2500, 3)), axis=0).astype(np.float64)
    for xyz, scales in ((sparse, (1, 2, 3)), (sparse, (0, 2, 4)), (cube(14), (0, 1, 2, 3))):
        with latent.keeping_octrees():
            tree = latent.octree(xyz, scales)
            assert latent.octree(xyz.copy(), scales) is tree
            assert latent.octree(xyz, scales[1:]) is not tree
            assert latent.octree(xyz, scales) is not tree  # only the last one is kept
        assert latent.octree(xyz, scales) is not latent.octree(xyz, scales)
        tree = latent.octree(xyz, scales)
        near = np.concatenate([xyz[:40] + rng.uniform(-0.5, 0.5, (40, 3)), xyz[:5] + 30.0])  # one off the frame
        fast, off = latent.features(tree, xyz), latent.features(tree, near)
        assert latent._own_nodes(tree, (xyz - tree.low + 0.5).astype(np.float32)) is not None
        monkeypatch.setattr(latent, "_own_nodes", lambda tree, p: None)
        np.testing.assert_array_equal(latent.features(tree, xyz), fast)
        np.testing.assert_array_equal(latent.features(tree, near), off)
        monkeypatch.undo()
        if scales[0] == 0:  # level 0 at voxel centres: only the own node is looked up, the other corners −1
            assert (fast[:, 1:8] == -1).all() and (fast[:, 0] >= 0).all()


def test_node_keys_are_morton_codes():
    """Sorted keys put a level's nodes in Morton order (z fastest, then y, then x, bit by bit), a parent's key is
    its children's >> 3, and keys round-trip to node indices over the whole 21-bit range."""
    rng = np.random.default_rng(0)
    nodes = rng.integers(0, 1 << 21, (1000, 3))
    np.testing.assert_array_equal(latent._unpack(latent._pack(nodes)), nodes)
    np.testing.assert_array_equal(latent._pack(nodes) >> 3, latent._pack(nodes >> 1))
    assert latent._pack(np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 2]])).tolist() == [1, 2, 4, 8]
    xyz = rng.integers(0, 64, (500, 3))
    tree = latent.octree(xyz, (1, 2, 3))
    for finer, coarser in zip(tree.keys[:-1], tree.keys[1:]):
        np.testing.assert_array_equal(np.unique(finer >> 3), coarser)


def test_latents_refuse_grayscale_images_and_init_artefacts(cloud):
    gray = codec.image_signal(np.zeros((8, 8), np.uint8))
    with pytest.raises(NicError, match="three colour channels"):
        codec.plan(gray, quick())
    from nicjax import inits

    with pytest.raises(ValueError, match="SIREN"):
        codec.plan(codec.cloud_signal(cloud), dataclasses.replace(quick(), init=next(iter(inits.shipped()))))


def test_the_seeded_reference_of_latents_is_zero():
    """The decoder regenerates the reference from the seed: latents start at zero, so they code as themselves."""
    config = latent.LatentConfig(scales=(1, 2), counts=(10, 3), channels=1, hidden=16)
    params = latent.LATENT.init(config, jax.random.key(0))
    assert not np.asarray(params[latent.latent_name(0)]).any()


def test_nearest_node_features_and_their_header_bit():
    """The ablation baseline: each point reads its own node only; the header says so (bit 7 of the layers byte)."""
    xyz = cube(8)
    tree = latent.octree(xyz, (1, 2))
    idx, w = map(np.asarray, latent.neighbour_weights((1, 2), latent.features(tree, xyz), nearest=True))
    assert ((w == 0) | (w == 1)).all() and (w.sum(-1) == 1).all()
    for level, k in enumerate((1, 2)):
        own = latent._pack(np.floor((xyz + 0.5) / (1 << k)).astype(np.int64))
        picked = idx[:, level][w[:, level] == 1]
        assert (tree.keys[level][picked] == own).all()
    config = dataclasses.replace(latent.for_geometry(latent.LatentConfig(), xyz), interpolation="nearest")
    raw = latent.LATENT.config_bytes(config)
    assert raw[3] == 0x80 | config.layers
    assert latent.LATENT.config_from_bytes(container.Reader(raw, len(raw)), None) == config


def test_the_preset_keeps_the_better_of_its_two_trainings(cloud):
    """latent_noise="best": both relaxations trained; the one kept has the lower D + λ·R (real latent bytes)."""
    from nicjax import fit

    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, quick(steps=120, latent_noise="best"))
    params, history = codec.train(signal, p, progress=False)
    costs = history["rd_costs"]
    assert set(costs) == {"noise", "mixed"} and costs["noise"] != costs["mixed"]
    assert history["latent_noise"] == min(costs, key=costs.get)
    assert fit.rd_cost(p.model, params, p.inputs, p.targets, p.fit.loss_weights, p.fit.rate_lambda) == \
        pytest.approx(min(costs.values()))


def test_the_latents_own_learning_rate(cloud):
    """latent_learning_rate scales the latents' Adam steps only: after one step from zero latents the network is
    the same whatever the latents' rate, and the latents have moved by about that rate (0: the network's, 1e-2;
    its one step rounds back to 0, a step of 1.0 does not)."""
    from nicjax import fit

    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, dataclasses.replace(quick(steps=1), fit=dataclasses.replace(quick().fit, steps=1,
                                                                                     latent_init="zeros")))
    runs = {}
    for llr in (0.0, 1.0):
        fc = dataclasses.replace(p.fit, steps=1, latent_learning_rate=llr)
        runs[llr], _ = fit.fit_rate_distortion(p.model, p.start, p.inputs, p.targets, fc, 0.0, hard_fraction=0.0,
                                               progress=False)
    first = latent.layer_name(0)
    np.testing.assert_array_equal(np.asarray(runs[0.0][first]["kernel"]), np.asarray(runs[1.0][first]["kernel"]))
    assert not np.asarray(runs[0.0][latent.latent_name(0)]).any()
    assert np.abs(np.asarray(runs[1.0][latent.latent_name(0)])).max() == 1


def test_training_snapshots_hold_the_latents_as_coded(cloud):
    """The snapshots a callback sees (rd_sweep codes them) hold rounded latents, the last one what training returns:
    no float latent reaches the coder's choices (the dead-input prune read them once)."""
    from nicjax import fit

    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, quick(steps=20))
    seen = {}
    trained, _ = fit.fit_rate_distortion(p.model, p.start, p.inputs, p.targets, dataclasses.replace(p.fit, steps=20,
                                         steps_per_call=10), 1e-3, hard_fraction=0.0, progress=False,
                                         callback=lambda step, params: seen.__setitem__(step, params))
    assert sorted(seen) == [10, 20]
    for name in (t.name for t in p.model.tensors() if t.role == "latent"):
        for params in seen.values():
            values = np.asarray(params[name])
            np.testing.assert_array_equal(values, np.round(values))
        np.testing.assert_array_equal(np.asarray(seen[20][name]), np.asarray(trained[name]))


def test_the_rate_models_own_learning_rate(cloud):
    """rate_model_learning_rate scales the rate model's Adam steps only: by rule RATE_MODEL_GAIN times the
    network's rate; after one step every scale that had a gradient has moved by that rate (Adam's first step),
    and the network and the latents are the same whatever the rate model's rate."""
    from nicjax import fit

    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, quick(steps=1))
    assert p.fit.rate_model_learning_rate == pytest.approx(configs.RATE_MODEL_GAIN * p.fit.learning_rate)
    neighbours = p.model.representation.rate_neighbours(p.model.config, signal.geometry)
    runs = {}
    for rate_lr in (p.fit.learning_rate, p.fit.rate_model_learning_rate):
        fc = dataclasses.replace(p.fit, steps=1, rate_model_learning_rate=rate_lr)
        runs[rate_lr] = fit.fit_rate_distortion(p.model, p.start, p.inputs, p.targets, fc, 1e-3, hard_fraction=0.0,
                                                progress=False, neighbours=neighbours)
    (slow, slow_history), (fast, fast_history) = runs.values()
    for name in slow:
        for a, b in zip(jax.tree_util.tree_leaves(slow[name]), jax.tree_util.tree_leaves(fast[name])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for name, scales in slow_history["rate_model"]["log_scales"].items():
        moved_slow = np.abs(np.asarray(scales))
        moved_fast = np.abs(np.asarray(fast_history["rate_model"]["log_scales"][name]))
        assert moved_slow.max() == pytest.approx(p.fit.learning_rate, rel=1e-2)  # Adam: lr·g/(|g| + eps)
        np.testing.assert_allclose(moved_fast, configs.RATE_MODEL_GAIN * moved_slow, rtol=1e-3)


def test_the_context_rate_model_sees_the_coders_contexts(cloud):
    """Training's context rate model (fit.context_rate_bits) reads each node's context from the same neighbours
    and with the same integer arithmetic as the coder (latent.context_kinds on the decoded classes before the
    node's pass, which the coder's `_by_context` computes too), and prices each value under its context's
    Laplace; a training with it writes a file that decodes."""
    import jax.numpy as jnp

    from nicjax import fit

    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, quick(steps=60))
    config = p.model.config
    neighbours = latent.LATENT.rate_neighbours(config, cloud.xyz)
    plan = latent.LATENT.payload_plan(config, cloud.xyz)
    rng = np.random.default_rng(4)
    latents, log_scales, expected = {}, {}, 0.0
    for level, (passes, count) in enumerate(zip(plan, config.counts)):
        name = latent.latent_name(level)
        q = np.round(rng.laplace(0, 1.5, (config.channels, count)))
        scales = rng.uniform(-2, 1, (config.channels, latent.CONTEXTS))
        latents[name], log_scales[name] = jnp.asarray(q, jnp.float32), jnp.asarray(scales, jnp.float32)
        for c in range(config.channels):
            kinds, coded = np.empty(count, np.int64), np.full(count, -1)
            values = np.append(q[c].astype(np.int64), 0)
            for (sel, nb), (_, padded, n) in zip(passes, latent._coding_passes(passes, count)):
                kinds[sel] = latent.context_kinds(q[c].astype(np.int64), nb) - latent.CONTEXT_KIND0
                for k, nodes in latent._by_context(values, sel, padded, n):  # the coder's grouping of the pass
                    coded[nodes] = k - latent.CONTEXT_KIND0
            np.testing.assert_array_equal(coded, kinds)
            assert kinds.min() >= 0 and kinds.max() < latent.CONTEXTS and len(np.unique(kinds)) > 3
            expected += float(np.sum(fit.laplace_bits(jnp.asarray(q[c], jnp.float32),
                                                      jnp.asarray(scales[c][kinds], jnp.float32))))
    kinds = fit.context_kinds_of(latents, {k: jnp.asarray(v) for k, v in neighbours.items()})
    got = fit.context_rate_bits(latents, kinds, {"log_scales": log_scales})
    assert float(got) == pytest.approx(expected, rel=1e-5)
    contextual = dataclasses.replace(quick(), fit=dataclasses.replace(quick().fit, rate_model="context"))
    r = codec.compress_cloud(cloud, contextual, progress=False)
    mean = np.repeat(np.round(cloud.rgb.mean(0, keepdims=True)).astype(np.uint8), len(cloud.rgb), 0)
    assert r.psnr["y"] > colour_psnr(cloud.rgb, mean)["y"] + 4
    assert codec.compress_cloud(cloud, contextual, progress=False).data == r.data


def test_training_contexts_do_not_depend_on_the_chunking(cloud):
    """The context rate model's contexts are refreshed at fixed step indices (fit.CONTEXT_REFRESH), so a training cut
    into other jit chunks (rd_sweep's snapshots change them) ends with the same latents."""
    from nicjax import fit

    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, quick(steps=120))
    out = []
    for per_call in (30, 50):
        fc = dataclasses.replace(p.fit, steps=120, steps_per_call=per_call)
        params, _ = fit.fit_rate_distortion(p.model, p.start, p.inputs, p.targets, fc, 2e-3, progress=False,
                                            neighbours=latent.LATENT.rate_neighbours(p.model.config, cloud.xyz))
        out.append(params)
    for name in out[0]:
        if name.startswith("latent_"):
            np.testing.assert_array_equal(np.asarray(out[0][name]), np.asarray(out[1][name]))


def dense_cloud():
    """A dense cube (levels from 2^0: 3 channels by rule) with smooth colours and a little noise."""
    xyz = cube(12)
    rng = np.random.default_rng(2)
    rgb = 128 + 60 * np.sin(xyz[:, :1] / 3 + np.arange(3)) + 40 * np.cos(xyz[:, 1:2] / 2) + rng.normal(0, 4, xyz.shape)
    return pointcloud.PointCloud(xyz, np.clip(rgb, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("dense", [False, True])
def test_the_pyramid_start_is_a_linear_read_out_of_node_means(cloud, dense):
    """FitConfig.latent_init "pyramid" (the default): integer latents, coarsest level first the node means of what
    the coarser levels leave (channel c < 3: colour component c), and a network that starts as the exact read-out
    mean + Σ_levels feature / gain (GELU pairs), already much closer to the colours than their mean; "zeros"
    starts from zero latents."""
    lam = 1e-3
    signal = codec.cloud_signal(dense_cloud() if dense else cloud)
    start = codec.plan(signal, quick(lam=lam))
    config, gain = start.model.config, configs.pyramid_gain(lam)
    used = min(config.channels, 3)
    assert 1 < gain <= 1024 and config.channels == (latent.DENSE_CHANNELS if dense else 1)
    for level in range(len(config.scales)):
        values = np.asarray(start.start[latent.latent_name(level)])
        assert (values == np.round(values)).all() and values[:used].any() and not values[used:].any()
    features = np.asarray(latent.gather(config, start.start, start.inputs), np.float64)
    readout = np.repeat(start.targets.mean(0, keepdims=True), len(features), 0)
    readout[:, :used] += sum(features[:, l * config.channels:l * config.channels + used]
                             for l in range(len(config.scales))) / gain
    out = np.asarray(latent.apply(config, start.start, start.inputs), np.float64)
    np.testing.assert_allclose(out, readout, atol=2e-4)
    mse = lambda y: ((y - start.targets)[:, :used] ** 2).mean()  # noqa: E731
    assert mse(out) < 0.2 * mse(start.targets.mean(0))

    zeros = codec.plan(signal, dataclasses.replace(quick(lam=lam), fit=dataclasses.replace(
        quick(lam=lam).fit, latent_init="zeros")))
    assert not any(np.asarray(zeros.start[latent.latent_name(l)]).any() for l in range(len(config.scales)))
    with pytest.raises(ValueError, match="latent_init"):
        codec.plan(signal, dataclasses.replace(quick(), fit=dataclasses.replace(quick().fit, latent_init="mean")))


def test_the_pyramid_start_needs_fewer_steps(cloud):
    """A short training from the pyramid start codes the colours far better than the same training from zeros
    (here ~30 against ~16 dB), and its file is the same bytes twice."""
    short = quick(steps=90, lam=1e-3)
    pyramid = codec.compress_cloud(cloud, short, progress=False)
    zeros = codec.compress_cloud(cloud, dataclasses.replace(short, fit=dataclasses.replace(
        short.fit, latent_init="zeros")), progress=False)
    assert pyramid.psnr["y"] > zeros.psnr["y"] + 5
    assert codec.compress_cloud(cloud, short, progress=False).data == pyramid.data


# --- images: latents on the pixel grid (a flat cloud, image.pixel_geometry) --------------------------------------

def test_an_image_latent_file_decodes_from_its_bytes_alone_and_between_its_pixels():
    """An image coded with latents needs no geometry: the decoder builds the pixel grid from the header's size and
    gets exactly the encoder's colours; the same input and λ give the same bytes; at scale 3 the centre sub-pixel
    of every 3×3 block is the coded pixel's centre, so those decode to the 1× colours; the levels are the pixel
    grid's quadtree (full resolution, 1/2, ...), 3 channels each (levels from 2^0)."""
    img = imaging.procedural_image(24, 40)
    config = quick(steps=120, lam=1e-3)
    result = codec.compress_image(img, config, progress=False)
    header = codec.read_header(result.data)
    assert header.signal.kind == container.SIGNAL_IMAGE and header.representation == latent.LATENT.id
    assert header.model.scales[0] == 0 and header.model.channels == latent.DENSE_CHANNELS
    assert header.model.counts[:2] == (24 * 40, 12 * 20)
    np.testing.assert_array_equal(codec.decompress_image(result.data), result.decoded)
    assert result.psnr > 25
    assert codec.compress_image(img, config, progress=False).data == result.data
    assert codec.compress_image(img, quick(steps=120, lam=1e-2), progress=False).data != result.data
    fine = codec.decompress_image(result.data, scale=3)
    assert fine.shape == (72, 120, 3)
    np.testing.assert_array_equal(fine[1::3, 1::3], result.decoded)
    assert imaging.image_psnr(result.decoded, codec.decompress_image(result.data, scale=2)[::2, ::2]) > 25


def test_pixel_positions_at_scale_one_are_the_pixel_geometry():
    np.testing.assert_array_equal(imaging.pixel_positions(5, 7), imaging.pixel_geometry(5, 7))
    p = imaging.pixel_positions(2, 3, 2.0)  # 4x6: quarter-pixel offsets from the coded centres
    assert p[:, 0].reshape(4, 6)[:, 0].tolist() == [-0.25, 0.25, 0.75, 1.25]
    assert p[:, 1].reshape(4, 6)[0].tolist() == [-0.25, 0.25, 0.75, 1.25, 1.75, 2.25]


GOLDEN_IMAGE_SHA = "37817d4001ab17f1"


def golden_image_file():
    """An RGB 9x13 image's latent file: levels 2^0..2^3 of its pixel grid, 2 channels, a 4x1 network."""
    geometry = imaging.pixel_geometry(9, 13)
    config = latent.for_geometry(latent.LatentConfig(scales=(0, 1, 2, 3), channels=2, hidden=4, layers=1, flat=True),
                                 geometry)
    header = container.Header(container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, height=9, width=13),
                              latent.LATENT.id, config, container.Reference(container.REFERENCE_SEEDED, seed=3))
    return header, golden_tensors(config)


def test_golden_image_latent_file():
    """An image latent file pinned: the image header (kind, size), the latent configuration on the pixel grid and
    its context-coded payload, which the decoder reads with the grid it derives from the header alone
    (codec.header_geometry)."""
    header, tensors = golden_image_file()
    assert header.model.scales == (0, 1, 2, 3) and header.model.counts == (117, 35, 12, 4)
    data = container.encode(header, tensors, REGISTRY, imaging.pixel_geometry(9, 13))
    assert hashlib.sha256(data).hexdigest()[:16] == GOLDEN_IMAGE_SHA
    decoded_header, decoded = container.decode(data, REGISTRY, lambda h: codec.header_geometry(h, None))
    assert dataclasses.replace(decoded_header, steps=()) == header
    for a, b in zip(tensors, decoded):
        np.testing.assert_array_equal(a.symbols, b.symbols)


def test_flat_features_are_the_trilinear_ones_on_a_pixel_grid():
    """On a flat geometry (an image's pixel grid) the 4 in-plane corners give the features the 8 corners give (the
    other 4 are never occupied; the z weight cancels in the renormalisation), at the pixels and between them."""
    geometry = imaging.pixel_geometry(9, 13)
    config = latent.for_geometry(latent.LatentConfig(scales=(0, 1, 2, 3), channels=2, hidden=4, layers=1), geometry)
    params = latent.init_params(config, jax.random.key(1))
    rng = np.random.default_rng(0)
    params = {k: (jax.numpy.asarray(rng.integers(-5, 6, v.shape), jax.numpy.float32) if k.startswith("latent") else v)
              for k, v in params.items()}
    flat = dataclasses.replace(config, flat=True)
    for points in (geometry, imaging.pixel_positions(9, 13, 2.5)):
        full = latent.LATENT.inputs(config, geometry, points)
        four = latent.LATENT.inputs(flat, geometry, points)
        assert four.shape[1] == 4 * 4 + 3 and full.shape[1] == 4 * 8 + 3
        np.testing.assert_allclose(latent.gather(flat, params, four), latent.gather(config, params, full), atol=1e-5)


def test_the_layer_table_finds_the_corners_the_key_search_finds(monkeypatch):
    """Images' features look their corners up in a dense table of each level's one z layer (`_layer_table`): the
    same indices as the search of the corners' keys, at the pixels, between them, and off the grid and its layer."""
    for h, w in [(9, 13), (1, 1), (5, 40)]:
        geometry = imaging.pixel_geometry(h, w)
        tree = latent.octree(geometry, (0, 1, 2, 3))
        points = np.concatenate([geometry, imaging.pixel_positions(h, w, 2.5),
                                 [[-5.0, 3, 0], [h + 10.0, w + 10.0, 0], [1, 1, 1], [1, 1, -3], [1e7, 0, 0]]])
        table = latent.features(tree, points, flat=True)
        monkeypatch.setattr(latent, "_layer_table", lambda keys: None)
        np.testing.assert_array_equal(latent.features(tree, points, flat=True), table)
        monkeypatch.undo()
    assert latent._layer_table(latent.octree(cube(4), (0,)).keys[0]) is None  # several layers: the key search

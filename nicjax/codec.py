"""NIC: encode(signal, config) -> bytes and decode(bytes, context) -> values. Glue only.

    Signal ─fit(model.apply)→ params ─quantize(params − reference)→ tensors ─container→ bytes
    bytes ─container→ header, tensors ─dequantize(+ reference)→ params ─model.apply(inputs)→ colours

The pieces live elsewhere: the representation (nicjax.representations), training and QAT (fit), quantization
(quantize), the file format (container), colours (signals.color), configs (configs). What is coded against — the
reference — is resolved once per encode and per decode (`reference_params`).

Point clouds: inputs = (xyz − offset)·scale from the geometry's own bounding box; the decoder is given the
    geometry. BT.709 YCbCr, loss 0.6·Y + 0.2·Cb + 0.2·Cr (FitConfig.loss_weights), as in the paper.
Images: inputs = the H×W grid of pixel centres (signals.image.grid); the header holds H and W, so the file alone
    decodes, on that grid or on a finer one (DecodeContext.scale). RGB (default) or BT.709 YCbCr, with loss
    weights that make the loss the RGB MSE. A representation built on a geometry (latents) reads the pixel grid as
    a flat cloud (`geometry_of`, `header_geometry`: signals.image.pixel_geometry), derived from H and W.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time

import jax
import numpy as np

from nicjax import configs, container, fit as fitting, inits, quantize as quant, representations
from nicjax.configs import CodecConfig, FitConfig, IMAGE
from nicjax.errors import NicError
from nicjax.metrics import colour_psnr
from nicjax.representations import Model, latent
from nicjax.signals import Signal, color, image as imaging, pointcloud

NAME = "nic"
MAGIC = container.MAGIC
_REFERENCE_KINDS = {"zeros": container.REFERENCE_ZEROS, "seeded": container.REFERENCE_SEEDED,
                    "init": container.REFERENCE_ARTEFACT}
_IMAGE_COLOUR_SPACES = {"auto": container.COLOUR_RGB, "rgb": container.COLOUR_RGB,
                        "ycbcr": container.COLOUR_YCBCR709}  # "auto": RGB trained better per bit (README)


@dataclasses.dataclass(frozen=True)
class DecodeContext:
    """What a decoder may be given besides the file."""

    geometry: np.ndarray | None = None  # point clouds: the (N, 3) coordinates (required)
    init_search: tuple = ()  # init artefact files or ids to look in, besides the shipped ones
    scale: float = 1.0  # images: decode on a grid `scale`× as fine as the coded one


@dataclasses.dataclass
class Decoded:
    header: container.Header
    values: np.ndarray  # point clouds: (N, 3) colours in `xyz` order; images: (H, W, C) pixels
    xyz: np.ndarray | None = None  # point clouds: the geometry as coded (voxelized if the encoder voxelized)


@dataclasses.dataclass
class Encoded:
    data: bytes
    header: container.Header
    seconds: dict  # "fit" (training, before QAT), "encode" (all of it)


# --- what the header says ------------------------------------------------------------------------------------

def model_of(header: container.Header) -> Model:
    return Model(representations.REGISTRY[header.representation], header.model)


def architecture(config: CodecConfig, signal: Signal) -> tuple[Model, inits.Init | None]:
    """(the model to train for this signal, the init artefact or None). An init artefact defines the architecture:
    a config that asks for a different one is a ValueError."""
    rep = representations.by_name(config.representation)
    model_config = config.model
    if not isinstance(model_config, type(rep.default_config)):  # e.g. the SIREN default with representation latent
        model_config = rep.default_config
    init = inits.find(config.init) if config.init else None
    if init is not None:
        if rep is not representations.siren.SIREN:
            raise ValueError(f"init artefacts hold SIREN networks, not {rep.name}")
        ours = rep.with_io(config.model, init.model.in_dim, init.model.out_dim)
        if ours != init.model and config.model != CodecConfig.model:
            m, i = config.model, init.model
            raise ValueError(f"init {init.id} is a {i.width}x{i.depth} network (ω0 {i.omega0:g}): it cannot be "
                             f"trained as {m.width}x{m.depth} (ω0 {m.omega0:g}); leave the architecture unset")
        if (init.model.in_dim, init.model.out_dim) != (signal.in_dim, signal.channels):
            raise NicError(f"init {init.id} maps {init.model.in_dim} -> {init.model.out_dim} values, the signal "
                           f"needs {signal.in_dim} -> {signal.channels}")
        model_config = init.model
    model_config = rep.with_io(model_config, signal.in_dim, signal.channels)
    if hasattr(rep, "for_geometry"):  # built on the geometry: latents on its octree (an image's: its pixel grid)
        if signal.channels != 3:
            raise NicError(f"the {rep.name} representation codes three colour channels, not {signal.channels}: "
                           "use --representation siren for grayscale images")
        # by rule at small λ (configs.POINT_LEVEL_LAMBDA): latent levels from 2^0, whatever the density; the
        # network by the point count and λ
        if signal.info.kind == container.SIGNAL_IMAGE:  # the pixel grid: 4 in-plane corners (as the decoder reads it)
            model_config = dataclasses.replace(model_config, flat=True)
        model_config = rep.for_geometry(model_config, geometry_of(signal),
                                        point_level=config.fit.rate_lambda < configs.POINT_LEVEL_LAMBDA,
                                        rate_lambda=config.fit.rate_lambda)
    return Model(rep, model_config), init


def geometry_of(signal: Signal) -> np.ndarray:
    """The geometry a representation built on it (latents) reads: a cloud's coded coordinates, an image's pixel grid
    as a flat cloud (imaging.pixel_geometry)."""
    if signal.info.kind == container.SIGNAL_IMAGE:
        return imaging.pixel_geometry(signal.info.height, signal.info.width)
    return signal.geometry


def header_geometry(header: container.Header, geometry: np.ndarray | None) -> np.ndarray | None:
    """The same from the decoder's side: an image file's pixel grid from its header's size; a cloud file's coded
    geometry, checked against the header (`coded_geometry`), or None where the decoder was given none."""
    if header.signal.kind == container.SIGNAL_IMAGE:
        return imaging.pixel_geometry(header.signal.height, header.signal.width)
    return None if geometry is None else coded_geometry(header, geometry)


def has_latents(model: Model) -> bool:
    return any(t.role == "latent" for t in model.tensors())


def network_inputs(model: Model, xyz: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """What the model reads at `points` (default: the geometry's own) of a cloud coded on geometry `xyz`: the
    coordinates normalised by the geometry's bounding box, or, for a representation built on the geometry, what
    it derives from it (latent: neighbour indices and interpolation weights)."""
    rep = model.representation
    if hasattr(rep, "inputs"):
        return rep.inputs(model.config, xyz, points)
    if points is None:
        return pointcloud.normalised(xyz)
    offset, scale = pointcloud.normalisation(xyz)
    return pointcloud.normalise(np.asarray(points, np.float64), offset, scale)


def resolve_reference(config: CodecConfig) -> str:
    if config.reference == "auto":
        return "init" if config.init else "seeded"
    if config.reference == "init" and not config.init:
        raise ValueError("reference 'init' needs an init artefact (CodecConfig.init / --init)")
    return config.reference


def header_for(signal: Signal, config: CodecConfig, model: Model, init: inits.Init | None) -> container.Header:
    kind = _REFERENCE_KINDS[resolve_reference(config)]
    if config.fit.seed < 0:
        raise ValueError(f"the seed must be non-negative, got {config.fit.seed}")
    reference = container.Reference(kind, seed=config.fit.seed if kind == container.REFERENCE_SEEDED else 0,
                                    id=init.id_bytes if kind == container.REFERENCE_ARTEFACT else b"\0" * 8)
    header = container.Header(signal.info, model.representation.id, model.config, reference)
    model.representation.config_bytes(model.config)  # what the header cannot store fails now, before training
    return header


def reference_params(header: container.Header, init_search: tuple = ()):
    """The parameters the tensors are coded against, rebuilt from what the header names."""
    model = model_of(header)
    kind = header.reference.kind
    if kind == container.REFERENCE_SEEDED:
        # JAX's threefry PRNG gives the same bits on every platform, so the decoder regenerates the init.
        return model.init(jax.random.key(header.reference.seed))
    if kind == container.REFERENCE_ZEROS:
        return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(model.init, jax.random.key(0)))
    init = find_init(header.reference.id.hex(), init_search)
    if init.model != header.model:  # an init defines the architecture: no encoder writes another one against it
        i, m = init.model, header.model
        raise NicError(f"file is corrupted (it describes a {m.width}x{m.depth} network, ω0 {m.omega0:g}, coded against "
                       f"init {init.id}, a {i.width}x{i.depth} network, ω0 {i.omega0:g})")
    return init.params


def find_init(init_id: str, init_search: tuple = ()) -> inits.Init:
    """The init artefact with this id among `init_search` (paths or ids) and the shipped inits."""
    for candidate in init_search:
        init = inits.find(candidate)
        if init.id == init_id:
            return init
    if init_id in inits.shipped():
        return inits.load(inits.shipped()[init_id])
    given = ", ".join(f"{c} (id {inits.find(c).id})" for c in init_search)
    raise NicError(f"file was coded against init {init_id}, which is not available"
                   + (f": the given init is {given}" if given else ": pass its file with --init"))


# --- bytes <-> params ----------------------------------------------------------------------------------------

def write(header: container.Header, params, reference, levels: int, steps=None, geometry=None) -> bytes:
    """Quantizes params against `reference` (the header's) and returns the file's bytes (`steps`: see quantize;
    `geometry`: the coded geometry, which latent files code their latents against)."""
    tensors = quant.quantize(params, reference, levels, steps, specs=model_of(header).tensors())
    return container.encode(header, tensors, representations.REGISTRY, geometry)


def read(data: bytes, init_search: tuple = (), geometry: np.ndarray | None = None):
    """(header, params) of a file. Given the geometry, a point-cloud file is checked against it before the
    reference is rebuilt (the cheap refusal first)."""
    memo = {}

    def coded(h):  # the coded geometry, checked against the header once (before the payload, if that needs it)
        if "xyz" not in memo:
            memo["xyz"] = header_geometry(h, geometry)
        return memo["xyz"]

    header, tensors = container.decode(data, representations.REGISTRY, coded)
    if geometry is not None and header.signal.kind == container.SIGNAL_POINTCLOUD:
        coded(header)
    params = quant.dequantize(tensors, reference_params(header, init_search))
    if not all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(params)):
        raise NicError("file is corrupted (its parameters are not finite)")
    return header, params


def read_header(data: bytes) -> container.Header:
    """A file's header alone (checked up to its payload): what it codes, with what, at what size. It needs no
    geometry, which a latent file's payload does."""
    header, _, _ = container.decode_header(data, representations.REGISTRY)
    if header is None:  # version 2: small SIREN files, decoded whole
        header, _ = container.decode(data, representations.REGISTRY)
    return header


# --- encode --------------------------------------------------------------------------------------------------

def training_targets(signal: Signal) -> np.ndarray:
    return color.targets_from_colours(signal.colours, signal.colour_bits, signal.info.colour_space)


def fit_config_for(signal: Signal, config: CodecConfig, model: Model | None = None) -> FitConfig:
    """config.fit with the signal's loss weights and (latents) by rule what it leaves at 0: the latents' learning
    rate (configs.IMAGE_LATENT_LR on images, configs.DENSE_LATENT_LR on dense clouds, latent.is_dense), the rate
    model's (configs.RATE_MODEL_GAIN times the network's), the training steps (configs.DENSE_STEPS on dense clouds
    at λ below configs.DENSE_STEPS_LAMBDA, else LATENT_STEPS, and on images always) and the rounding finish
    (configs.HARD_FRACTION, none on clouds whose levels reach 2^0 by λ alone: `point_level_by_lambda`)."""
    fit = config.fit
    if signal.loss_weights is not None:
        fit = dataclasses.replace(fit, loss_weights=tuple(signal.loss_weights))
    if model is not None and has_latents(model):
        dense = latent.is_dense(model.config)
        fit = dataclasses.replace(
            fit, latent_learning_rate=fit.latent_learning_rate or (
                configs.IMAGE_LATENT_LR if signal.info.kind == container.SIGNAL_IMAGE
                else configs.DENSE_LATENT_LR if dense else 0.0),
            rate_model_learning_rate=fit.rate_model_learning_rate or configs.RATE_MODEL_GAIN * fit.learning_rate,
            steps=fit.steps or (configs.DENSE_STEPS if dense and fit.rate_lambda < configs.DENSE_STEPS_LAMBDA
                                and signal.info.kind != container.SIGNAL_IMAGE else configs.LATENT_STEPS))
        if fit.hard_fraction is None:
            by_lambda = point_level_by_lambda(model.config, signal.geometry)
            fit = dataclasses.replace(fit, hard_fraction=0.0 if by_lambda else configs.HARD_FRACTION)
    return fit


def point_level_by_lambda(model_config, geometry) -> bool:
    """Whether these latent levels start at 2^0 only because λ asked for a point level (configs.POINT_LEVEL_LAMBDA):
    the geometry's levels by density start above it (a sparse cloud)."""
    return (geometry is not None and tuple(model_config.scales[:1]) == (0,)
            and latent.default_scales(geometry)[0] > 0)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything an encode of `signal` under `config` decides before training (the operating-point loop reuses
    it across snapshots and levels)."""

    model: Model
    header: container.Header
    reference: object  # pytree: what the tensors are coded against
    start: object  # pytree: where training starts
    fit: FitConfig
    targets: np.ndarray
    inputs: np.ndarray  # what the model reads (signal.inputs, or what a representation derives from the geometry)


def plan(signal: Signal, config: CodecConfig) -> Plan:
    for levels in (config.levels, *config.level_choices):
        quant.check_levels(levels)
    model, init = architecture(config, signal)
    header = header_for(signal, config, model, init)
    reference = reference_params(header, search_path(config))
    start = init.params if init is not None else model.init(jax.random.key(config.fit.seed))
    inputs = signal.inputs if not hasattr(model.representation, "inputs") else network_inputs(model, geometry_of(signal))
    targets = training_targets(signal)
    if has_latents(model):
        if config.fit.latent_init not in configs.LATENT_INITS:
            raise ValueError(f"unknown latent_init {config.fit.latent_init!r}: use one of "
                             f"{', '.join(configs.LATENT_INITS)}")
        if config.fit.latent_init == "pyramid":
            start = model.representation.pyramid_start(model.config, start, inputs, targets,
                                                       configs.pyramid_gain(config.fit.rate_lambda))
    return Plan(model, header, reference, start, fit_config_for(signal, config, model), targets, inputs)


def search_path(config: CodecConfig) -> tuple:
    """Where the encoder's own decode finds the init artefact it coded against."""
    return (config.init,) if config.init else ()


def train(signal: Signal, p: Plan, *, progress: bool = True, callback=None):
    """Trains from p.start; returns (params, history). Representations with latents train for D + λ·R."""
    if has_latents(p.model):
        rep = p.model.representation
        neighbours = rep.rate_neighbours(p.model.config, geometry_of(signal)) if hasattr(rep, "rate_neighbours") else None
        return fitting.fit_latents(p.model, p.start, p.inputs, p.targets, p.fit, progress=progress, callback=callback,
                                   neighbours=neighbours)
    return fitting.fit(p.model, p.start, p.inputs, p.targets, p.fit, progress=progress, callback=callback,
                       reference=p.reference if p.fit.delta_l1 else None)


def code(signal: Signal, p: Plan, params, levels: int, *, keep_better: bool = True, progress: bool = True,
         level_choices: tuple = ()) -> bytes:
    """QAT at `levels` for p.fit.qat_steps (with `keep_better`, kept only if it lowers the decoded loss), then the
    file's bytes. Representations with latents: the latents as trained (integers), the network at `levels` (or at
    the one of `level_choices` whose file has the least D + λ·R: `least_cost_file`), no QAT (its steps would move
    the latents off the rate they were trained for)."""
    if has_latents(p.model):
        if level_choices:
            return least_cost_file(signal, p, params, level_choices)[0]
        return write(p.header, pruned(p, params), p.reference, levels, geometry=geometry_of(signal))
    params, steps = fitting.quantization_aware(p.model, params, p.reference, levels, p.inputs, p.targets, p.fit,
                                               progress=progress, keep_better=keep_better)
    return write(p.header, params, p.reference, levels, steps)


def pruned(p: Plan, params):
    """What the encoder codes of trained params: the representation's `prune` (weights that change no output set to
    their reference, e.g. latent.prune_dead_inputs), where it has one."""
    rep = p.model.representation
    return rep.prune(p.model.config, params, p.reference) if hasattr(rep, "prune") else params


def least_cost_file(signal: Signal, p: Plan, params, level_choices) -> tuple[bytes, int]:
    """(bytes, levels): the file of least D + λ·R (p.fit.rate_lambda) among the network coded at each of
    `level_choices` (params `pruned` first). D is the weighted MSE of what the decoder's network gives (the
    dequantized weights), R the file's bits per point: the training's objective, on the file itself. Ties go to the
    fewer levels."""
    params = pruned(p, params)
    best = None
    for levels in sorted(level_choices):
        tensors = quant.quantize(params, p.reference, levels, specs=p.model.tensors())
        data = container.encode(p.header, tensors, representations.REGISTRY, geometry_of(signal))
        out = p.model.evaluate(quant.dequantize(tensors, p.reference), p.inputs)
        cost = fitting.weighted_mse64(out, p.targets, p.fit.loss_weights) + p.fit.rate_lambda * 8 * len(data) / len(out)
        if best is None or cost < best[0]:
            best = (cost, data, levels)
    return best[1], best[2]


def encode(signal: Signal, config: CodecConfig, *, progress: bool = True, callback=None) -> Encoded:
    """Fits, quantizes and writes: the codec protocol's encode."""
    t0 = time.perf_counter()
    with latent.keeping_octrees():  # one octree and neighbour search for the plan, the rate model and each file
        p = plan(signal, config)
        params, _ = train(signal, p, progress=progress, callback=callback)
        t_fit = time.perf_counter()
        data = code(signal, p, params, config.levels, progress=progress, level_choices=config.level_choices)
    t_end = time.perf_counter()
    return Encoded(data, p.header, {"fit": t_fit - t0, "encode": t_end - t0})


# --- decode --------------------------------------------------------------------------------------------------

def colours_at(header: container.Header, params, inputs: np.ndarray) -> np.ndarray:
    """The decoded colours (N, C) at network inputs, in the header's colour space and bits."""
    out = model_of(header).evaluate(params, inputs)
    if not np.isfinite(out).all():  # no trained network gives these: steps far beyond what training writes
        raise NicError("file is corrupted (its network gives non-finite colours)")
    return color.colours_from_outputs(out, header.signal.colour_bits, header.signal.colour_space)


def coded_geometry(header: container.Header, xyz: np.ndarray) -> np.ndarray:
    """The geometry the file was coded on, derived from the decoder's geometry; NicError if it does not match."""
    xyz = np.asarray(xyz, np.float64)
    if header.signal.voxelize:
        xyz = pointcloud.voxelize_geometry(xyz)
    crc = header.signal.geometry_crc
    # version-3 files hold geometry_hash; version-2 files the sorted CRC32 (geometry_id), tried only when needed
    if pointcloud.geometry_hash(xyz) != crc and pointcloud.geometry_id(xyz) != crc:
        raise NicError(f"geometry ({len(xyz)} points{', voxelized' if header.signal.voxelize else ''}) does not "
                       "match the one the file was coded for")
    return xyz


def cloud_inputs(header: container.Header, xyz: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """The network inputs at `points` (default: the geometry's) of a cloud file, from the geometry it was coded on;
    a representation built on the geometry checks that it finds there what the header says (latent: its octree's
    node counts, on the one octree its features are read from)."""
    return network_inputs(model_of(header), xyz, points)


def decode_inputs(header: container.Header, context: DecodeContext) -> tuple[np.ndarray, np.ndarray | None]:
    """(what the network reads for this decode, the coded geometry or None): at the geometry's points for a
    cloud, at the output pixels for an image (`context.scale`)."""
    if header.signal.kind == container.SIGNAL_POINTCLOUD:
        if context.geometry is None:
            raise NicError("a point-cloud file decodes only with its geometry")
        xyz = coded_geometry(header, context.geometry)
        return cloud_inputs(header, xyz), xyz
    s = header.signal
    h, w = _image_size(header, context)
    model = model_of(header)
    if hasattr(model.representation, "inputs"):  # latents on the pixel grid: read between the coded pixels
        return network_inputs(model, header_geometry(header, None), imaging.pixel_positions(s.height, s.width,
                                                                                            context.scale)), None
    return imaging.grid(h, w), None


def _image_size(header: container.Header, context: DecodeContext) -> tuple[int, int]:
    s = header.signal
    if s.height < 1 or s.width < 1 or s.height > imaging.MAX_SIDE or s.width > imaging.MAX_SIDE:
        raise NicError(f"file is corrupted (an image of {s.width}×{s.height} pixels)")
    return imaging.scaled_size(s.height, s.width, context.scale)


def decode_params(header: container.Header, params, context: DecodeContext, inputs=None) -> Decoded:
    """The signal a decoded (header, params) describes; `inputs`: `decode_inputs`' result, if computed already."""
    inputs, xyz = decode_inputs(header, context) if inputs is None else inputs
    colours = colours_at(header, params, inputs)
    if header.signal.kind == container.SIGNAL_POINTCLOUD:
        return Decoded(header, colours, xyz)
    h, w = _image_size(header, context)
    return Decoded(header, colours.reshape(h, w, header.model.out_dim))


def decode(data: bytes, context: DecodeContext = DecodeContext()) -> Decoded:
    """The codec protocol's decode: the file's signal, given what `context` holds. A representation that derives
    its inputs from the geometry (latent: a cloud's, or an image's pixel grid) has them computed in a second thread
    while the payload decodes (numpy beside the entropy decoder's Python: two cores busy); the same inputs either
    way."""
    header = container.decode_header(data, representations.REGISTRY)[0]  # None: version 2
    if header is None or not hasattr(model_of(header).representation, "inputs"):
        header, params = read(data, context.init_search, context.geometry)
        return decode_params(header, params, context)
    with latent.keeping_octrees(), concurrent.futures.ThreadPoolExecutor(1) as pool:
        inputs = pool.submit(decode_inputs, header, context)
        header, params = read(data, context.init_search, context.geometry)
        return decode_params(header, params, context, inputs.result())


# --- point clouds: the short forms ---------------------------------------------------------------------------

@dataclasses.dataclass
class CloudResult:
    data: bytes
    xyz: np.ndarray  # the coordinates coded (after optional voxelization)
    rgb: np.ndarray  # the input colours at those coordinates
    decoded_rgb: np.ndarray  # exactly what the decoder returns for `xyz`
    psnr: dict
    seconds: dict

    @property
    def bits_per_point(self) -> float:
        return 8.0 * len(self.data) / len(self.xyz)


def cloud_signal(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig()) -> Signal:
    """The Signal of a cloud (voxelized first if the config says so)."""
    if config.colour_space not in ("auto", "ycbcr"):
        raise ValueError(f"point clouds are coded in YCbCr (the paper's loss), not {config.colour_space!r}")
    if config.voxelize:
        return pointcloud.to_signal(pointcloud.voxelize(cloud), voxelized=True)
    return pointcloud.to_signal(cloud)


def compress_cloud(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig(), *, progress: bool = True,
                   callback=None) -> CloudResult:
    """Fits, quantizes and writes; then decodes the bytes exactly as the decoder will, to report its PSNR."""
    t0 = time.perf_counter()
    signal = cloud_signal(cloud, config)
    encoded = encode(signal, config, progress=progress, callback=callback)
    t_enc = time.perf_counter()
    decoded = decode(encoded.data, DecodeContext(geometry=signal.geometry, init_search=search_path(config)))
    t_dec = time.perf_counter()
    return CloudResult(data=encoded.data, xyz=signal.geometry, rgb=signal.colours, decoded_rgb=decoded.values,
                       psnr=colour_psnr(signal.colours, decoded.values, color.peak(signal.colour_bits)),
                       seconds={"fit": encoded.seconds["fit"], "encode": t_enc - t0, "decode": t_dec - t_enc})


def compress(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig(), *, progress: bool = True) -> bytes:
    return encode(cloud_signal(cloud, config), config, progress=progress).data


def decompress(data: bytes, coordinates: np.ndarray, init_search: tuple = ()) -> np.ndarray:
    """Colours (N, 3) for the given (N, 3) coordinates, in their order. If the encoder voxelized, each point gets
    the colour of the voxel it falls in."""
    if read_header(data).signal.kind != container.SIGNAL_POINTCLOUD:
        raise NicError("file does not hold a point cloud")
    decoded = decode(data, DecodeContext(geometry=coordinates, init_search=init_search))
    if not decoded.header.signal.voxelize:
        return decoded.values
    # decoded.xyz is np.unique's sorted voxel list: map every given point to its voxel.
    _, inverse = np.unique(np.rint(np.asarray(coordinates, np.float64)), axis=0, return_inverse=True)
    return decoded.values[inverse.ravel()]


def sample_cloud(data: bytes, geometry: np.ndarray, points: np.ndarray, init_search: tuple = ()) -> np.ndarray:
    """Random access: the decoded colour field at any (M, 3) points, in the coordinates of `geometry` (the
    geometry the file was coded for; points inside its bounding box are where the network was trained)."""
    if read_header(data).signal.kind != container.SIGNAL_POINTCLOUD:
        raise NicError("file does not hold a point cloud")
    with latent.keeping_octrees():
        header, params = read(data, init_search, geometry)
        xyz = coded_geometry(header, geometry)
        return colours_at(header, params, cloud_inputs(header, xyz, np.asarray(points, np.float64)))


# --- images: the short forms ---------------------------------------------------------------------------------

@dataclasses.dataclass
class ImageResult:
    data: bytes
    pixels: np.ndarray  # (H, W, C) the input
    decoded: np.ndarray  # (H, W, C) exactly what decompress_image(data) returns
    psnr: float  # over all pixels and channels (RGB PSNR for colour images), peak 2^bits − 1
    seconds: dict
    header: container.Header

    @property
    def bits_per_pixel(self) -> float:
        return 8.0 * len(self.data) / (self.pixels.shape[0] * self.pixels.shape[1])


def image_signal(pixels, config: CodecConfig = IMAGE) -> Signal:
    return imaging.to_signal(pixels, _IMAGE_COLOUR_SPACES[config.colour_space])


def decompress_image(data: bytes, scale: float = 1.0, init_search: tuple = ()) -> np.ndarray:
    """Decodes an image file with nothing but its bytes; scale > 1 samples the network on a finer grid."""
    if read_header(data).signal.kind != container.SIGNAL_IMAGE:
        raise NicError("file does not hold an image")
    return decode(data, DecodeContext(scale=scale, init_search=init_search)).values


def compress_image(pixels, config: CodecConfig = IMAGE, *, progress: bool = True, callback=None) -> ImageResult:
    """Fits, quantizes and writes an image; then decodes the bytes as the decoder will, to report its PSNR."""
    signal = image_signal(pixels, config)
    pixels = signal.colours.reshape(signal.info.height, signal.info.width, signal.channels)
    encoded = encode(signal, config, progress=progress, callback=callback)
    t_enc = time.perf_counter()
    decoded = decompress_image(encoded.data, init_search=search_path(config))
    seconds = dict(encoded.seconds, decode=time.perf_counter() - t_enc)
    return ImageResult(data=encoded.data, pixels=pixels, decoded=decoded, header=encoded.header, seconds=seconds,
                       psnr=imaging.image_psnr(pixels, decoded, color.peak(signal.colour_bits)))

"""compress() / decompress(): the only place that knows the whole path from a signal to a .nic file and back.

Every kind of signal goes through the same path as a `Signal`: network inputs (coordinates in [−1, 1]^d), the
colours to fit, and the header fields from which the decoder rebuilds the inputs.

    signal ─→ Signal(coords, colours, header fields) ─fit→ params ─quantize(params − reference)→ symbols
           ─bitstream→ bytes
    bytes ─bitstream→ header, symbols ─dequantize(+ reference)→ params ─siren(coords)→ colours

Point clouds: coords = (xyz − offset)·scale; the decoder is given the geometry; BT.709 YCbCr, loss weighted
    0.6·Y + 0.2·Cb + 0.2·Cr (FitConfig.loss_weights), as in the paper.
Images: coords = the H×W grid of pixel centres (signals.image.grid); the header holds H and W, so the file alone
    decodes, on that grid or on a finer one (decompress_image(data, scale=k)). RGB (default) or BT.709 YCbCr,
    with loss weights that make the loss the RGB MSE (equal weights in RGB).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from nicjax import bitstream, fit as fitting, inits, quantize as quant, siren
from nicjax.errors import NicError
from nicjax.metrics import colour_psnr
from nicjax.signals import image as imaging, pointcloud
from nicjax.signals.color import rgb_to_ycbcr, ycbcr_to_rgb

REFERENCES = ("auto", "zeros", "seeded", "init")
COLOUR_SPACES = {"rgb": bitstream.COLOUR_RGB, "ycbcr": bitstream.COLOUR_YCBCR709}
IMAGE_COLOUR_SPACE = "rgb"  # what "auto" means for images (RGB trained better per bit than YCbCr: README)


@dataclasses.dataclass(frozen=True)
class CodecConfig:
    model: siren.SirenConfig = siren.SirenConfig()  # width, depth, ω; in_dim/out_dim follow the signal
    fit: fitting.FitConfig = fitting.FitConfig()
    levels: int = 256
    # What the weights are coded against: "zeros" (direct coding), "seeded" (the seeded random init the training
    # starts from; the decoder regenerates it), "init" (the init artefact `init`); "auto": "init" when an init
    # artefact is given, else "seeded".
    reference: str = "auto"
    init: str | None = None  # an init artefact (shipped id/name or .init path) to start from; None: seeded random
    voxelize: bool = False  # point clouds only
    colour_space: str = "auto"  # images: "rgb" or "ycbcr" ("auto": IMAGE_COLOUR_SPACE); clouds: always YCbCr


# What images get from the CLI (and the Kodak experiment) when nothing is set: chosen on kodim04, which the default
# Kodak subset leaves out (README, "Images"). Smaller batches and more steps than for clouds: at equal training
# time, 4096 pixels × 4× the steps fitted better than 16384 × 1×. Learning rate 1e-3: 2e-3 fitted kodim04 as well
# but diverged on kodim19 with a 64×5 network.
IMAGE_CONFIG = CodecConfig(model=siren.SirenConfig(width=48, depth=5),
                           fit=fitting.FitConfig(steps=3000, learning_rate=1e-3, batch_size=4096), levels=128)


# The paper's settings for point clouds (Sec. 3): fine-tuning with Adam 1e-5 for 20000 steps (meant to start from
# a meta-learned init, --init). `python -m nicjax.compress --preset paper`; explicit flags still override.
PRESETS = {
    "default": CodecConfig(),
    "paper": CodecConfig(fit=fitting.FitConfig(steps=20000, learning_rate=1e-5, schedule="constant")),
}


@dataclasses.dataclass(frozen=True)
class Signal:
    """What the codec sees of any signal."""

    kind: int  # bitstream.SIGNAL_*
    coords: np.ndarray  # (N, in_dim) float32 network inputs, in [−1, 1]
    colours: np.ndarray  # (N, C) uint8 or uint16, in coordinate order
    colour_space: int  # bitstream.COLOUR_*: what the network outputs
    fields: dict  # the header's signal part (bitstream.Header fields)
    loss_weights: tuple | None = None  # per output channel; None: the FitConfig's

    @property
    def colour_bits(self) -> int:
        return 16 if self.colours.dtype == np.uint16 else 8

    @property
    def channels(self) -> int:
        return int(self.colours.shape[1])


@dataclasses.dataclass
class EncodeResult:
    data: bytes
    xyz: np.ndarray  # the coordinates coded (after optional voxelization)
    rgb: np.ndarray  # the input colours at those coordinates
    decoded_rgb: np.ndarray  # exactly what decompress(data, xyz) returns
    psnr: dict
    seconds: dict

    @property
    def bits_per_point(self) -> float:
        return 8.0 * len(self.data) / len(self.xyz)


@dataclasses.dataclass
class ImageResult:
    data: bytes
    pixels: np.ndarray  # (H, W, C) the input
    decoded: np.ndarray  # (H, W, C) exactly what decompress_image(data) returns
    psnr: float  # over all pixels and channels (RGB PSNR for colour images), peak 2^bits − 1
    seconds: dict
    header: bitstream.Header

    @property
    def bits_per_pixel(self) -> float:
        return 8.0 * len(self.data) / (self.pixels.shape[0] * self.pixels.shape[1])


# --- colours <-> network outputs -----------------------------------------------------------------------------

def colour_peak(bits: int) -> float:
    return float((1 << bits) - 1)


def targets_from_rgb(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Network targets: BT.709 YCbCr scaled to [−0.5, 0.5]."""
    peak = colour_peak(bits)
    return (rgb_to_ycbcr(rgb.astype(np.float64) * (255.0 / peak)) / 255.0 - 0.5).astype(np.float32)


def rgb_from_outputs(out: np.ndarray, bits: int) -> np.ndarray:
    peak = colour_peak(bits)
    rgb = ycbcr_to_rgb((np.asarray(out, np.float64) + 0.5) * 255.0) * (peak / 255.0)
    return np.clip(np.rint(rgb), 0, peak).astype(np.uint16 if bits == 16 else np.uint8)


def targets_from_colours(colours: np.ndarray, bits: int, colour_space: int) -> np.ndarray:
    """Network targets in [−0.5, 0.5]: the colours themselves (COLOUR_RGB, any channels) or their YCbCr."""
    if colour_space == bitstream.COLOUR_YCBCR709:
        return targets_from_rgb(colours, bits)
    return (np.asarray(colours, np.float64) / colour_peak(bits) - 0.5).astype(np.float32)


def colours_from_outputs(out: np.ndarray, bits: int, colour_space: int) -> np.ndarray:
    if colour_space == bitstream.COLOUR_YCBCR709:
        return rgb_from_outputs(out, bits)
    peak = colour_peak(bits)
    values = (np.asarray(out, np.float64) + 0.5) * peak
    return np.clip(np.rint(values), 0, peak).astype(np.uint16 if bits == 16 else np.uint8)


def rgb_mse_weights(colour_space: int, channels: int) -> tuple:
    """Loss weights under which the loss is the plain MSE over R, G, B (all channels for grayscale).

    For YCbCr outputs: the diagonal of the YCbCr → RGB Gram matrix / 3 (the cross terms are small and ignored).
    """
    if colour_space == bitstream.COLOUR_YCBCR709:
        unit = ycbcr_to_rgb(np.eye(3) + np.array([0.0, 128.0, 128.0]))  # row k: the RGB of a unit step in Y/Cb/Cr
        return tuple(float(w) for w in np.square(unit).sum(axis=1) / 3.0)
    return (1.0 / channels,) * channels


# --- the shared path: Signal -> header -> params -> bytes -> params -> colours -------------------------------

def model_of(header: bitstream.Header) -> siren.SirenConfig:
    return siren.SirenConfig(in_dim=header.in_dim, out_dim=header.out_dim, width=header.width, depth=header.depth,
                             omega0=header.omega0, omega=header.omega)


def model_for(signal: Signal, config: CodecConfig) -> siren.SirenConfig:
    """The configured architecture with the signal's input and output sizes."""
    return dataclasses.replace(config.model, in_dim=int(signal.coords.shape[1]), out_dim=signal.channels)


def reference_params(header: bitstream.Header, init_search: tuple = ()):
    """The parameters the weights are coded against, rebuilt from what the header names.

    `init_search`: init files or ids to look in (besides the shipped ones) for an init artefact the header names.
    """
    model = model_of(header)
    if header.reference == bitstream.REFERENCE_SEEDED:
        # JAX's threefry PRNG gives the same bits on every platform, so the decoder regenerates the init.
        return siren.init_params(model, jax.random.key(header.reference_seed))
    if header.reference == bitstream.REFERENCE_ZEROS:
        return jax.tree_util.tree_map(np.zeros_like, siren.init_params(model, jax.random.key(0)))
    if header.reference == bitstream.REFERENCE_ARTEFACT:
        return find_init(header.reference_id.hex(), init_search).params
    raise NicError(f"file is corrupted (unknown reference kind {header.reference})")


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
                   + (f": the given init is {given}" if given else ": pass its file with --init PATH"))


def resolve_reference(config: CodecConfig) -> str:
    reference = config.reference
    if reference not in REFERENCES:
        raise ValueError(f"unknown reference {reference!r}: use one of {REFERENCES}")
    if reference == "auto":
        return "init" if config.init else "seeded"
    if reference == "init" and not config.init:
        raise ValueError("reference 'init' needs an init artefact (CodecConfig.init / --init)")
    return reference


def start_init(config: CodecConfig, model: siren.SirenConfig):
    """(params training starts from, the init artefact or None): the artefact if configured, else seeded."""
    if config.init:
        init = inits.find(config.init)
        if (init.model.in_dim, init.model.out_dim) != (model.in_dim, model.out_dim):
            raise NicError(f"init {init.id} maps {init.model.in_dim} -> {init.model.out_dim} values, the signal "
                           f"needs {model.in_dim} -> {model.out_dim}")
        return init.params, init
    return siren.init_params(model, jax.random.key(config.fit.seed)), None


def _header(kind: int, colour_space: int, colour_bits: int, model: siren.SirenConfig, config: CodecConfig,
            fields: dict) -> bitstream.Header:
    reference = resolve_reference(config)
    init = inits.find(config.init) if config.init else None
    if init is not None:
        model = dataclasses.replace(init.model, in_dim=model.in_dim, out_dim=model.out_dim)
    kinds = {"zeros": bitstream.REFERENCE_ZEROS, "seeded": bitstream.REFERENCE_SEEDED,
             "init": bitstream.REFERENCE_ARTEFACT}
    return bitstream.Header(
        signal=kind, colour_space=colour_space, colour_bits=colour_bits, in_dim=model.in_dim,
        out_dim=model.out_dim, width=model.width, depth=model.depth, omega0=float(np.float32(model.omega0)),
        omega=float(np.float32(model.omega)),
        reference=kinds[reference], reference_seed=config.fit.seed,
        reference_id=init.id_bytes if reference == "init" else b"\0" * 8, **fields)


def signal_header(signal: Signal, config: CodecConfig) -> bitstream.Header:
    return _header(signal.kind, signal.colour_space, signal.colour_bits, model_for(signal, config), config,
                   signal.fields)


def targets_for(signal: Signal) -> np.ndarray:
    """What the network is trained to output for this signal."""
    return targets_from_colours(signal.colours, signal.colour_bits, signal.colour_space)


def _fit_config(signal: Signal, config: CodecConfig) -> fitting.FitConfig:
    if signal.loss_weights is None:
        return config.fit
    return dataclasses.replace(config.fit, loss_weights=tuple(signal.loss_weights))


def fit_signal(signal: Signal, config: CodecConfig, *, progress: bool = True, callback=None):
    """Trains the SIREN (from the init artefact, or the seeded init) on the signal; returns (params, history)."""
    model = model_for(signal, config)
    fit_config = _fit_config(signal, config)
    start, init = start_init(config, model)
    if init is not None:
        model = dataclasses.replace(init.model, in_dim=model.in_dim, out_dim=model.out_dim)
    reference = None
    if fit_config.delta_l1:  # the penalty pulls towards what the coder will subtract
        reference = reference_params(signal_header(signal, config), _search(config))
    return fitting.fit(model, start, signal.coords, targets_for(signal), fit_config, progress=progress,
                       callback=callback, reference=reference)


def _search(config: CodecConfig) -> tuple:
    """Where the encoder's own decode finds the init artefact it coded against."""
    return (config.init,) if config.init else ()


def quantization_aware(header: bitstream.Header, params, levels: int, coords, targets, fit_config: fitting.FitConfig,
                       *, init_search: tuple = (), progress: bool = True, keep_better: bool = False):
    """Fine-tunes through the quantizer at `levels` for fit_config.qat_steps (FitConfig.qat_steps).

    Returns (params, steps): encode them with `encode_params(..., steps=steps)`, the steps trained for. With
    qat_steps = 0 the params come back unchanged with the steps `quantize` would choose. `keep_better`: return the
    fine-tuned params only if the decoded network's loss is lower than without them. Straight-through fine-tuning
    wins several dB at 4-16 levels but can lose a little at 64+ (Adam's steps are then comparable to the
    quantization step; README), so the encoder measures both and codes the better.
    """
    reference = reference_params(header, init_search)
    steps = quant.tensor_steps(params, reference, levels)
    if fit_config.qat_steps <= 0:
        return params, steps
    tuned, _ = fitting.fit(model_of(header), params, coords, targets, fitting.qat_config(fit_config),
                           progress=progress, quantizer=(reference, steps), reference=reference)
    if keep_better:
        errors = [_decoded_loss(model_of(header), p, reference, steps, coords, targets, fit_config.loss_weights)
                  for p in (params, tuned)]
        if not errors[1] < errors[0]:
            return params, steps
    return tuned, steps


def _decoded_loss(model: siren.SirenConfig, params, reference, steps, coords, targets, loss_weights) -> float:
    out = siren.apply_chunked(model, quant.fake_quantize(params, reference, steps), coords)
    # float64: fitting.weighted_mse's float32 mean over a million points can hide the difference between candidates
    per_channel = np.mean(np.square(np.asarray(out, np.float64) - np.asarray(targets, np.float64)), axis=0)
    return float(np.dot(per_channel, loss_weights))


def quantized_error(header: bitstream.Header, params, steps, coords, targets, fit_config: fitting.FitConfig,
                    init_search: tuple = ()) -> float:
    """The training loss (weighted MSE over all points) of the network the decoder gets from (params, steps)."""
    return _decoded_loss(model_of(header), params, reference_params(header, init_search), steps, coords, targets,
                         fit_config.loss_weights)


def encode_params(header: bitstream.Header, params, levels: int, init_search: tuple = (), steps=None) -> bytes:
    """Quantizes params against the header's reference and writes the file's bytes (`steps`: see quantize)."""
    return bitstream.encode(header, quant.quantize(params, reference_params(header, init_search), levels, steps))


def decode_params(data: bytes, init_search: tuple = ()):
    header, quantized = bitstream.decode(data)
    return header, quant.dequantize(quantized, reference_params(header, init_search))


def evaluate(header: bitstream.Header, params, coords: np.ndarray) -> np.ndarray:
    """The decoded colours (N, out_dim) at network inputs `coords`, in the header's colour space and bits."""
    out = siren.apply_chunked(model_of(header), params, coords)
    return colours_from_outputs(out, header.colour_bits, header.colour_space)


def encode_signal(signal: Signal, config: CodecConfig, *, progress: bool = True, callback=None):
    """Fits, quantizes and writes. Returns (data, header, params as fitted, seconds)."""
    t0 = time.perf_counter()
    quant.check_levels(config.levels)
    header = signal_header(signal, config)
    params, _ = fit_signal(signal, config, progress=progress, callback=callback)
    params, steps = quantization_aware(header, params, config.levels, signal.coords, targets_for(signal),
                                       _fit_config(signal, config), init_search=_search(config), progress=progress,
                                       keep_better=True)
    t_fit = time.perf_counter()
    data = encode_params(header, params, config.levels, init_search=_search(config), steps=steps)
    return data, header, params, {"fit": t_fit - t0, "encode": time.perf_counter() - t0}


# --- point clouds --------------------------------------------------------------------------------------------

def _cloud_fields(config: CodecConfig, xyz: np.ndarray) -> dict:
    return dict(geometry_crc=pointcloud.geometry_id(xyz), voxelize=config.voxelize)


def cloud_signal(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig()) -> Signal:
    """The Signal of a (voxelized, if the config says so, beforehand) cloud: its colours in BT.709 YCbCr."""
    if config.colour_space not in ("auto", "ycbcr"):
        raise ValueError(f"point clouds are coded in YCbCr (the paper's loss), not {config.colour_space!r}")
    fields = _cloud_fields(config, cloud.xyz)
    return Signal(kind=bitstream.SIGNAL_POINTCLOUD, coords=pointcloud.normalised(cloud.xyz), colours=cloud.rgb,
                  colour_space=bitstream.COLOUR_YCBCR709, fields=fields)


def cloud_header(config: CodecConfig, xyz: np.ndarray, colour_bits: int) -> bitstream.Header:
    return _header(bitstream.SIGNAL_POINTCLOUD, bitstream.COLOUR_YCBCR709, colour_bits, config.model, config,
                   _cloud_fields(config, xyz))


def coded_geometry(header: bitstream.Header, xyz: np.ndarray) -> np.ndarray:
    """The geometry the file was coded on, derived from the decoder's geometry; NicError if it does not match."""
    xyz = np.asarray(xyz, np.float64)
    if header.voxelize:
        xyz = pointcloud.voxelize_geometry(xyz)
    if pointcloud.geometry_id(xyz) != header.geometry_crc:
        raise NicError(f"geometry ({len(xyz)} points{', voxelized' if header.voxelize else ''}) does not match the "
                       "one the file was coded for")
    return xyz


def decode_colours(header: bitstream.Header, params, xyz: np.ndarray) -> np.ndarray:
    """Colours at the coded geometry `xyz` (its normalisation is derived from it, as at encoding)."""
    return evaluate(header, params, pointcloud.normalised(xyz))


def decode_cloud(header: bitstream.Header, params, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xyz as coded, rgb in that order) from a decoded file and the decoder's geometry."""
    if header.signal != bitstream.SIGNAL_POINTCLOUD:
        raise NicError("file does not hold a point cloud")
    xyz = coded_geometry(header, xyz)
    return xyz, decode_colours(header, params, xyz)


def decompress_cloud(data: bytes, xyz: np.ndarray, init_search: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    """Decodes colours for a geometry: returns (xyz as coded, rgb in that order)."""
    header, params = decode_params(data, init_search)
    return decode_cloud(header, params, xyz)


def decompress(data: bytes, coordinates: np.ndarray, init_search: tuple = ()) -> np.ndarray:
    """Colours (N, 3) for the given (N, 3) coordinates (the file must not voxelize: then use decompress_cloud)."""
    xyz, rgb = decompress_cloud(data, coordinates, init_search)
    if len(xyz) != len(coordinates):
        raise NicError("file was voxelized at encoding: use decompress_cloud to get the voxelized geometry")
    return rgb


def compress_cloud(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig(), *, progress: bool = True,
                   callback=None) -> EncodeResult:
    """Fits, quantizes and writes; then decodes the bytes exactly as the decoder will, to report its PSNR."""
    t0 = time.perf_counter()
    if config.voxelize:
        cloud = pointcloud.voxelize(cloud)
    t_vox = time.perf_counter()
    data, _, _, seconds = encode_signal(cloud_signal(cloud, config), config, progress=progress, callback=callback)
    t_enc = time.perf_counter()
    _, decoded = decompress_cloud(data, cloud.xyz, _search(config))
    t_dec = time.perf_counter()
    p = colour_psnr(cloud.rgb, decoded, colour_peak(cloud.colour_bits))
    return EncodeResult(data=data, xyz=cloud.xyz, rgb=cloud.rgb, decoded_rgb=decoded, psnr=p,
                        seconds={"fit": t_vox - t0 + seconds["fit"], "encode": t_enc - t0, "decode": t_dec - t_enc})


def compress(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig(), *, progress: bool = True) -> bytes:
    return compress_cloud(cloud, config, progress=progress).data


# --- images --------------------------------------------------------------------------------------------------

def image_colour_space(config: CodecConfig, channels: int) -> int:
    name = IMAGE_COLOUR_SPACE if config.colour_space == "auto" else config.colour_space
    if name not in COLOUR_SPACES:
        raise ValueError(f"unknown colour space {config.colour_space!r}: use 'auto', 'rgb' or 'ycbcr'")
    return COLOUR_SPACES[name] if channels == 3 else bitstream.COLOUR_RGB  # grayscale: the values themselves


def image_signal(pixels, config: CodecConfig = IMAGE_CONFIG) -> Signal:
    """The Signal of an (H, W[, C]) uint8/uint16 image: its pixel-centre grid and colours, loss = RGB MSE."""
    if isinstance(pixels, imaging.Image):
        pixels = pixels.pixels
    pixels = imaging.check_pixels(pixels)
    h, w, c = pixels.shape
    space = image_colour_space(config, c)
    return Signal(kind=bitstream.SIGNAL_IMAGE, coords=imaging.grid(h, w), colours=pixels.reshape(h * w, c),
                  colour_space=space, fields=dict(height=h, image_width=w), loss_weights=rgb_mse_weights(space, c))


def decode_image(header: bitstream.Header, params, scale: float = 1.0) -> np.ndarray:
    """(H', W', C) pixels from a decoded file: the coded H×W grid, or a grid `scale`× as fine (same function)."""
    if header.signal != bitstream.SIGNAL_IMAGE:
        raise NicError("file does not hold an image")
    if header.height < 1 or header.image_width < 1:
        raise NicError(f"file is corrupted (image of {header.height}×{header.image_width} pixels)")
    if header.in_dim != 2 or header.out_dim not in (1, 3) or header.colour_space not in COLOUR_SPACES.values() \
            or (header.colour_space == bitstream.COLOUR_YCBCR709 and header.out_dim != 3) \
            or header.colour_bits not in (8, 16):
        raise NicError(f"file is corrupted (an image network with {header.in_dim} inputs, {header.out_dim} outputs, "
                       f"colour space {header.colour_space}, {header.colour_bits}-bit colours)")
    h, w = imaging.scaled_size(header.height, header.image_width, scale)
    return evaluate(header, params, imaging.grid(h, w)).reshape(h, w, header.out_dim)


def decompress_image(data: bytes, scale: float = 1.0, init_search: tuple = ()) -> np.ndarray:
    """Decodes an image file with nothing but its bytes; scale > 1 samples the network on a finer grid."""
    header, params = decode_params(data, init_search)
    return decode_image(header, params, scale)


def compress_image(pixels, config: CodecConfig = IMAGE_CONFIG, *, progress: bool = True,
                   callback=None) -> ImageResult:
    """Fits, quantizes and writes an image; then decodes the bytes as the decoder will, to report its PSNR."""
    signal = image_signal(pixels, config)
    pixels = signal.colours.reshape(signal.fields["height"], signal.fields["image_width"], signal.channels)
    t0 = time.perf_counter()
    data, header, _, seconds = encode_signal(signal, config, progress=progress, callback=callback)
    t_enc = time.perf_counter()
    decoded = decompress_image(data, init_search=_search(config))
    seconds["decode"] = time.perf_counter() - t_enc
    return ImageResult(data=data, pixels=pixels, decoded=decoded, header=header, seconds=seconds,
                       psnr=imaging.image_psnr(pixels, decoded, colour_peak(signal.colour_bits)))

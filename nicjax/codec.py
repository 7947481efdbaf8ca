"""compress() / decompress(): the only place that knows the whole path from a signal to a .nic file and back.

    cloud ─normalise→ coords, targets ─fit→ params ─quantize(params − reference)→ symbols ─bitstream→ bytes
    bytes ─bitstream→ header, symbols ─dequantize(+ reference)→ params ─siren(coords)→ YCbCr → RGB
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from nicjax import bitstream, fit as fitting, quantize as quant, siren
from nicjax.errors import NicError
from nicjax.metrics import colour_psnr
from nicjax.signals import pointcloud
from nicjax.signals.color import rgb_to_ycbcr, ycbcr_to_rgb

REFERENCES = ("zeros", "seeded")


@dataclasses.dataclass(frozen=True)
class CodecConfig:
    model: siren.SirenConfig = siren.SirenConfig()
    fit: fitting.FitConfig = fitting.FitConfig()
    levels: int = 256
    reference: str = "seeded"  # what the weights are coded against: "zeros" (direct) or "seeded" (the init)
    voxelize: bool = False


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


def model_of(header: bitstream.Header) -> siren.SirenConfig:
    return siren.SirenConfig(in_dim=header.in_dim, out_dim=header.out_dim, width=header.width, depth=header.depth,
                             omega0=header.omega0, omega=header.omega)


def reference_params(header: bitstream.Header):
    """The parameters the weights are coded against, rebuilt from what the header names."""
    model = model_of(header)
    if header.reference == bitstream.REFERENCE_SEEDED:
        # JAX's threefry PRNG gives the same bits on every platform, so the decoder regenerates the init.
        return siren.init_params(model, jax.random.key(header.reference_seed))
    if header.reference == bitstream.REFERENCE_ZEROS:
        return jax.tree_util.tree_map(np.zeros_like, siren.init_params(model, jax.random.key(0)))
    raise NicError(f"file is coded against an init artefact (id {header.reference_id.hex()}) this nicjax lacks")


def cloud_header(config: CodecConfig, xyz: np.ndarray, colour_bits: int) -> bitstream.Header:
    offset, scale = pointcloud.normalisation(xyz)
    m = config.model
    if config.reference not in REFERENCES:
        raise ValueError(f"unknown reference {config.reference!r}: use one of {REFERENCES}")
    return bitstream.Header(
        signal=bitstream.SIGNAL_POINTCLOUD, colour_space=bitstream.COLOUR_YCBCR709, colour_bits=colour_bits,
        in_dim=m.in_dim, out_dim=m.out_dim, width=m.width, depth=m.depth, omega0=float(np.float32(m.omega0)),
        omega=float(np.float32(m.omega)),
        reference=bitstream.REFERENCE_SEEDED if config.reference == "seeded" else bitstream.REFERENCE_ZEROS,
        reference_seed=config.fit.seed, num_points=len(xyz), geometry_crc=pointcloud.geometry_id(xyz),
        voxelize=config.voxelize, offset=tuple(float(v) for v in offset), scale=scale)


def encode_params(header: bitstream.Header, params, levels: int) -> bytes:
    """Quantizes params against the header's reference and writes the file's bytes."""
    return bitstream.encode(header, quant.quantize(params, reference_params(header), levels))


def decode_params(data: bytes):
    header, quantized = bitstream.decode(data)
    return header, quant.dequantize(quantized, reference_params(header))


def coded_geometry(header: bitstream.Header, xyz: np.ndarray) -> np.ndarray:
    """The geometry the file was coded on, derived from the decoder's geometry; NicError if it does not match."""
    xyz = np.asarray(xyz, np.float64)
    if header.voxelize:
        xyz = pointcloud.voxelize_geometry(xyz)
    if len(xyz) != header.num_points:
        raise NicError(f"geometry has {len(xyz)} points but the file was coded for {header.num_points}")
    if pointcloud.geometry_id(xyz) != header.geometry_crc:
        raise NicError("geometry does not match the one the file was coded for (same size, other coordinates)")
    return xyz


def decode_colours(header: bitstream.Header, params, xyz: np.ndarray) -> np.ndarray:
    coords = pointcloud.normalise(xyz, header.offset, header.scale)
    return rgb_from_outputs(siren.apply_chunked(model_of(header), params, coords), header.colour_bits)


def decompress_cloud(data: bytes, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decodes colours for a geometry: returns (xyz as coded, rgb in that order)."""
    header, params = decode_params(data)
    if header.signal != bitstream.SIGNAL_POINTCLOUD:
        raise NicError("file does not hold a point cloud")
    xyz = coded_geometry(header, xyz)
    return xyz, decode_colours(header, params, xyz)


def decompress(data: bytes, coordinates: np.ndarray) -> np.ndarray:
    """Colours (N, 3) for the given (N, 3) coordinates (the file must not voxelize: then use decompress_cloud)."""
    xyz, rgb = decompress_cloud(data, coordinates)
    if len(xyz) != len(coordinates):
        raise NicError("file was voxelized at encoding: use decompress_cloud to get the voxelized geometry")
    return rgb


def compress_cloud(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig(), *, progress: bool = True,
                   callback=None) -> EncodeResult:
    """Fits, quantizes and writes; then decodes the bytes exactly as the decoder will, to report its PSNR."""
    t0 = time.perf_counter()
    if config.voxelize:
        cloud = pointcloud.voxelize(cloud)
    quant.check_levels(config.levels)
    header = cloud_header(config, cloud.xyz, cloud.colour_bits)
    coords = pointcloud.normalise(cloud.xyz, header.offset, header.scale)
    targets = targets_from_rgb(cloud.rgb, cloud.colour_bits)
    init = siren.init_params(config.model, jax.random.key(config.fit.seed))
    params, _ = fitting.fit(config.model, init, coords, targets, config.fit, progress=progress, callback=callback)
    t_fit = time.perf_counter()
    data = encode_params(header, params, config.levels)
    t_enc = time.perf_counter()
    decoded_header, decoded_params = decode_params(data)
    decoded = decode_colours(decoded_header, decoded_params, cloud.xyz)
    t_dec = time.perf_counter()
    p = colour_psnr(cloud.rgb, decoded, colour_peak(cloud.colour_bits))
    return EncodeResult(data=data, xyz=cloud.xyz, rgb=cloud.rgb, decoded_rgb=decoded, psnr=p,
                        seconds={"fit": t_fit - t0, "encode": t_enc - t0, "decode": t_dec - t_enc})


def compress(cloud: pointcloud.PointCloud, config: CodecConfig = CodecConfig(), *, progress: bool = True) -> bytes:
    return compress_cloud(cloud, config, progress=progress).data

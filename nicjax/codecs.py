"""The codecs behind the command line, one protocol: encode(signal, config) -> bytes, decode(bytes, context) ->
codec.Decoded. `compress` picks one by name; `decompress` by the file's magic number.

    nic    the neural implicit codec (nicjax.codec), any signal
    raht   the RAHT baseline (nicjax.baselines.raht), point clouds with integer coordinates and 8-bit colours
"""

from __future__ import annotations

import numpy as np

from nicjax import codec, container
from nicjax.baselines import raht
from nicjax.configs import CodecConfig, RahtConfig
from nicjax.errors import NicError
from nicjax.signals import Signal, pointcloud


class Nic:
    name = codec.NAME
    magic = codec.MAGIC

    def encode(self, signal: Signal, config: CodecConfig, *, progress: bool = True) -> bytes:
        return codec.encode(signal, config, progress=progress).data

    def decode(self, data: bytes, context: codec.DecodeContext) -> codec.Decoded:
        return codec.decode(data, context)


def _shifted(xyz) -> np.ndarray:
    """Integer coordinates, moved to start at 0 on any axis where some are negative (RAHT's octree needs
    non-negative ones). The decoder has the same geometry, so it shifts the same way and nothing goes in the file.
    Non-negative axes stay as they are: a shift changes the octree's alignment, and so RAHT's results."""
    xyz = np.asarray(xyz)
    if xyz.ndim == 2 and len(xyz) and np.all(np.isfinite(xyz)):
        xyz = xyz - np.minimum(xyz.min(axis=0), 0)
    return raht.check_coords(xyz)


class Raht:
    name = "raht"
    magic = raht.MAGIC

    def encode(self, signal: Signal, config: RahtConfig, *, progress: bool = True) -> bytes:
        if signal.info.kind != container.SIGNAL_POINTCLOUD or signal.colour_bits != 8:
            raise NicError("RAHT codes the 8-bit colours of point clouds only")
        try:
            return raht.encode(_shifted(signal.geometry), signal.colours, config.step)
        except ValueError as e:
            raise NicError(f"{e}" + (" (try --voxelize)" if "integer" in str(e) else ""))

    def decode(self, data: bytes, context: codec.DecodeContext) -> codec.Decoded:
        if context.geometry is None:
            raise NicError("a point-cloud file decodes only with its geometry")
        xyz = np.asarray(context.geometry)
        if not np.array_equal(xyz, np.rint(xyz)):
            xyz = pointcloud.voxelize_geometry(xyz)  # the encoder needed --voxelize for such a geometry
        try:
            return codec.Decoded(header=None, values=raht.decode(data, _shifted(xyz)), xyz=xyz)
        except ValueError as e:
            raise NicError(str(e))


CODECS = {c.name: c for c in (Nic(), Raht())}


def for_file(data: bytes):
    """The codec that wrote `data`, by its magic number (NIC's container explains any other bytes: an old
    version, or not a nicjax file)."""
    for c in CODECS.values():
        if data[:len(c.magic)] == c.magic:
            return c
    return CODECS[codec.NAME]

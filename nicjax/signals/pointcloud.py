"""Point clouds: PLY in and out (plyfile), validation, voxelization, coordinate normalisation, geometry id.

Nothing else in nicjax knows the PLY format.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import socket
import tempfile
import zlib

import numpy as np
import plyfile

from nicjax import container
from nicjax.errors import NicError
from nicjax.signals import Signal

_COLOUR_NAMES = ("red", "green", "blue")


@dataclasses.dataclass
class PointCloud:
    xyz: np.ndarray  # (N, 3) float64
    rgb: np.ndarray  # (N, 3) uint8 or uint16
    
    @property
    def num_points(self) -> int:
        return int(self.xyz.shape[0])

    @property
    def colour_bits(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8


def _read_vertices(path: str):
    if os.path.isdir(path):
        raise NicError(f"{path}: is a directory")
    if not os.path.isfile(path):
        raise NicError(f"{path}: no such file")
    try:
        ply = plyfile.PlyData.read(path)
    except Exception as e:  # plyfile raises several types for malformed files
        raise NicError(f"{path}: not a readable PLY file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    if "vertex" not in [el.name for el in ply.elements]:
        raise NicError(f"{path}: PLY file has no 'vertex' element")
    v = ply["vertex"].data
    names = v.dtype.names or ()
    missing = [n for n in ("x", "y", "z") if n not in names]
    if missing:
        raise NicError(f"{path}: vertices lack coordinate properties {', '.join(missing)}")
    if len(v) == 0:
        raise NicError(f"{path}: point cloud is empty")
    xyz = np.stack([np.asarray(v[n], dtype=np.float64) for n in ("x", "y", "z")], axis=1)
    if not np.isfinite(xyz).all():
        bad = int((~np.isfinite(xyz)).any(axis=1).sum())
        raise NicError(f"{path}: {bad} point(s) have non-finite (NaN/inf) coordinates")
    return v, names, xyz


def read_geometry(path: str) -> np.ndarray:
    """(N, 3) float64 coordinates of a PLY file; colours, if any, are ignored."""
    return _read_vertices(path)[2]


def read_ply(path: str) -> PointCloud:
    """Reads a coloured point cloud (float or integer coordinates, uchar or ushort colours, ASCII or binary)."""
    v, names, xyz = _read_vertices(path)
    missing = [n for n in _COLOUR_NAMES if n not in names]
    if missing:
        raise NicError(f"{path}: vertices have no colour (missing {', '.join(missing)} properties)")
    kinds = {v.dtype[n] for n in _COLOUR_NAMES}
    if any(k.kind not in "ui" for k in kinds):
        raise NicError(f"{path}: colour properties must be uchar or ushort, found {sorted(k.name for k in kinds)}")
    sixteen = any(k.itemsize > 1 for k in kinds)
    raw = np.stack([np.asarray(v[n], dtype=np.int64) for n in _COLOUR_NAMES], axis=1)
    top = 65535 if sixteen else 255
    if raw.min() < 0 or raw.max() > top:
        raise NicError(f"{path}: colour values outside [0, {top}]")
    return PointCloud(xyz=xyz, rgb=raw.astype(np.uint16 if sixteen else np.uint8))


def write_ply(path: str, xyz: np.ndarray, rgb: np.ndarray, binary: bool = True) -> None:
    """Writes float32 x,y,z and uchar/ushort red,green,blue; atomically (temp file + rename)."""
    colour_type = "u2" if rgb.dtype == np.uint16 else "u1"
    dtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + [(n, colour_type) for n in _COLOUR_NAMES]
    vertex = np.empty(len(xyz), dtype=dtype)
    for i, n in enumerate(("x", "y", "z")):
        vertex[n] = xyz[:, i]
    for i, n in enumerate(_COLOUR_NAMES):
        vertex[n] = rgb[:, i]
    data = plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")], text=not binary, byte_order="<")
    atomic_write(path, data.write)


_TMP_PREFIX = ".nicjax-tmp-"  # the named temporary files of atomic_write: .nicjax-tmp-<host>-<pid>-<random>.tmp


def atomic_write(path: str, write_fn) -> None:
    """Calls write_fn(file) on a file with no name yet in `path`'s folder, then puts it in place atomically.

    Never a half-written output, an existing output untouched if write_fn fails, and nothing left behind if the
    process is killed (even with SIGKILL) while writing: on Linux the file is opened with O_TMPFILE (it has no
    name until it is complete), linked to a short-lived name through /proc/self/fd and renamed over `path`.
    Where O_TMPFILE or /proc is missing, it is written under a named temporary file `.nicjax-tmp-…` instead;
    one that a killed process left behind is removed by the next write into the same folder.
    """
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(directory)
    fd = _open_unnamed(directory)
    if fd is None:
        return _write_named(directory, path, write_fn)
    tmp = None
    try:
        with os.fdopen(fd, "w+b") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
            try:
                name = os.path.join(directory, _temporary_prefix() + secrets.token_hex(6) + ".tmp")
                os.link(f"/proc/self/fd/{f.fileno()}", name)
                tmp = name
            except OSError:  # no /proc (or a filesystem that refuses the link): copy it to a named temporary file
                f.seek(0)
                return _write_named(directory, path, lambda g: shutil.copyfileobj(f, g))
    except BaseException:
        if tmp is not None:
            _remove(tmp)
        raise
    _rename(tmp, path)


def _open_unnamed(directory: str):
    """A read-write O_TMPFILE descriptor in `directory` (mode 0666 less the umask, like open), or None."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return None
    try:
        return os.open(directory, flag | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:  # EOPNOTSUPP (the filesystem lacks it), EISDIR (an old kernel), ...: the named fallback
        return None  # raises the real error if the folder cannot be written at all


def _write_named(directory: str, path: str, write_fn) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions `open` would have
    except BaseException:
        _remove(tmp)
        raise
    _rename(tmp, path)


def _rename(tmp: str, path: str) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _temporary_prefix() -> str:
    return f"{_TMP_PREFIX}{socket.gethostname()}-{os.getpid()}-"  # then a random part without '-', and .tmp


def _remove_stale_temporaries(directory: str) -> None:
    """Removes the named temporary files of atomic_write that a killed process of this host left in `directory`.

    Only files of this host whose process no longer runs: a write in progress (here or on another machine
    sharing the folder) is never touched.
    """
    if os.name != "posix":  # os.kill(pid, 0) is only a liveness test on POSIX
        return
    host = socket.gethostname()
    try:
        names = [e.name for e in os.scandir(directory) if e.name.startswith(_TMP_PREFIX) and e.name.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        parts = name[len(_TMP_PREFIX):-len(".tmp")].rsplit("-", 2)
        if len(parts) < 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or _running(pid):
            continue
        try:
            os.remove(os.path.join(directory, name))
        except OSError:
            pass


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def voxelize(cloud: PointCloud) -> PointCloud:
    """Rounds coordinates to the integer grid and merges points that share a voxel (colours averaged).

    The output is sorted by voxel (lexicographic x, y, z).
    """
    grid = np.rint(cloud.xyz)
    uniq, inverse, counts = np.unique(grid, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    sums = np.zeros((len(uniq), 3), dtype=np.float64)
    np.add.at(sums, inverse, cloud.rgb.astype(np.float64))
    rgb = np.rint(sums / counts[:, None]).astype(cloud.rgb.dtype)
    return PointCloud(xyz=uniq, rgb=rgb)


def voxelize_geometry(xyz: np.ndarray) -> np.ndarray:
    """The geometry `voxelize` produces, for a decoder that has no colours."""
    return np.unique(np.rint(xyz), axis=0)


def normalisation(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """(offset, scale) with (xyz − offset)·scale in [−1, 1]: the bounding box centre and an isotropic scale.

    Not stored in the file: the decoder derives them from the geometry it is given, exactly as the encoder did
    (min, max and float32 rounding are order-independent and exact, so every machine gets the same inputs).
    """
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    offset = ((lo + hi) / 2).astype(np.float32)
    extent = float((hi - lo).max())
    scale = np.float32(2.0 / extent if extent > 0 else 1.0)
    # float32 rounding could push an extreme point a hair past ±1: shrink the scale by an ulp or two if so. The
    # largest |(x − offset)·scale| is at the box's corners (subtraction and multiplication by a positive number are
    # monotone under rounding), so checking lo and hi checks every point.
    corners = np.stack([lo, hi]).astype(np.float64) - offset.astype(np.float64)
    while np.abs(corners * float(scale)).max() > 1.0:
        scale = np.nextafter(scale, np.float32(0))
    return offset, float(scale)


def normalise(xyz: np.ndarray, offset, scale: float) -> np.ndarray:
    return ((np.asarray(xyz, np.float64) - np.asarray(offset, np.float64)) * scale).astype(np.float32)


def normalised(xyz: np.ndarray) -> np.ndarray:
    """The network inputs of a geometry: its coordinates normalised by its own bounding box."""
    xyz = np.asarray(xyz, np.float64)
    return normalise(xyz, *normalisation(xyz))


def geometry_hash(xyz: np.ndarray) -> int:
    """Order-independent 32-bit hash of the coordinates (format version 3): lets the decoder tell that it was
    given the wrong geometry. The sum, modulo 2^64, of a 64-bit mix (splitmix64's finaliser) of each point's float64
    bit patterns, folded to 32 bits: no sort, so it costs a few ms where `geometry_id`'s sort took a quarter of
    decoding a 250k-point cloud."""
    bits = (np.ascontiguousarray(xyz, dtype="<f8") + 0.0).view(np.uint64)  # + 0.0: −0.0 and 0.0 are one point
    h = _mix64(bits[:, 0] ^ _mix64(bits[:, 1] ^ _mix64(bits[:, 2] + np.uint64(0x9E3779B97F4A7C15))))
    total = int(h.sum(dtype=np.uint64))
    return (total ^ total >> 32) & 0xFFFFFFFF


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def geometry_id(xyz: np.ndarray) -> int:
    """Order-independent CRC32 of the coordinates, sorted (format version 2's geometry check)."""
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    order = np.lexsort((xyz[:, 2], xyz[:, 1], xyz[:, 0]))
    return zlib.crc32(np.ascontiguousarray(xyz[order]).astype("<f8").tobytes())


def procedural_cloud(num_points: int = 60000, seed: int = 0, bits: int = 9) -> PointCloud:
    """A coloured voxelized surface (a bumpy sphere with smooth bands and a few sharp stripes).

    The CLI's default input: lets `python -m nicjax.compress` do the whole job on a fresh machine, no data.
    """
    rng = np.random.default_rng(seed)
    size = 1 << bits
    d = rng.normal(size=(num_points * 2, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    theta = np.arccos(np.clip(d[:, 2], -1, 1))
    phi = np.arctan2(d[:, 1], d[:, 0])
    radius = 0.42 * size * (1 + 0.08 * np.sin(5 * theta) * np.cos(3 * phi))
    xyz = np.rint(size / 2 + d * radius[:, None])
    xyz, first = np.unique(xyz, axis=0, return_index=True)
    theta, phi = theta[first], phi[first]
    r = 128 + 100 * np.sin(2 * theta + phi)
    g = 128 + 90 * np.cos(3 * phi) * np.sin(theta)
    b = 128 + 80 * np.cos(4 * theta)
    stripes = (np.floor(phi * 6 / np.pi) % 2 == 0) & (np.abs(theta - np.pi / 2) < 0.3)
    rgb = np.stack([r, g, b], axis=1)
    rgb[stripes] = rgb[stripes] * 0.35 + 20
    keep = rng.permutation(len(xyz))[:num_points]
    keep.sort()
    return PointCloud(xyz=xyz[keep], rgb=np.clip(np.rint(rgb[keep]), 0, 255).astype(np.uint8))


def to_signal(cloud: PointCloud, voxelized: bool = False) -> Signal:
    """The Signal of a cloud: inputs normalised by its bounding box, YCbCr colours. `voxelized`: the cloud is
    `voxelize`'s output, and the decoder voxelizes its geometry the same way."""
    info = container.SignalInfo(container.SIGNAL_POINTCLOUD, container.COLOUR_YCBCR709, cloud.colour_bits,
                                geometry_crc=geometry_hash(cloud.xyz), voxelize=voxelized)
    return Signal(inputs=normalised(cloud.xyz), colours=cloud.rgb, info=info, geometry=cloud.xyz)

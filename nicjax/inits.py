"""Init artefacts: a SIREN initialisation the decoder has and the bitstream only names.

File format (little-endian), version 1:
    4   magic b"NICI"
    1   version
    1+1+2+1+4+4   in_dim, out_dim, width, depth, ω0, ω (as in the .nic header)
    4·P float32 parameters, tensors in pytree order (layer_00/bias, layer_00/kernel, ...)
The id is the first 8 bytes (16 hex digits) of SHA-256 over everything after the version byte: architecture
and values, so two inits share an id only if they decode identically. The inits shipped with the package live
in nicjax/inits/ and are found by id (or by file name); a user passes their own with a path.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import struct

import jax
import numpy as np

from nicjax.representations import siren
from nicjax.errors import NicError

MAGIC = b"NICI"
VERSION = 1
_ARCH = struct.Struct("<BBHBff")
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inits")


@dataclasses.dataclass(frozen=True)
class Init:
    model: siren.SirenConfig
    params: object  # pytree

    @property
    def id(self) -> str:
        return hashlib.sha256(_body(self.model, self.params)).hexdigest()[:16]

    @property
    def id_bytes(self) -> bytes:
        return bytes.fromhex(self.id)


def _arch_bytes(model: siren.SirenConfig) -> bytes:
    return _ARCH.pack(model.in_dim, model.out_dim, model.width, model.depth, model.omega0, model.omega)


def _body(model: siren.SirenConfig, params) -> bytes:
    leaves = jax.tree_util.tree_leaves(params)
    return _arch_bytes(model) + b"".join(np.asarray(x, "<f4").tobytes() for x in leaves)


def to_bytes(init: Init) -> bytes:
    return MAGIC + bytes([VERSION]) + _body(init.model, init.params)


def from_bytes(data: bytes, source: str = "init") -> Init:
    if data[:4] != MAGIC:
        raise NicError(f"{source}: not a nicjax init file")
    if len(data) < 5 + _ARCH.size or data[4] != VERSION:
        raise NicError(f"{source}: unsupported or truncated init file")
    in_dim, out_dim, width, depth, omega0, omega = _ARCH.unpack_from(data, 5)
    if min(in_dim, out_dim, width, depth) < 1 or not (omega0 > 0 and omega > 0):
        raise NicError(f"{source}: init file has an invalid architecture")
    model = siren.SirenConfig(in_dim=in_dim, out_dim=out_dim, width=width, depth=depth, omega0=omega0,
                              omega=omega)
    template = siren.init_params(model, jax.random.key(0))
    leaves, treedef = jax.tree_util.tree_flatten(template)
    sizes = [x.size for x in leaves]
    values = np.frombuffer(data, "<f4", offset=5 + _ARCH.size)
    if values.size != sum(sizes):
        raise NicError(f"{source}: init file is truncated or has the wrong size")
    out, pos = [], 0
    for leaf, n in zip(leaves, sizes):
        out.append(values[pos:pos + n].reshape(leaf.shape).astype(np.float32))
        pos += n
    return Init(model=model, params=jax.tree_util.tree_unflatten(treedef, out))


def save(init: Init, path: str) -> str:
    from nicjax.signals.pointcloud import atomic_write

    atomic_write(path, lambda f: f.write(to_bytes(init)))
    return init.id


def load(path: str) -> Init:
    try:
        with open(path, "rb") as f:
            return from_bytes(f.read(), path)
    except FileNotFoundError:
        raise NicError(f"{path}: no such init file")


def shipped() -> dict[str, str]:
    """{id: path} of the inits shipped with the package."""
    out = {}
    for path in sorted(glob.glob(os.path.join(SHIPPED_DIR, "*.init"))):
        out[load(path).id] = path
    return out


def find(id_or_path: str, search_dirs: tuple = ()) -> Init:
    """An init by path, by shipped file name (without .init), or by id (shipped or in `search_dirs`)."""
    if os.path.isfile(id_or_path):
        return load(id_or_path)
    named = os.path.join(SHIPPED_DIR, id_or_path + ".init")
    if os.path.isfile(named):
        return load(named)
    for directory in (*search_dirs, SHIPPED_DIR):
        for path in sorted(glob.glob(os.path.join(directory, "*.init"))):
            init = load(path)
            if init.id == id_or_path:
                return init
    raise NicError(f"init {id_or_path} not found (not a file, nor a shipped init; pass its file with --init)")

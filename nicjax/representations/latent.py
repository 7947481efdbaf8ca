"""Latents on the octree + a tiny synthesis network: the signal lives in the latents, not in the weights.

Images take the same path: their pixel grid is a flat voxel cloud (`image.pixel_geometry`: pixel (row, col) at
(row, col, 0)), whose octree is a quadtree, so the levels are 2-D latent grids (full resolution, 1/2, 1/4, ...) and
the trilinear interpolation is bilinear, clamped at the borders; the decoder builds the grid from the header's size.

From the geometry the decoder already has, every occupied octree node at each of a few levels (node sizes
2^k voxels, k in `scales`) holds `channels` latent values. A point's feature is, per level, the trilinear
interpolation of the latents at the centres of the 8 nodes around it, over those that are occupied (their weights
renormalised: a point's own node always has weight ≥ 1/8). A small GELU network maps the concatenated features
(len(scales)·channels values) to YCbCr. Latents are coded as integers (quantization step 1, against zeros: the
network's first layer sets their scale); the network's weights are quantized per tensor as the SIREN's are.
A level's latents are a (channels, nodes) tensor, nodes in the Morton order of their keys: coded channel after
channel, neighbours near in the sequence (MORTON_LAYOUT).

Inputs of `apply` are not coordinates but what the geometry gives each point: `features(octree, points)` packs,
per level, the 8 neighbour indices (exact as float32: at most 2^24 nodes; −1 for none) and then the point's
position into one float32 row, so training, chunked evaluation and QAT treat it as any other (N, d) input; the
network computes the interpolation weights from the position (`neighbour_weights`).

The header holds the architecture and the number of occupied nodes per level (which the geometry also gives: the
container sizes the tensors from the header alone, and the decoder checks the two agree).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import threading

import jax
import jax.numpy as jnp
import numpy as np

from nicjax import container, entropy
from nicjax.errors import NicError
from nicjax.representations import base

NEIGHBOURS = 8
INTERPOLATIONS = ("trilinear", "nearest")  # the header's bit 7 of the layers byte: 1 for nearest
# Bit 7 of the header's channels byte: the latents are coded level by level, channel by channel, nodes in Morton
# order (a channel's values one after another, neighbours in space near in the sequence: 22% fewer latent bytes at 3
# channels on longdress l3 than channels interleaved in raster order, which files without the bit have; those are
# refused, not misread)
MORTON_LAYOUT = 0x80
CONTEXT_CODED = 0x40  # bit 6 of the channels byte: the latents coded with same-level contexts (context_stream)
MAX_LEVELS = 12
# Latent channels per level on dense clouds (the rule's finest level is 2^0: 2-voxel nodes hold >= 2 points on
# average), 1 elsewhere: on sarah9 and ricardo9 (depth 9) 3 channels gave 2.5-4 dB more at the same rate, on longdress
# l1/l3 they lost (README, session 7-8)
DENSE_CHANNELS = 3
# The synthesis network (width, hidden layers), by rule from the point count: the largest of these with at least
# POINTS_PER_NETWORK_PARAMETER points per network parameter, else the last. The network's weights cost ~10 bits each
# at the levels the search keeps at small λ, so this holds them to ~0.02 bpp: a 16x2 network on sarah9's 24 features
# (723 parameters) was ~20% of its file at λ = 1e-3, and 8x2 coded it in 12% fewer bits at +0.14 dB; on longdress l1
# (16,772 points) 6x1 took 3-13% fewer bits than 16x2 at about equal PSNR over λ = 3e-3 … 1e-5; on l3 (254,328 points,
# 451 parameters at 16x2) 6x1 lost 0.17 dB at equal rate (README, session 16). 6 is the narrowest network that holds the
# pyramid start's read-out of Y, Cb and Cr (a GELU pair each).
NETWORKS = ((16, 2), (8, 2), (6, 1))
POINTS_PER_NETWORK_PARAMETER = 500
# ... and above NETWORK_LAMBDA that many times λ / NETWORK_LAMBDA: the network's bits are a fixed cost while the
# latents' fall as λ grows (sarah9 at λ = 1e-2, 8x2: the network 16% of the file). On sarah9 (906 points per parameter
# at 8x2), 6x1 against 8x2: λ = 1e-3 0.1261 bpp 36.65 dB against 0.1275 37.21 (8x2 better); 3e-3 0.0667 34.97 against
# 0.0730 35.32 (about even); 1e-2 0.0419 32.45 against 0.0442 32.33; 3e-2 0.0248 30.18 against 0.0258 29.44 (6x1
# better). The constant lies between those λ (README, session 17); below it the rule is the point count's alone.
NETWORK_LAMBDA = 3e-3
# Where no network of NETWORKS has the points per parameter λ asks for and λ > NETWORK_LAMBDA: no hidden layer, the
# features read linearly (the width is then unused; 1 in the header). On sarah9 at λ = 3e-2: 0.0245 bpp 31.03 dB against
# 6x1's 0.0248 30.18; at 1e-2 0.0434 33.08 against 6x1's 0.0419 32.45 and 8x2's 0.0424 32.48. At high quality it
# loses (l1 at λ = 1e-5: 45.11 dB at 10.26 bpp against 6x1's 45.58 at 10.34; sarah9's top quarter at 3e-4: 41.83
# against 42.69 dB at 0.172), so below NETWORK_LAMBDA the fallback stays 6x1 (README, session 17).
LINEAR_READOUT = (1, 0)
MAX_CHANNELS = 8
MAX_HIDDEN = 256
MAX_LAYERS = 8
_CORNERS = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(NEIGHBOURS)], np.int64)
# A flat geometry (an image's pixel grid: LatentConfig.flat) reads the 4 in-plane corners of its own z node: the other
# 4 are never occupied, and the renormalised trilinear weights are then the bilinear ones (the z weight cancels), so
# the features are the same for half the gathers (which were ~95% of a training step on a Kodak image)
_FLAT_CORNERS = _CORNERS[_CORNERS[:, 2] == 0]


def corners(flat: bool) -> np.ndarray:
    return _FLAT_CORNERS if flat else _CORNERS


@dataclasses.dataclass(frozen=True)
class LatentConfig:
    """Architecture. `scales`: log2 of the node sizes, finest first, consecutive; `counts`: occupied nodes per
    level (filled in from the geometry by `for_geometry`; () until then)."""

    in_dim: int = 3
    out_dim: int = 3
    scales: tuple = ()  # () until for_geometry: then by rule from the geometry (default_scales)
    channels: int = 0  # 0 until for_geometry: then by rule (DENSE_CHANNELS on dense clouds, else 1)
    hidden: int = 0  # 0 until for_geometry: then, with layers, by rule from the point count (NETWORKS)
    layers: int = 2  # hidden GELU layers; a linear output layer follows (by rule too where hidden is 0)
    counts: tuple = ()
    # "trilinear" over the occupied neighbours, or "nearest": a point reads its own node's latent only (the
    # baseline the interpolation is measured against)
    interpolation: str = "trilinear"
    # The latents entropy-coded against their same-level neighbours (`context_stream`; bit 6 of the header's
    # channels byte), which needs the geometry to decode the payload; False: one factorised sequence per level,
    # the layout of files before session 9, still decoded
    contexts: bool = True
    # The geometry is one voxel thick along z, an image's pixel grid: features read 4 in-plane corners (`corners`).
    # Not in the header's bytes: the decoder sets it for image files (the signal's kind)
    flat: bool = False

    @property
    def feature_dim(self) -> int:
        return len(self.scales) * self.channels

    @property
    def dims(self) -> list[int]:
        """The synthesis network's layer sizes, features to outputs."""
        return [self.feature_dim] + [self.hidden] * self.layers + [self.out_dim]

    def network_params(self) -> int:
        d = self.dims
        return sum(a * b + b for a, b in zip(d[:-1], d[1:]))

    def num_params(self) -> int:
        return sum(self.counts) * self.channels + self.network_params()

    def macs_per_point(self) -> int:
        """Multiply-adds of the synthesis network, plus the interpolation (8 per feature value, 4 when flat)."""
        d = self.dims
        return sum(a * b for a, b in zip(d[:-1], d[1:])) + len(corners(self.flat)) * self.feature_dim


def default_scales(geometry: np.ndarray, point_level: bool = False) -> tuple:
    """The levels, by rule from the geometry: from the coarsest node size whose nodes still hold at most two points
    on average (at least half as many nodes as points: about a latent per point, which the top of the R-D curve
    needs; on dense clouds, where 2-voxel nodes hold ~4 points, that is 2^0), doubling up to where fewer than 64
    nodes are left (or 12 levels). `point_level`: from 2^0 on any cloud (a latent of its own for every point,
    which the codec asks for at small λ: configs.POINT_LEVEL_LAMBDA)."""
    xyz = _origin(geometry)
    n = len(xyz)
    k = 0
    while not point_level and k < 20 and 2 * len(_node_keys(xyz, k + 1, unique=True)) >= n:
        k += 1
    scales = []
    while len(scales) < MAX_LEVELS:
        scales.append(k)
        if len(_node_keys(xyz, k, unique=True)) < 64:
            break
        k += 1
    return tuple(scales)


def check_config(config: LatentConfig, signal: container.SignalInfo | None = None) -> None:
    """ValueError (one line) unless the header can store this configuration (and an encoder writes it for the
    signal: three outputs, YCbCr for point clouds)."""
    s = config.scales
    if not (1 <= len(s) <= MAX_LEVELS and all(b == a + 1 for a, b in zip(s[:-1], s[1:])) and 0 <= s[0]
            and s[-1] <= 24):
        raise ValueError(f"latent scales {s} cannot be stored (1 to {MAX_LEVELS} consecutive levels in 0..24)")
    if config.channels == 0 or config.hidden == 0:
        raise ValueError("latent channels or width 0 (by rule) are set by for_geometry, which this configuration "
                         "skipped")
    if not (1 <= config.channels <= MAX_CHANNELS and 1 <= config.hidden <= MAX_HIDDEN
            and 0 <= config.layers <= MAX_LAYERS):
        raise ValueError(f"a latent network of {config.channels} channels, {config.layers}x{config.hidden} cannot be "
                         f"stored (channels 1 to {MAX_CHANNELS}, width 1 to {MAX_HIDDEN}, layers 0 to {MAX_LAYERS})")
    if config.interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {config.interpolation!r}: use one of {', '.join(INTERPOLATIONS)}")
    if len(config.counts) != len(s) or any(c < 1 for c in config.counts):
        raise ValueError("latent node counts must be given for every level (LatentConfig.counts)")
    if config.num_params() > container.MAX_PARAMS:
        raise ValueError(f"{config.num_params()} coded values, over the {container.MAX_PARAMS} that nicjax codes")
    if config.in_dim != 3 or config.out_dim != 3:
        raise ValueError(f"a latent network with {config.in_dim} inputs and {config.out_dim} outputs (latent files "
                         "code three colour channels: RGB or YCbCr images, point clouds' YCbCr)")
    if signal is not None and signal.kind == container.SIGNAL_POINTCLOUD \
            and signal.colour_space != container.COLOUR_YCBCR709:
        raise ValueError("latent point-cloud files are coded in YCbCr")


# --- the octree -----------------------------------------------------------------------------------------------

def _origin(geometry) -> np.ndarray:
    """Coordinates relative to the bounding box's minimum corner, at voxel centres (+0.5), float64: the same on
    the encoder's and the decoder's side (min and + are exact on these values)."""
    xyz = np.asarray(geometry, np.float64)
    return xyz - np.floor(xyz.min(axis=0)) + 0.5


# Node keys are Morton codes (the bits of x, y, z interleaved): sorted, a level's nodes are in Morton order, so the
# latents the coder sees one after another are near in space (one group of the grouped mode is a small block, and
# the block-adaptive counts follow local activity), and a node's parent's key is its key >> 3.
_SPREAD_MASKS = ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F), (4, 0x10C30C30C30C30C3),
                 (2, 0x1249249249249249))


def _spread(v: np.ndarray) -> np.ndarray:
    """The 21 low bits of v moved to every third bit (bit i to bit 3i)."""
    v = v & 0x1FFFFF
    for shift, mask in _SPREAD_MASKS:
        v = (v | (v << shift)) & mask
    return v


def _compact(v: np.ndarray) -> np.ndarray:
    """The inverse of _spread: every third bit (from bit 0) gathered into the 21 low bits."""
    v = v & _SPREAD_MASKS[-1][1]
    masks = [0x1FFFFF] + [mask for _, mask in _SPREAD_MASKS[:-1]]  # each step undoes one of _spread's, last first
    for (shift, _), mask in reversed(list(zip(_SPREAD_MASKS, masks))):
        v = (v | (v >> shift)) & mask
    return v


def _pack(nodes: np.ndarray) -> np.ndarray:
    """int64 Morton key of (…, 3) non-negative node indices below 2^21 (x the most significant of each triple)."""
    nodes = np.asarray(nodes, np.int64)
    return (_spread(nodes[..., 0]) << 2) | (_spread(nodes[..., 1]) << 1) | _spread(nodes[..., 2])


def _unpack(keys: np.ndarray) -> np.ndarray:
    """(…, 3) node indices of int64 keys (the inverse of _pack)."""
    return np.stack([_compact(keys >> 2), _compact(keys >> 1), _compact(keys)], axis=-1)


def _node_keys(xyz: np.ndarray, k: int, unique: bool = False) -> np.ndarray:
    keys = _pack(np.floor(xyz / float(1 << k)).astype(np.int64))
    return _sorted_unique(keys) if unique else keys


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique of an int64 array, by a sort (numpy 2.4's np.unique hashes: 0.41 s on sarah9's 271k keys, against
    ~0.01 s this way)."""
    return _distinct_sorted(np.sort(keys))


def _distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted keys without their repeats."""
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if keys.size else keys


@dataclasses.dataclass(frozen=True)
class Octree:
    """The occupied nodes of each level (sorted keys) and the frame they live in; `derived` holds what is computed
    from them once (`level_passes`, `neighbour_table`; shared within `keeping_octrees`)."""

    low: np.ndarray  # (3,) the geometry's floor(min): points are placed relative to it
    keys: tuple  # per level: sorted int64 keys of the occupied nodes
    scales: tuple
    derived: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


_KEPT: dict | None = None  # within `keeping_octrees`: (the geometry's digest, scales) -> the last Octree built
# Held while an octree or one of its derived arrays is built, so that a decode's payload and its features, computed
# side by side (`codec.decode`), build each once and share it.
_BUILDING = threading.RLock()


@contextlib.contextmanager
def keeping_octrees():
    """Within it (an encode, a decode: `codec`), `octree` keeps the last octree it built, keyed by the geometry's
    bytes, with what is derived from it: a decode asks for it twice (the payload's contexts, then the features) and
    an encode many times (training's inputs and rate model, each coded file), and they share one octree and one
    neighbour search per level. Outside, every call builds its own, so nothing outlives the call that needed it."""
    global _KEPT
    outer = _KEPT
    _KEPT = {} if outer is None else outer
    try:
        yield
    finally:
        _KEPT = outer


def octree(geometry: np.ndarray, scales: tuple) -> Octree:
    """The octree of a geometry at these levels (the kept one, within `keeping_octrees`)."""
    xyz = np.ascontiguousarray(geometry, np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not len(xyz) or not np.isfinite(xyz).all():
        raise ValueError("latents need an (N, 3) finite geometry")
    with _BUILDING:
        kept = _KEPT
        if kept is None:
            return _build_octree(xyz, tuple(scales))
        key = (hashlib.blake2b(memoryview(xyz).cast("B"), digest_size=16).digest(), xyz.shape, tuple(scales))
        if key not in kept:
            kept.clear()
            kept[key] = _build_octree(xyz, tuple(scales))
        return kept[key]


def _build_octree(xyz: np.ndarray, scales: tuple) -> Octree:
    low = np.floor(xyz.min(axis=0))
    if (xyz - low).max() >= float(1 << 21):
        raise ValueError("the geometry spans more than 2^21 voxels")
    rel = xyz - low + 0.5
    keys = [_node_keys(rel, scales[0], unique=True)]
    for finer, k in zip(scales[:-1], scales[1:]):  # each level from the one below (far fewer nodes than points)
        level = keys[-1]
        for _ in range(k - finer):
            level = _parents(level)
        keys.append(level)
    for level in keys:  # shared by every caller of the kept octree
        level.flags.writeable = False
    return Octree(low, tuple(keys), tuple(scales))


def _parents(keys: np.ndarray) -> np.ndarray:
    """Sorted unique keys of the parents of nodes with these sorted keys (one level coarser)."""
    return _distinct_sorted(keys >> 3)


def is_dense(config: LatentConfig) -> bool:
    """Whether the finest level is 2^0 (by rule: a dense cloud, whose 2-voxel nodes hold >= 2 points on average)."""
    return config.scales[0] == 0


def points_per_network_parameter(rate_lambda: float = 0.0) -> float:
    """The fewest points per network parameter the rule (NETWORKS) lets a network have at this λ."""
    return POINTS_PER_NETWORK_PARAMETER * max(1.0, rate_lambda / NETWORK_LAMBDA)


def for_geometry(config: LatentConfig, geometry: np.ndarray, point_level: bool = False,
                 rate_lambda: float = 0.0) -> LatentConfig:
    """The configuration with the node counts of this geometry (and, unless given, the levels, channels and network
    by rule; `point_level`: see default_scales; `rate_lambda`: the λ it will be trained at, which the network's rule
    reads, `points_per_network_parameter`)."""
    scales = tuple(config.scales) or default_scales(geometry, point_level)
    tree = octree(geometry, scales)
    config = dataclasses.replace(config, scales=scales, counts=tuple(len(k) for k in tree.keys))
    config = dataclasses.replace(config, channels=config.channels or (DENSE_CHANNELS if is_dense(config) else 1))
    if config.hidden == 0:
        for hidden, layers in NETWORKS:
            by_rule = dataclasses.replace(config, hidden=hidden, layers=layers)
            if by_rule.network_params() * points_per_network_parameter(rate_lambda) <= len(geometry):
                break
        else:  # none has the points per parameter: the smallest, or the linear read-out at large λ
            hidden, layers = LINEAR_READOUT if rate_lambda > NETWORK_LAMBDA else NETWORKS[-1]
            by_rule = dataclasses.replace(config, hidden=hidden, layers=layers)
        config = by_rule
    return config


def features(tree: Octree, points: np.ndarray, flat: bool = False) -> np.ndarray:
    """(N, L·8 + 3) float32: per level, the indices of the 8 nodes around each point (−1 where that node is not
    occupied, or weighs 0 at all the points asked; exact as float32: at most 2^24 nodes), then the point's position
    in the octree's frame. The weights are the network's work (`neighbour_weights`, in the jitted apply, which also
    knows the interpolation): computed here in numpy they took most of the decode. A point in no occupied node at a
    level (possible only off the geometry) gets feature 0 there. `flat`: the 4 nodes around it in its own z layer
    (`corners`), (N, L·4 + 3)."""
    cs = corners(flat)
    m = len(cs)
    # The position as the network will read it (float32), and the cells found from that same value, so that indices
    # and weights agree for any point (for the geometry's, voxel centres, the float32 values are exact anyway).
    p = (np.asarray(points, np.float64) - tree.low + 0.5).astype(np.float32)
    n = len(p)
    out = np.empty((n, len(tree.scales) * m + 3), np.float32)
    own = None if flat else _own_nodes(tree, p)
    for level, (k, keys) in enumerate(zip(tree.scales, tree.keys)):
        # the lower neighbour per axis, in float32 as neighbour_weights computes it (a power-of-two scale: exact)
        u = p * np.float32(1.0 / (1 << k)) - np.float32(0.5)
        lower = np.floor(u)
        base_node = lower.astype(np.int64)  # (N, 3)
        if flat:  # along z the point's own node
            base_node[:, 2] = np.floor(p[:, 2] * np.float32(1.0 / (1 << k))).astype(np.int64)
        table = _layer_table(keys) if flat else None
        if table is not None:  # one z layer (an image): the 4 corners from a dense table of the layer's nodes
            out[:, level * m:(level + 1) * m] = _layer_corner_indices(table, base_node)
            continue
        # Where every point lies on its nodes' centre plane along an axis (the geometry's voxel centres at level
        # 0, on every axis), the upper corners along it weigh 0 at every point: they are not looked up (−1, as if
        # unoccupied: the same weights, the same features), which at level 0 is 7 searches of 8.
        needed = (cs[:, (u == lower).all(axis=0)] == 0).all(axis=1)
        columns = out[:, level * m:(level + 1) * m]
        columns[:, ~needed] = -1
        needed = slice(None) if needed.all() else needed  # (a slice: a plain copy into the columns)
        # Points between the same 8 node centres share their indices: look those up once per such cell (far fewer
        # than the points at coarse levels; the cells come out in raster order, which keeps the search local).
        shifted = base_node + 1  # >= 0 for points in the frame
        if shifted.min() < 0 or shifted.max() >= (1 << 21):  # points far off the frame (random access): per point
            columns[:, needed] = _corner_indices(keys, base_node, cs[needed])
            continue
        # a raster key is enough to find the distinct cells (cheaper than a Morton one over every point)
        raster = (shifted[:, 0] << 42) | (shifted[:, 1] << 21) | shifted[:, 2]
        if own is None:  # some point in no occupied node: the corners' keys searched
            cells, inverse = np.unique(raster, return_inverse=True)
            cells = np.stack([cells >> 42, (cells >> 21) & 0x1FFFFF, cells & 0x1FFFFF], axis=-1)
            columns[:, needed] = _corner_indices(keys, cells - 1, cs[needed])[inverse]
            continue
        # Every point in an occupied node: a cell's corners are neighbours of the node of any point in it (corner c
        # is base + c = own + c − upper, upper per axis: whether that point is in its node's upper half), read from
        # the level's `neighbour_table`, no search.
        _, first, inverse = np.unique(raster, return_index=True, return_inverse=True)
        upper = ((u[first] - lower[first]) >= 0.5).astype(np.int64) @ _CODE_WEIGHTS
        count = len(keys)
        at = own[level][first] + (13 - upper) * count  # in the flattened table: corner (0, 0, 0)
        corner_at = (cs[needed] @ _CODE_WEIGHTS) * count
        columns[:, needed] = neighbour_table(tree, level).ravel()[at[:, None] + corner_at][inverse]
    out[:, -3:] = p
    return out


def _own_nodes(tree: Octree, p: np.ndarray) -> list | None:
    """Per level, the index of the node each point lies in, floor(p / 2^k) (exact in float32 for 0 <= p < 2^22,
    and so the node `neighbour_weights` places it in), found at the finest level and followed up through the
    parents; None when some point lies in no occupied node (random access off the geometry)."""
    if not len(p) or p.min() < 0 or p.max() >= float(1 << 22):
        return None
    keys = tree.keys[0]
    key = _pack(np.floor(p * np.float32(1.0 / (1 << tree.scales[0]))).astype(np.int64))
    idx = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
    if not (keys[idx] == key).all():
        return None
    own = [idx]
    for level in range(1, len(tree.scales)):
        shift = 3 * (tree.scales[level] - tree.scales[level - 1])
        own.append(np.searchsorted(tree.keys[level], tree.keys[level - 1] >> shift)[own[-1]])
    return own


# --- same-level context coding of the latents -----------------------------------------------------------------
#
# A level's nodes are coded in 8 passes by the parity class of their node index, (x & 1) | (y & 1) << 1 |
# (z & 1) << 2: a node of class p sees, among its 26 neighbours, those of the classes before p already decoded
# (about half of them on average, as a causal raster order would, but vectorised: every pass is a few numpy
# operations and one coder call per context). Each value is coded under the context of those decoded neighbours'
# values: their count N, their activity A = Σ|q| (in 6 bands of A/N) and the sign of their sum S, which predicts
# the value's sign (the trained latents are smooth). A context is a coder kind: its models adapt over all levels and
# channels. Everything is integers, so the decoder derives the same contexts on any machine. Measured on trained
# files (real bytes, against the same latents coded per level): -6.0% on longdress l1, -7.5% on MVUB phil l2 (3
# channels), -16.1% on sarah9 vox9 (3 channels, levels from 2^0) (README, session 9).
_OFFSETS = np.array([(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                     if (dx, dy, dz) != (0, 0, 0)], np.int64)
_OFFSET_CLASSES = (_OFFSETS[:, 0] & 1) | (_OFFSETS[:, 1] & 1) << 1 | (_OFFSETS[:, 2] & 1) << 2
CONTEXT_KIND0 = 3  # the coder kinds of the contexts start after the roles' (0 kernel, 1 bias, 2 latent)
CONTEXTS = 20  # context_kinds: none decoded, all zero, 6 bands x 3 signs


def level_passes(tree: Octree, level: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`context_passes` of a level of the octree, computed once per octree."""
    with _BUILDING:
        if ("passes", level) not in tree.derived:
            tree.derived["passes", level] = context_passes(tree.keys[level])
        return tree.derived["passes", level]


_CODE_WEIGHTS = np.array([9, 3, 1])  # an offset (or corner) per axis -> its `_offset_code` − 13


def _offset_code(d) -> int:
    """The column of offset d (each component −1, 0, 1) in a `neighbour_table`: 13 for the node itself."""
    return 13 + int(np.dot(d, _CODE_WEIGHTS))


def neighbour_table(tree: Octree, level: int) -> np.ndarray:
    """(27, nodes) int32: the index of each node's neighbour at every offset (`_offset_code`), −1 where there is
    none; from the level's context passes, whose causal lists hold every pair of neighbours once (two neighbours
    differ in parity class, and the later class lists the earlier): each entry is written forwards and back.
    Computed once per octree."""
    with _BUILDING:
        if ("neighbours", level) not in tree.derived:
            count = len(tree.keys[level])
            table = np.full((27, count), -1, np.int32)  # offset-major: each write below runs along one row
            table[13] = np.arange(count)
            for p, (sel, neighbours) in enumerate(level_passes(tree, level)):
                for j, d in enumerate(_OFFSETS[(_OFFSET_CLASSES ^ p) < p]):
                    ok = np.flatnonzero(neighbours[:, j] >= 0)
                    node, found = sel[ok], neighbours[ok, j]
                    table[_offset_code(d), node] = found
                    table[_offset_code(-d), found] = node
            table.flags.writeable = False
            tree.derived["neighbours", level] = table
        return tree.derived["neighbours", level]


def context_passes(keys: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per parity class p = 0..7: (the indices of the level's nodes of class p, in node order; (n_p, m_p) the
    indices of their occupied neighbours of the classes before p, −1 where unoccupied)."""
    nodes = _unpack(keys)
    classes = (nodes[:, 0] & 1) | (nodes[:, 1] & 1) << 1 | (nodes[:, 2] & 1) << 2
    out = []
    for p in range(8):
        sel = np.flatnonzero(classes == p)
        offsets = _OFFSETS[(_OFFSET_CLASSES ^ p) < p]  # a neighbour at offset d has class p ^ class(d)
        own, at = keys[sel], nodes[sel]
        columns = []
        for d in offsets:  # offset by offset: the neighbours' keys come nearly sorted, which the search likes
            key, ok = _shifted_keys(own, at, d)
            idx = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            columns.append(np.where(ok & (keys[idx] == key), idx, -1))
        out.append((sel, np.stack(columns, axis=1) if columns else np.zeros((len(sel), 0), np.int64)))
    return out


def _shifted_keys(keys: np.ndarray, nodes: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the Morton keys of the nodes at offset d (each component −1, 0 or 1) from these, whether that node is in
    the frame): added in Morton space, one axis's interleaved bits at a time (all other bits set, so that the carry
    runs through them), ~4x cheaper than unpacking, adding and packing again."""
    ok = np.ones(len(keys), bool)
    key = keys.view(np.uint64)
    for axis, step in enumerate(d.tolist()):
        if step:
            ok &= nodes[:, axis] > 0 if step < 0 else nodes[:, axis] < (1 << 21) - 1
            shift = 2 - axis  # x is the most significant bit of each triple (_pack)
            mask = np.uint64(_SPREAD_MASKS[-1][1] << shift)
            one = np.uint64(1 << shift)
            moved = ((key | ~mask) + one) & mask if step > 0 else ((key & mask) - one) & mask
            key = moved | (key & ~mask)
    return key.view(np.int64), ok


def context_kinds(values, neighbours, xp=np):
    """The coder kind of each node of a pass from its decoded neighbours' values (`values`: the channel's values
    so far; `neighbours`: (n, m) indices, −1 for none): 0 no neighbour decoded, 1 all of them zero, then the bands
    of A/N (< 1/4, < 1/2, < 1, < 2, < 4, more) by the sign of S, offset by CONTEXT_KIND0. `xp`: numpy (the coder)
    or jax.numpy (training's rate model, `fit.context_rate_bits`), the same integer arithmetic."""
    valid = neighbours >= 0
    v = xp.where(valid, values[xp.maximum(neighbours, 0)], 0)
    return _kinds(xp.abs(v).sum(axis=1), valid.sum(axis=1), v.sum(axis=1), xp)


def _kinds(a, n, s, xp):
    """`context_kinds` from each node's A, N and S."""
    band = 2 + (4 * a >= n).astype(a.dtype) + (2 * a >= n) + (a >= n) + (a >= 2 * n) + (a >= 4 * n)
    kind = xp.where(n == 0, 0, xp.where(a == 0, 1, 2 + (band - 2) * 3 + xp.sign(s) + 1))
    return CONTEXT_KIND0 + kind


def _coding_passes(passes: list, count: int):
    """Per pass of a level: (its nodes, their neighbours with −1 turned into `count`, N), so that the coder reads
    the neighbours' values from the channel's values with a 0 appended (one gather, no mask per channel)."""
    return [(sel, np.where(neighbours >= 0, neighbours, count), (neighbours >= 0).sum(axis=1))
            for sel, neighbours in passes]


def _by_context(values: np.ndarray, sel: np.ndarray, neighbours: np.ndarray, n: np.ndarray):
    """(kind, the nodes of the pass in that context, in node order) for each context present, in increasing
    order: `context_kinds` through `_coding_passes` (values: the channel's, a 0 appended)."""
    v = values[neighbours]
    kind = _kinds(np.abs(v).sum(axis=1), n, v.sum(axis=1), np)
    order = np.argsort(kind, kind="stable")  # node order within each context
    counts = np.bincount(kind)
    ends = np.cumsum(counts)
    for k in np.flatnonzero(counts).tolist():
        yield k, sel[order[ends[k] - counts[k]:ends[k]]]


def causal_neighbours(passes: list, count: int) -> np.ndarray:
    """(count, 26) int32: per node of a level (node order), the neighbours its context is computed from
    (`context_passes`), −1 padded: what training's rate model reads (`fit.context_rate_bits`)."""
    out = np.full((count, len(_OFFSETS)), -1, np.int32)
    for sel, neighbours in passes:
        out[sel, :neighbours.shape[1]] = neighbours
    return out


def context_stream(plan: list, latents: list) -> tuple[list, list, list]:
    """(arrays, kinds, segments) of integer latents ((channels, nodes) per level; `plan`: each level's
    `context_passes`) in stream order: level by level, channel by channel, pass by pass, within a pass the nodes of
    each context in node order, contexts in increasing order (only those present). A (level, channel) is a
    segment: a context's coder blocks grow with its values over the passes of one channel of one level, and start
    small again at the next, whose statistics differ (`entropy.encode_ints(segments=)`)."""
    arrays, kinds, segments = [], [], []
    for level, (passes, q) in enumerate(zip(plan, latents)):
        q = np.asarray(q, np.int64)
        coding = _coding_passes(passes, q.shape[1])
        for c in range(q.shape[0]):
            values = np.append(q[c], 0)
            for sel, neighbours, n in coding:
                for k, nodes in _by_context(values, sel, neighbours, n):
                    arrays.append(values[nodes])
                    kinds.append(k)
                    segments.append((level, c))
    return arrays, kinds, segments


def read_context_stream(plan: list, channels: int, counts: tuple, read) -> list:
    """The inverse of `context_stream`: (channels, nodes) int64 latents per level from `read(n, kind, segment)`."""
    out = []
    for level, (passes, count) in enumerate(zip(plan, counts)):
        q = np.zeros((channels, count + 1), np.int64)  # a 0 appended: what a missing neighbour reads
        coding = _coding_passes(passes, count)
        for c in range(channels):
            for sel, neighbours, n in coding:  # contexts from the classes before this pass only: decoded
                for k, nodes in _by_context(q[c], sel, neighbours, n):
                    q[c, nodes] = read(nodes.size, k, (level, c))
        out.append(q[:, :count])
    return out


def checked_octree(config: LatentConfig, geometry) -> Octree:
    """The geometry's octree at the header's levels; NicError unless it has the header's node counts."""
    tree = octree(geometry, config.scales)
    if tuple(len(k) for k in tree.keys) != tuple(config.counts):
        raise NicError("file is corrupted (its latent structure does not match the geometry)")
    return tree


def _layer_table(keys: np.ndarray):
    """(table, low corner (x, y), z) of a level whose nodes share one z layer: table[x − x0 + 1, y − y0 + 1] is the
    node's index, −1 for none and on a one-cell border; None for nodes in several layers. Dense over the nodes'
    bounding box: for an image's pixel grid (full, so no larger than its node count) a lookup by indexing, ~3x
    cheaper than finding the corners' keys (`_corner_indices`) for the same indices."""
    nodes = _unpack(keys)
    if not len(nodes) or (nodes[:, 2] != nodes[0, 2]).any():
        return None
    low = nodes[:, :2].min(axis=0)
    span = nodes[:, :2].max(axis=0) - low + 3
    if span[0] * span[1] > 4 * len(nodes) + 64:  # a sparse layer: the table would be mostly empty
        return None
    table = np.full(tuple(span), -1, np.int64)
    table[nodes[:, 0] - low[0] + 1, nodes[:, 1] - low[1] + 1] = np.arange(len(nodes))
    return table, low, nodes[0, 2]


def _layer_corner_indices(layer, base_node: np.ndarray) -> np.ndarray:
    """(N, 4) int64: `_corner_indices(keys, base_node, _FLAT_CORNERS)` through a `_layer_table` of keys."""
    table, low, z = layer
    sx, sy = table.shape
    x = base_node[:, 0] - (low[0] - 1)
    y = base_node[:, 1] - (low[1] - 1)
    # clipped onto the border (−1) when outside the box; rows of the flattened table
    rows = (np.clip(x, 0, sx - 1) * sy, np.clip(x + 1, 0, sx - 1) * sy)
    cols = (np.clip(y, 0, sy - 1), np.clip(y + 1, 0, sy - 1))
    flat_table = table.ravel()
    out = np.empty((len(base_node), len(_FLAT_CORNERS)), np.int64)
    for c, (cx, cy, _) in enumerate(_FLAT_CORNERS):
        out[:, c] = flat_table[rows[cx] + cols[cy]]
    off_layer = base_node[:, 2] != z
    if off_layer.any():
        out[off_layer] = -1
    return out


def _corner_indices(keys: np.ndarray, base_node: np.ndarray, cs: np.ndarray = _CORNERS) -> np.ndarray:
    """(M, len(cs)) int64: the index in `keys` of each node at base_node + corner, −1 where there is none."""
    cx, cy, cz = cs.T  # corner c takes node base + (cx, cy, cz)[c] along each axis
    axes = base_node[:, :, None] + np.array([0, 1])  # (M, 3, 2)
    ok = (axes >= 0) & (axes < (1 << 21))
    axes = np.where(ok, axes, 0)
    valid = ok[:, 0, cx] & ok[:, 1, cy] & ok[:, 2, cz]
    spread = _spread(axes)
    key = (spread[:, 0, cx] << 2) | (spread[:, 1, cy] << 1) | spread[:, 2, cz]  # (M, 8)
    # searched corner by corner; sorting the cells in Morton order first (each corner's keys then nearly sorted)
    # gained ~0.02 s of 0.14 s at l3's finest level under load (session 7), and is not done
    idx = np.minimum(np.searchsorted(keys, np.ascontiguousarray(key.T)).T, len(keys) - 1)
    return np.where(valid & (keys[idx] == key), idx, -1)


def neighbour_weights(scales: tuple, inputs, nearest: bool = False, flat: bool = False):
    """(indices (N, L, 8) int32 with −1 for no node, weights (N, L, 8)) of packed `features` rows: trilinear in
    the point's position between the 8 node centres around it, over the occupied ones (renormalised to sum to 1);
    `nearest`: weight 1 on the point's own node; `flat`: rows of `features(flat=True)`, bilinear over 4 corners in
    the point's z layer. jnp, so it runs inside the jitted network (or on numpy arrays)."""
    n, levels = inputs.shape[0], len(scales)
    cs = corners(flat)
    m = len(cs)
    idx = inputs[:, :levels * m].reshape(n, levels, m).astype(jnp.int32)
    p = inputs[:, levels * m:]
    cx, cy, cz = cs.T
    weights = []
    for level, k in enumerate(scales):
        u = p * (1.0 / (1 << k)) - 0.5  # exact in float32: a power-of-two scale of a coordinate below 2^22
        frac = u - jnp.floor(u)
        if nearest:  # the point's own node: floor(p / 2^k) = base + (frac >= 1/2) on each axis
            upper = (frac >= 0.5).astype(inputs.dtype)
            per_axis = jnp.stack([1.0 - upper, upper], axis=-1)
        else:
            per_axis = jnp.stack([1.0 - frac, frac], axis=-1)  # (N, 3, 2)
        w = per_axis[:, 0, cx] * per_axis[:, 1, cy]  # (N, corners)
        if not flat:
            w = w * per_axis[:, 2, cz]
        w = jnp.where(idx[:, level] >= 0, w, 0.0)
        total = w.sum(axis=1, keepdims=True)
        weights.append(jnp.where(total > 0, w / jnp.where(total > 0, total, 1.0), 0.0))
    return idx, jnp.stack(weights, axis=1)


# --- the network ----------------------------------------------------------------------------------------------

def latent_name(level: int) -> str:
    return f"latent_{level:02d}"


def layer_name(i: int) -> str:
    return f"synthesis_{i:02d}"


def init_params(config: LatentConfig, key):
    """Latents at zero (their reference: the decoder needs no seed for them); the network He-initialised."""
    check_config(config)  # e.g. channels still 0 (by rule) on a configuration that skipped for_geometry
    params = {latent_name(i): jnp.zeros((config.channels, c), jnp.float32) for i, c in enumerate(config.counts)}
    dims = config.dims
    keys = jax.random.split(key, len(dims) - 1)
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        scale = math.sqrt(2.0 / a) if i < len(dims) - 2 else math.sqrt(1.0 / a)
        params[layer_name(i)] = {"bias": jnp.zeros((b,), jnp.float32),
                                 "kernel": scale * jax.random.normal(keys[i], (a, b), jnp.float32)}
    return params


def pyramid_start(config: LatentConfig, params, inputs, targets, gain: float) -> dict:
    """A training start that already codes the signal (FitConfig.latent_init "pyramid"): coarsest level first, each
    level's latents are its nodes' mean of what the coarser levels leave (the targets' residual), times `gain` and
    rounded (the coder's integers: a step of 1/gain in colour), and the residual loses their interpolation as the
    network reads it; channel c < 3 carries colour component c (Y, Cb, Cr), later channels start at 0. The network
    starts as the exact linear read-out out_c = mean_c + Σ_levels feature_c / gain, through pairs of GELU units
    (GELU(x) − GELU(−x) = x, also for the tanh form), its other units as `params` has them but silent (zero output
    weights). From zeros, Adam needs thousands of steps to build what this gives at step 0 (README, session 15)."""
    levels, channels = len(config.scales), config.channels
    used = min(channels, 3, config.out_dim)
    if config.layers and config.hidden < 2 * used:
        raise ValueError(f"a pyramid start needs a network at least {2 * used} wide")
    inputs = np.asarray(inputs, np.float32)
    idx, w = neighbour_weights(config.scales, inputs, flat=config.flat)
    idx, w = np.maximum(np.asarray(idx), 0), np.asarray(w, np.float64)
    # each point's own node per level: the one neighbour `nearest` weighs 1 (occupied, for the geometry's points)
    near_idx, near_w = (np.asarray(a) for a in neighbour_weights(config.scales, inputs, nearest=True,
                                                                   flat=config.flat))
    owner = np.take_along_axis(near_idx, near_w.argmax(axis=2)[..., None], axis=2)[..., 0]  # (N, L)
    t = np.asarray(targets, np.float64)
    mean = t.mean(axis=0)
    residual = t[:, :used] - mean[:used]
    out = dict(params)
    for level in reversed(range(levels)):
        nodes, own = config.counts[level], owner[:, level]
        count = np.maximum(np.bincount(own, minlength=nodes), 1)
        node_mean = np.stack([np.bincount(own, residual[:, c], minlength=nodes) for c in range(used)], 1)
        q = np.round(node_mean / count[:, None] * gain)
        values = np.zeros((channels, nodes), np.float32)
        values[:used] = q.T
        out[latent_name(level)] = jnp.asarray(values)
        residual -= np.einsum("nk,nkc->nc", w[:, level], q[idx[:, level]] / gain)
    dims = config.dims
    n_layers = len(dims) - 1
    a = gain ** (-1.0 / n_layers)  # the read-out's 1/gain spread over the layers (no weight far below the others)
    pair = np.array([[a, -a], [-a, a]])
    for i in range(n_layers):
        kernel = np.array(params[layer_name(i)]["kernel"], np.float32)
        bias = np.zeros(dims[i + 1], np.float32)
        rows = [(l * channels + c) for l in range(levels) for c in range(used)] if i == 0 else range(2 * used)
        kernel[list(rows)] = 0.0  # the inputs the read-out uses feed nothing else (the others: silent below)
        if i == n_layers - 1:
            kernel[:] = 0.0
            bias[:] = mean
        else:
            kernel[:, :2 * used] = 0.0
        for c in range(used):
            if n_layers == 1:  # no hidden layer: the linear read-out itself
                kernel[[l * channels + c for l in range(levels)], c] = 1.0 / gain
            elif i == 0:
                kernel[[l * channels + c for l in range(levels)], 2 * c:2 * c + 2] = [a, -a]
            elif i < n_layers - 1:
                kernel[2 * c:2 * c + 2, 2 * c:2 * c + 2] = pair
            else:
                kernel[2 * c:2 * c + 2, c] = [a, -a]
        out[layer_name(i)] = {"bias": jnp.asarray(bias), "kernel": jnp.asarray(kernel)}
    return out


def gather(config: LatentConfig, params, inputs):
    """(N, L·C) interpolated latent features of packed `features` rows."""
    idx, w = neighbour_weights(config.scales, inputs, config.interpolation == "nearest", config.flat)
    out = []
    for level in range(len(config.scales)):
        latents = params[latent_name(level)]  # (C, count)
        out.append(jnp.einsum("nk,cnk->nc", w[:, level], latents[:, jnp.maximum(idx[:, level], 0)]))
    return jnp.concatenate(out, axis=-1)


def synthesis(config: LatentConfig, params, h):
    n_layers = config.layers + 1
    for i in range(n_layers):
        layer = params[layer_name(i)]
        h = h @ layer["kernel"] + layer["bias"]
        if i < n_layers - 1:
            h = jax.nn.gelu(h, approximate=True)
    return h


def apply(config: LatentConfig, params, inputs):
    return synthesis(config, params, gather(config, params, inputs))


def prune_dead_inputs(config: LatentConfig, params, reference) -> dict:
    """The first layer's kernel rows of the features whose latents are all zero set to their reference: they multiply
    a feature that is 0 at every point (any point, off the geometry too), so the output does not change, and the file
    codes zeros where it coded trained values (the rows still set the layer's quantization step otherwise). At large
    λ whole levels, or the chroma channels of some, come out zero: sarah9 at λ = 1e-2 had 13 of its 24 features dead,
    104 of the first layer's 192 weights (README, session 17)."""
    params = dict(params)
    first = layer_name(0)
    kernel = np.array(params[first]["kernel"], np.float32)
    ref_kernel = np.asarray(reference[first]["kernel"], np.float32)
    for level in range(len(config.scales)):
        latents = np.rint(np.asarray(params[latent_name(level)]))  # as quantize rounds them into the file
        for c in range(config.channels):
            if not np.any(latents[c]):
                row = level * config.channels + c
                kernel[row] = ref_kernel[row]
    params[first] = {**params[first], "kernel": jnp.asarray(kernel)}
    return params


class LatentRepresentation:
    """Latents on the octree, read by a tiny network."""

    id = 1
    name = "latent"
    default_config = LatentConfig()

    def with_io(self, config: LatentConfig, in_dim: int, out_dim: int) -> LatentConfig:
        # the network reads features from 3-D positions whatever the signal's own inputs (an image's pixel grid is
        # a flat cloud: image.pixel_geometry), so in_dim stays 3
        return dataclasses.replace(config, out_dim=out_dim)

    def for_geometry(self, config: LatentConfig, geometry, point_level: bool = False,
                     rate_lambda: float = 0.0) -> LatentConfig:
        return for_geometry(config, geometry, point_level, rate_lambda)

    def inputs(self, config: LatentConfig, geometry, points=None) -> np.ndarray:
        """What `apply` reads for `points` (default: the geometry's own points). The geometry's octree must have
        the node counts the configuration (the header) says: NicError otherwise."""
        return features(checked_octree(config, geometry), geometry if points is None else points, config.flat)

    def config_bytes(self, config: LatentConfig) -> bytes:
        check_config(config)
        nearest = config.interpolation == "nearest"
        out = bytes([config.scales[0], len(config.scales),
                     config.channels | MORTON_LAYOUT | (CONTEXT_CODED if config.contexts else 0),
                     config.layers | nearest << 7])
        out += container.varint(config.hidden)
        for c in config.counts:
            out += container.varint(c)
        return out

    def config_from_bytes(self, read: container.Reader, signal: container.SignalInfo | None) -> LatentConfig:
        first, n_levels, channels, layers = read.take(4)
        if not channels & MORTON_LAYOUT:
            raise NicError("file is a latent file of an earlier layout (nodes in raster order, channels interleaved; "
                           "nicjax before session 7): re-encode it")
        contexts = bool(channels & CONTEXT_CODED)
        channels &= ~(MORTON_LAYOUT | CONTEXT_CODED)
        interpolation = INTERPOLATIONS[layers >> 7]
        layers &= 0x7F
        hidden = read.varint(max_bits=14)
        if not 1 <= n_levels <= MAX_LEVELS:
            raise NicError(f"file is corrupted ({n_levels} latent levels)")
        counts = tuple(read.varint(max_bits=28) for _ in range(n_levels))
        config = LatentConfig(scales=tuple(range(first, first + n_levels)), channels=channels, hidden=hidden,
                              layers=layers, counts=counts, interpolation=interpolation, contexts=contexts,
                              flat=signal is not None and signal.kind == container.SIGNAL_IMAGE)
        return base.checked(check_config, config, signal)

    def tensors(self, config: LatentConfig) -> list[container.TensorSpec]:
        latents = [container.TensorSpec(latent_name(i), (config.channels, c), "latent")
                   for i, c in enumerate(config.counts)]
        return latents + base.dense_tensors(config.dims, layer_name)

    def init(self, config: LatentConfig, key):
        return init_params(config, key)

    def pyramid_start(self, config: LatentConfig, params, inputs, targets, gain: float):
        return pyramid_start(config, params, inputs, targets, gain)

    def apply(self, config: LatentConfig, params, inputs):
        return apply(config, params, inputs)

    def prune(self, config: LatentConfig, params, reference):
        """`prune_dead_inputs`: what the encoder codes (codec.code), the output unchanged."""
        return prune_dead_inputs(config, params, reference)

    def rows_per_piece(self, config: LatentConfig) -> int | None:
        return None  # the gathers dominate, not the matmuls

    # The payload protocol of representations whose symbols are coded against the geometry (nicjax.container):
    # `ordered_payload` says whether this file's are; `payload_plan` derives from the geometry what coding needs
    # (once per encode or decode: the canonical check codes the decoded symbols again); the encoder codes
    # `payload_arrays` in their order (entropy.encode_ints(..., ordered=True)); `read_payload` rebuilds the tensors.
    def ordered_payload(self, config: LatentConfig) -> bool:
        return config.contexts

    def rate_neighbours(self, config: LatentConfig, geometry) -> dict | None:
        """Per latent tensor, its nodes' `causal_neighbours` (what training's context rate model reads), or None
        for files coded without contexts."""
        if not config.contexts:
            return None
        plan = self.payload_plan(config, geometry)
        return {latent_name(i): causal_neighbours(p, c) for i, (p, c) in enumerate(zip(plan, config.counts))}

    def payload_plan(self, config: LatentConfig, geometry) -> list:
        """Per level, its `context_passes`; NicError if the geometry's octree is not the header's."""
        tree = checked_octree(config, geometry)
        return [level_passes(tree, level) for level in range(len(tree.keys))]

    def payload_arrays(self, config: LatentConfig, symbols: list, plan: list) -> tuple[list, list, list]:
        """(arrays, kinds, segments) of the coded tensors' symbols in stream order: the latents level by level
        through `context_stream`, then the network's tensors (kinds: their roles, 0 kernel and 1 bias; each its
        own segment)."""
        levels = len(config.counts)
        arrays, kinds, segments = context_stream(
            plan, [np.asarray(q).reshape(config.channels, -1) for q in symbols[:levels]])
        specs = self.tensors(config)[levels:]
        return (arrays + [np.asarray(q).ravel() for q in symbols[levels:]],
                kinds + [container.ROLES.index(sp.role) for sp in specs],
                segments + [sp.name for sp in specs])

    def read_payload(self, config: LatentConfig, read, plan: list) -> list:
        """The coded tensors' symbols (flat int64, in `tensors` order) from `read(n, kind)`: the inverse of
        `payload_arrays`."""
        latents = read_context_stream(plan, config.channels, config.counts, read)
        specs = self.tensors(config)[len(config.counts):]
        return [q.ravel() for q in latents] + [read(sp.size, container.ROLES.index(sp.role), sp.name) for sp in specs]


LATENT = LatentRepresentation()

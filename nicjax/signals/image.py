"""Images: reading and writing with Pillow, validation, and the pixel grid that is the network's input.

An H×W image is a grid of pixel centres in [−1, 1]²: pixel (row, col) sits at

    (y, x) = ((2·row + 1)/H − 1, (2·col + 1)/W − 1)

(each axis is scaled to [−1, 1] on its own). The network is a continuous function of (y, x), so `grid` with a
finer size (kH × kW) samples the same function between the coded pixels: decoding at another resolution.

What is coded: 8-bit RGB (Pillow modes RGB, and P/CMYK/YCbCr/LAB/HSV converted to RGB), 8-bit grayscale (L, 1)
and 16-bit grayscale (I;16, or I with values in [0, 65535]) as one channel. An alpha channel that is fully
opaque is dropped; a transparent one is refused (nicjax does not code alpha), as are 16-bit-per-channel
colour images (Pillow would read them as 8-bit), floating-point images, animations, images with a side over
65535 pixels and images over MAX_DECODED_PIXELS (2^23, 4096×2048: what one decode holds in ~1 GB).

Nothing else in nicjax knows image file formats.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from nicjax import container
from nicjax.errors import NicError
from nicjax.signals import Signal, color

MAX_SIDE = container.MAX_IMAGE_SIDE  # 65535 pixels a side
# Pixels per image and per decode at any scale (2^23: 4096×2048, or 4K UHD): a decode then peaks at ~1.04 GB
# (the container explains the number). Larger images are refused before training, larger files as corrupted.
MAX_DECODED_PIXELS = container.MAX_IMAGE_PIXELS

_TO_RGB = {"RGB", "P", "CMYK", "YCbCr", "LAB", "HSV"}
_WITH_ALPHA = {"RGBA": "RGB", "RGBa": "RGB", "LA": "L", "La": "L", "PA": "RGB"}
_SIXTEEN = {"I;16", "I;16L", "I;16B", "I;16N"}


@dataclasses.dataclass
class Image:
    pixels: np.ndarray  # (H, W, C) uint8 or uint16; C = 3 (RGB) or 1 (grayscale)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @property
    def colour_bits(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8


def check_pixels(pixels) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) uint8/uint16 -> (H, W, C); ValueError for anything else."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be (H, W), (H, W, 1) or (H, W, 3), got shape {a.shape}")
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be uint8 or uint16, got {a.dtype}")
    if a.shape[2] == 3 and a.dtype != np.uint8:
        raise ValueError("16-bit images must be grayscale (nicjax codes 8-bit RGB)")
    if min(a.shape[:2]) < 1 or max(a.shape[:2]) > MAX_SIDE:
        raise ValueError(f"image sides must be in [1, {MAX_SIDE}], got {a.shape[0]}×{a.shape[1]}")
    if a.shape[0] * a.shape[1] > MAX_DECODED_PIXELS:
        raise ValueError(f"{a.shape[1]}×{a.shape[0]} pixels, over the {MAX_DECODED_PIXELS} that nicjax decodes at once")
    return a


def grid(height: int, width: int) -> np.ndarray:
    """(height·width, 2) float32 (y, x) pixel centres in [−1, 1]², row-major (the order of pixels.reshape)."""
    y = (2.0 * np.arange(height, dtype=np.float64) + 1.0) / height - 1.0
    x = (2.0 * np.arange(width, dtype=np.float64) + 1.0) / width - 1.0
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float32)


def pixel_geometry(height: int, width: int) -> np.ndarray:
    """(height·width, 3) float64 (row, col, 0), row-major: the pixel grid as a flat voxel cloud, on which the latent
    representation builds its levels (an octree of one voxel's depth is a quadtree: the interpolation over occupied
    nodes is bilinear, clamped at the borders). The decoder derives it from the header's size."""
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    return np.stack([rows.ravel(), cols.ravel(), np.zeros(height * width)], axis=1)


def pixel_positions(height: int, width: int, scale: float = 1.0) -> np.ndarray:
    """(h·w, 3) float64: the pixel centres of the `scaled_size` grid in `pixel_geometry`'s frame (a coded pixel's
    centre at its (row, col, 0)); at scale 1 exactly `pixel_geometry`."""
    h, w = scaled_size(height, width, scale)
    rows = (np.arange(h, dtype=np.float64) + 0.5) * (height / h) - 0.5
    cols = (np.arange(w, dtype=np.float64) + 0.5) * (width / w) - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel(), np.zeros(h * w)], axis=1)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The grid a decode at `scale` × the coded resolution produces (each side rounded, at least 1)."""
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    h, w = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    if h * w > MAX_DECODED_PIXELS and scale == 1:
        raise ValueError(f"the image is {width}×{height} pixels, over the {MAX_DECODED_PIXELS} that nicjax decodes "
                         f"at once (decode it smaller with --scale)")
    if h * w > MAX_DECODED_PIXELS:
        raise ValueError(f"a {scale:g}× decode of a {width}×{height} image ({w}×{h}) is over "
                         f"{MAX_DECODED_PIXELS} pixels")
    return h, w


def from_pil(img, name: str = "image") -> Image:
    """Converts a Pillow image to the pixels nicjax codes, or raises NicError saying why it cannot."""
    if getattr(img, "n_frames", 1) > 1:
        raise NicError(f"{name}: has {img.n_frames} frames; nicjax codes single images")
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _WITH_ALPHA:
        alpha = np.asarray(img.getchannel("A"))
        if alpha.min() < 255:
            raise NicError(f"{name}: has transparency ({mode} with alpha < 255); nicjax codes RGB or grayscale "
                           "only: flatten it onto a background first")
        img, mode = img.convert(_WITH_ALPHA[mode]), _WITH_ALPHA[mode]
    if mode == "1":
        img, mode = img.convert("L"), "L"
    if mode in _TO_RGB and mode != "RGB":
        img, mode = img.convert("RGB"), "RGB"
    if mode in ("RGB", "L"):
        pixels = np.asarray(img, dtype=np.uint8)
    elif mode in _SIXTEEN or mode == "I":
        raw = np.asarray(img).astype(np.int64)
        if raw.min() < 0 or raw.max() > 65535:
            raise NicError(f"{name}: {mode} image with values outside [0, 65535]; nicjax codes 8-bit RGB or "
                           "8/16-bit grayscale")
        pixels = raw.astype(np.uint16)
    else:
        raise NicError(f"{name}: unsupported image mode {mode}; nicjax codes 8-bit RGB or 8/16-bit grayscale")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if max(pixels.shape[:2]) > MAX_SIDE:
        raise NicError(f"{name}: {pixels.shape[0]}×{pixels.shape[1]} pixels, sides over {MAX_SIDE} do not fit "
                       "the header")
    if min(pixels.shape[:2]) < 1:
        raise NicError(f"{name}: image is empty")
    if pixels.shape[0] * pixels.shape[1] > MAX_DECODED_PIXELS:  # refused before training, not after it
        raise NicError(f"{name}: {pixels.shape[1]}×{pixels.shape[0]} pixels, over the {MAX_DECODED_PIXELS} that "
                       "nicjax decodes at once")
    return Image(pixels=np.ascontiguousarray(pixels))


def read_image(path: str) -> Image:
    """Reads an image file Pillow can open (PNG, JPEG, BMP, TIFF, WebP, ...)."""
    from PIL import Image as PILImage, UnidentifiedImageError

    if os.path.isdir(path):
        raise NicError(f"{path}: is a directory")
    if not os.path.isfile(path):
        raise NicError(f"{path}: no such file")
    try:
        with PILImage.open(path) as img:
            bits = _sample_bits(img)
            if bits > 8 and img.mode not in _SIXTEEN and img.mode != "I":
                raise NicError(f"{path}: {bits}-bit-per-channel {img.mode} image: nicjax codes 16 bits for "
                               "grayscale only; convert it to 8-bit colour first")
            img.load()
            return from_pil(img, path)
    except UnidentifiedImageError:
        raise NicError(f"{path}: not an image file Pillow can read")
    except PILImage.DecompressionBombError as e:
        raise NicError(f"{path}: {e}")
    except (OSError, SyntaxError, ValueError) as e:  # truncated or malformed files
        first = str(e).splitlines()[0] if str(e) else ""
        raise NicError(f"{path}: cannot read the image ({type(e).__name__}: {first})")


def _sample_bits(img) -> int:
    """Bits per sample of the file behind an unloaded Pillow image: 16 for a 48-bit RGB PNG, say.

    Pillow opens 16-bit-per-channel colour (RGB, RGBA, LA) as its 8-bit modes and drops the low byte on load;
    only the raw mode of the decoder's tiles ('RGB;16B', ...) still tells.
    """
    bits = 8
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else ""
        if isinstance(rawmode, str) and ";16" in rawmode:
            bits = 16
    return bits


def to_pil(pixels):
    from PIL import Image as PILImage

    a = check_pixels(pixels)
    return PILImage.fromarray(np.ascontiguousarray(a if a.shape[2] == 3 else a[:, :, 0]))  # RGB, L or I;16


def write_image(path: str, pixels, **save_options) -> None:
    """Writes pixels in the format the file name's extension names (PNG for a lossless copy), atomically."""
    from PIL import Image as PILImage

    from nicjax.signals.pointcloud import atomic_write

    ext = os.path.splitext(path)[1].lower()
    fmt = PILImage.registered_extensions().get(ext)
    if fmt is None:
        raise NicError(f"{path}: unknown image extension {ext or '(none)'}: use .png for a lossless copy")
    img = to_pil(pixels)
    atomic_write(path, lambda f: img.save(f, format=fmt, **save_options))


def looks_like_ply(path: str) -> bool:
    """True if the file starts with the PLY magic line (the compress CLI's dispatch between signals)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"ply\n", b"ply\r")
    except OSError:
        return False


def mse(reference, test) -> float:
    a = np.asarray(reference, np.float64)
    b = np.asarray(test, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return float(np.mean(np.square(a - b)))


def image_psnr(reference, test, peak: float = 255.0) -> float:
    """PSNR over every pixel and channel together (RGB PSNR for colour images): 10·log10(peak² / MSE)."""
    from nicjax.metrics import psnr

    return psnr(mse(reference, test), peak)


def procedural_image(height: int = 96, width: int = 128, seed: int = 0) -> Image:
    """A smooth synthetic RGB image with a few edges: a test signal that needs no data."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    phase = rng.uniform(0, 2 * np.pi, 3)
    r = 128 + 90 * np.sin(2 * np.pi * (1.3 * x + 0.4 * y) + phase[0])
    g = 128 + 80 * np.cos(2 * np.pi * (0.7 * y - 0.5 * x) + phase[1])
    b = 128 + 70 * np.sin(2 * np.pi * (x * y * 2.0) + phase[2])
    rgb = np.stack([r, g, b], axis=-1)
    disc = (x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.04
    rgb[disc] = rgb[disc] * 0.3 + 30
    return Image(pixels=np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def to_signal(pixels, colour_space: int) -> Signal:
    """The Signal of an (H, W[, C]) uint8/uint16 image: its pixel-centre grid and colours, loss = RGB MSE.

    colour_space: what the network outputs (container.COLOUR_*); grayscale images are always coded as they are.
    """
    if isinstance(pixels, Image):
        pixels = pixels.pixels
    pixels = check_pixels(pixels)
    h, w, c = pixels.shape
    space = colour_space if c == 3 else container.COLOUR_RGB
    info = container.SignalInfo(container.SIGNAL_IMAGE, space, 16 if pixels.dtype == np.uint16 else 8,
                                height=h, width=w)
    return Signal(inputs=grid(h, w), colours=pixels.reshape(h * w, c), info=info,
                  loss_weights=color.rgb_mse_weights(space, c))

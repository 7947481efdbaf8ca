"""Images through the shared codec path: bitstream round trips, odd sizes, other resolutions, modes, the CLI."""

import dataclasses
import os
import struct
import subprocess
import sys
import zlib

import jax
import numpy as np
import pytest
from PIL import Image as PILImage

from nicjax import codec, configs, container, fit, representations
from nicjax.representations import siren
from nicjax.errors import NicError
from nicjax.signals import image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = configs.CodecConfig(model=siren.SirenConfig(width=16, depth=2),
                         fit=configs.FitConfig(steps=150, learning_rate=2e-3, batch_size=512), levels=64)


@pytest.fixture(scope="module")
def encoded():
    pixels = image.procedural_image(24, 36).pixels
    return pixels, codec.compress_image(pixels, TINY, progress=False)


def test_grid_is_pixel_centres_in_the_unit_square():
    g = image.grid(2, 4)
    np.testing.assert_allclose(g[:4, 0], -0.5)  # first row: y = (2·0 + 1)/2 − 1
    np.testing.assert_allclose(g[:4, 1], [-0.75, -0.25, 0.25, 0.75])
    assert g.dtype == np.float32 and g.shape == (8, 2)
    big = image.grid(7, 11)
    assert np.abs(big).max() < 1 and np.allclose(big.mean(axis=0), 0, atol=1e-7)


def test_round_trip_through_the_bitstream(encoded):
    pixels, result = encoded
    header, _ = codec.read(result.data)
    assert (header.signal.kind, header.signal.height, header.signal.width) == (container.SIGNAL_IMAGE, 24, 36)
    assert (header.model.in_dim, header.model.out_dim, header.signal.colour_space) == (2, 3, container.COLOUR_RGB)
    decoded = codec.decompress_image(result.data)  # the file alone
    np.testing.assert_array_equal(decoded, result.decoded)
    assert decoded.dtype == np.uint8 and decoded.shape == pixels.shape
    assert result.psnr == pytest.approx(image.image_psnr(pixels, decoded))
    assert result.psnr > 22, result.psnr
    assert result.bits_per_pixel == 8 * len(result.data) / (24 * 36)
    assert codec.compress_image(pixels, TINY, progress=False).data == result.data  # same seed, same bytes


def test_decoding_on_a_finer_grid_samples_the_same_function(encoded):
    pixels, result = encoded
    fine = codec.decompress_image(result.data, scale=3)
    assert fine.shape == (72, 108, 3)
    # with an odd factor, the centre sub-pixel of every 3×3 block is the coded pixel's centre
    assert np.abs(fine[1::3, 1::3].astype(int) - result.decoded.astype(int)).max() <= 1
    assert codec.decompress_image(result.data, scale=0.5).shape == (12, 18, 3)
    with pytest.raises(ValueError, match="positive"):
        codec.decompress_image(result.data, scale=0)


def test_a_point_cloud_file_is_not_an_image_and_back(encoded, small_cloud):
    _, result = encoded
    with pytest.raises(NicError, match="point cloud"):
        codec.decompress(result.data, small_cloud.xyz)
    model = siren.SirenConfig(width=16, depth=2)
    p = codec.plan(codec.cloud_signal(small_cloud), configs.CodecConfig(model=model))
    cloud_file = codec.write(p.header, p.start, p.reference, 64)
    codec.decompress(cloud_file, small_cloud.xyz)
    with pytest.raises(NicError, match="image"):
        codec.decompress_image(cloud_file)


@pytest.mark.parametrize("size,colour_space", [((1, 1), "rgb"), ((13, 7), "ycbcr")])
def test_odd_sizes_and_colour_spaces(size, colour_space):
    pixels = image.procedural_image(*size, seed=1).pixels
    config = dataclasses.replace(TINY, colour_space=colour_space, fit=configs.FitConfig(steps=60, learning_rate=2e-3))
    result = codec.compress_image(pixels, config, progress=False)
    assert result.decoded.shape == pixels.shape
    spaces = {"rgb": container.COLOUR_RGB, "ycbcr": container.COLOUR_YCBCR709}
    assert result.header.signal.colour_space == spaces[colour_space]  # recorded in the file
    np.testing.assert_array_equal(codec.decompress_image(result.data), result.decoded)
    assert result.psnr > 15, result.psnr
    with pytest.raises(ValueError, match="colour space"):
        codec.image_signal(pixels, dataclasses.replace(TINY, colour_space="lab"))


def save(tmp_path, name, img):
    path = str(tmp_path / name)
    img.save(path)
    return path


def test_grayscale_8_and_16_bit_are_coded_as_one_channel(tmp_path):
    gray = image.procedural_image(12, 20).pixels[:, :, 1]
    img = image.read_image(save(tmp_path, "g.png", PILImage.fromarray(gray, "L")))
    assert img.pixels.shape == (12, 20, 1) and img.colour_bits == 8
    config = dataclasses.replace(TINY, fit=configs.FitConfig(steps=30, learning_rate=2e-3))
    result = codec.compress_image(img, config, progress=False)
    assert result.header.model.out_dim == 1 and result.decoded.shape == (12, 20, 1)

    deep = gray.astype(np.uint16) * 257
    img16 = image.read_image(save(tmp_path, "g16.png", PILImage.fromarray(deep)))
    assert img16.colour_bits == 16
    np.testing.assert_array_equal(img16.pixels[:, :, 0], deep)
    result16 = codec.compress_image(img16, config, progress=False)
    assert result16.decoded.dtype == np.uint16 and result16.header.signal.colour_bits == 16
    np.testing.assert_array_equal(codec.decompress_image(result16.data), result16.decoded)
    image.write_image(str(tmp_path / "back16.png"), result16.decoded)
    np.testing.assert_array_equal(image.read_image(str(tmp_path / "back16.png")).pixels, result16.decoded)


def test_modes_are_converted_or_refused_clearly(tmp_path):
    rgb = image.procedural_image(8, 10).pixels
    opaque = np.concatenate([rgb, np.full((8, 10, 1), 255, np.uint8)], axis=2)
    img = image.read_image(save(tmp_path, "opaque.png", PILImage.fromarray(opaque, "RGBA")))
    np.testing.assert_array_equal(img.pixels, rgb)  # an opaque alpha channel is dropped
    palette = PILImage.fromarray(rgb, "RGB").quantize(16)
    assert image.read_image(save(tmp_path, "p.png", palette)).pixels.shape == (8, 10, 3)

    transparent = opaque.copy()
    transparent[0, 0, 3] = 10
    with pytest.raises(NicError, match="transparency"):
        image.read_image(save(tmp_path, "t.png", PILImage.fromarray(transparent, "RGBA")))
    with pytest.raises(NicError, match="unsupported image mode F"):
        image.read_image(save(tmp_path, "f.tiff", PILImage.fromarray(np.zeros((4, 4), np.float32), "F")))
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(NicError, match="not an image"):
        image.read_image(str(tmp_path / "junk.png"))
    with pytest.raises(NicError, match="no such file"):
        image.read_image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="16-bit"):
        codec.image_signal(np.zeros((4, 4, 3), np.uint16))


def run(module, *args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_round_trip_needs_no_geometry(tmp_path):
    pixels = image.procedural_image(20, 28).pixels
    image.write_image(str(tmp_path / "photo.png"), pixels)
    fast = ["--width", "16", "--depth", "2", "--steps", "100", "--levels", "64", "--noprogress"]
    proc = run("nicjax.compress", "photo.png", "-o", "photo.nic", *fast, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bpp = float(proc.stdout.split("bpp")[1].split()[0])
    psnr = float(proc.stdout.split("PSNR")[1].split()[1])
    assert bpp == pytest.approx(8 * (tmp_path / "photo.nic").stat().st_size / (20 * 28), abs=1e-3)
    proc = run("nicjax.decompress", "photo.nic", "-o", "decoded.png", "--original", "photo.png", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    decoded = image.read_image(str(tmp_path / "decoded.png")).pixels
    assert abs(image.image_psnr(pixels, decoded) - psnr) < 0.01  # what the encoder printed is what was written
    assert float(proc.stdout.split("PSNR")[1].split()[1]) == pytest.approx(psnr, abs=0.01)


def test_cli_latent_image_is_the_librarys_and_decodes_at_any_scale(tmp_path):
    """--representation latent on an image: the latent preset (not the SIREN image preset's training), the file the
    library writes with it, decoded by the same decompress with no geometry, --scale too; grayscale is refused in
    one line before any training."""
    pixels = image.procedural_image(20, 28).pixels
    image.write_image(str(tmp_path / "photo.png"), pixels)
    proc = run("nicjax.compress", "photo.png", "-o", "photo.nic", "--representation", "latent", "--lambda", "0.001",
               "--steps", "60", "--noprogress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(configs.LATENT.fit, steps=60,
                                                                          rate_lambda=0.001))
    data = (tmp_path / "photo.nic").read_bytes()
    assert codec.compress_image(pixels, config, progress=False).data == data
    proc = run("nicjax.decompress", "photo.nic", "-o", "big.png", "--scale", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert image.read_image(str(tmp_path / "big.png")).pixels.shape == (40, 56, 3)
    image.write_image(str(tmp_path / "gray.png"), pixels[:, :, 0])
    proc = run("nicjax.compress", "gray.png", "-o", "gray.nic", "--representation", "latent", cwd=tmp_path)
    assert proc.returncode != 0 and "three colour channels" in proc.stderr and not (tmp_path / "gray.nic").exists()



def write_png16(path, pixels):
    """A 16-bit-per-sample PNG (48-bit RGB for (H, W, 3), 16-bit gray for (H, W)), which Pillow cannot write."""
    pixels = np.asarray(pixels, np.uint16)
    height, width = pixels.shape[:2]
    colour_type = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\0" + pixels[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_48_bit_png_is_refused_not_read_as_8_bit(tmp_path):
    deep = (image.procedural_image(12, 16).pixels.astype(np.uint16) * 257 + 3)  # low bytes that 8 bits would drop
    write_png16(tmp_path / "rgb48.png", deep)
    with pytest.raises(NicError, match="16-bit-per-channel RGB"):
        image.read_image(str(tmp_path / "rgb48.png"))
    write_png16(tmp_path / "gray16.png", deep[:, :, 0])  # 16-bit grayscale is coded with all its bits
    np.testing.assert_array_equal(image.read_image(str(tmp_path / "gray16.png")).pixels[:, :, 0], deep[:, :, 0])
    proc = run("nicjax.compress", "rgb48.png", "-o", "rgb48.nic", "--steps", "20", "--noprogress", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        "error: rgb48.png: 16-bit-per-channel RGB image: nicjax codes 16 bits for grayscale only; convert it to "
        "8-bit colour first"]
    assert not (tmp_path / "rgb48.nic").exists()


def test_an_image_too_large_to_decode_is_worded_for_what_was_asked(tmp_path, encoded, monkeypatch):
    _, result = encoded
    header, quantized = container.decode(result.data, representations.REGISTRY)
    big = dataclasses.replace(header, signal=dataclasses.replace(header.signal, height=20000, width=20000))
    # 4e8 pixels: over MAX_DECODED_PIXELS, so no encoder writes such a file; forged, it is a corrupted one
    with pytest.raises(ValueError, match="over the"):
        container.encode(big, quantized, representations.REGISTRY)
    with monkeypatch.context() as patch:
        patch.setattr(container, "MAX_IMAGE_PIXELS", 1 << 40)
        (tmp_path / "big.nic").write_bytes(container.encode(big, quantized, representations.REGISTRY))
    (tmp_path / "small.nic").write_bytes(result.data)

    def error(*args):
        proc = run("nicjax.decompress", *args, cwd=tmp_path)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, proc.stderr
        return lines[0]

    line = error("big.nic", "-o", "big.png")
    assert line == (f"error: file is corrupted (an image of 20000×20000 pixels, over the {image.MAX_DECODED_PIXELS} "
                    "that nicjax decodes at once)"), line
    assert error("small.nic", "-o", "huge.png", "--scale", "1000").startswith("error: --scale: a 1000× decode")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".png")]
    monkeypatch.setattr(image, "MAX_DECODED_PIXELS", 100)  # compress refuses such an image before training
    with pytest.raises(NicError, match="over the 100 that nicjax decodes"):
        image.from_pil(PILImage.new("RGB", (11, 10)), "wide.png")


def test_an_image_output_that_is_an_input_is_refused(tmp_path, encoded):
    pixels, result = encoded
    image.write_image(str(tmp_path / "photo.png"), pixels)
    (tmp_path / "photo.nic").write_bytes(result.data)
    before = (tmp_path / "photo.png").read_bytes()
    for module, args in [("nicjax.compress", ["photo.png", "-o", "photo.png", "--steps", "20", "--noprogress"]),
                         ("nicjax.decompress", ["photo.nic", "-o", "photo.png", "--original", "photo.png"]),
                         ("nicjax.decompress", ["photo.nic", "--original", "photo.png"])]:  # default: photo.png
        proc = run(module, *args, cwd=tmp_path)
        assert proc.returncode != 0 and proc.stdout == "", (args, proc.stdout)
        assert "error: photo.png: is the input photo.png" in proc.stderr, proc.stderr
        assert (tmp_path / "photo.png").read_bytes() == before

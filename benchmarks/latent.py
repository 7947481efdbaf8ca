"""Encode and decode speed of the latent representation against the SIREN default, in one run (ratios).

    python -m benchmarks.latent [--ply PATH] [--lambda 0.001] [--siren_steps 8000] [--repeats 3]
    python -m benchmarks.latent --image ../shared/data/images/kodak/kodim04.png   # an image (no geometry)
    python -m benchmarks.latent --nic cloud.nic [--ply PATH | --image PATH]          # decode a file only

Both codecs code the same cloud at their presets (latent: 'latent' preset at --lambda; SIREN: the default 64x5,
8000 steps, 256 levels). Encode: wall seconds of codec.encode (training and writing; the geometry features are
included for the latent). Decode: whole file after imports and a first warm-up decode (jit compiled), the best of
--repeats, as points per second; the latent decode split into its parts (container and entropy decoding with the
canonical check, the octree features, the network). Both rates and PSNRs are printed so that a faster codec is
not read as a better one. --image: the same for an image, against the SIREN image preset (configs.IMAGE: 48x5, 3000
steps; --siren_steps overrides), pixels per second, RGB PSNR.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nicjax import codec, configs  # noqa: E402
from nicjax.metrics import colour_psnr  # noqa: E402
from nicjax.representations import latent  # noqa: E402
from nicjax.signals import image, pointcloud  # noqa: E402

_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded/longdress_cwi_pcl_l3.ply"


def best_of(f, repeats: int) -> float:
    """The least wall time of f() over the repeats (each decode builds its octree: `latent.keeping_octrees`)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def decode_parts(data: bytes, geometry, repeats: int) -> dict:
    """The latent decode's parts, each the least over the repeats of its time within one fresh decode (as
    `codec.decode` runs them, but one after the other)."""
    best = {}
    for _ in range(repeats):
        with latent.keeping_octrees():  # the features share the payload's octree, as in codec.decode
            t0 = time.perf_counter()
            header, params = codec.read(data, geometry=geometry)
            t1 = time.perf_counter()
            inputs = codec.network_inputs(codec.model_of(header), codec.header_geometry(header, geometry))
            t2 = time.perf_counter()
        codec.colours_at(header, params, inputs)
        t3 = time.perf_counter()
        for label, s in (("container, entropy decoding and the canonical check", t1 - t0),
                         ("octree features", t2 - t1), ("network", t3 - t2)):
            best[label] = min(best.get(label, s), s)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ply", default=_DATA)
    parser.add_argument("--image", default=None, help="an image file instead of --ply")
    parser.add_argument("--lambda", dest="lam", type=float, default=1e-3)
    parser.add_argument("--siren_steps", type=int, default=0, help="0: the preset's (8000 clouds, 3000 images)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nic", default=None, help="decode this latent file of the --ply cloud or --image only "
                        "(no encodes, no SIREN)")
    args = parser.parse_args()

    if args.image:
        signal = codec.image_signal(image.read_image(args.image))
        siren_preset, unit = configs.IMAGE, "pixels"
        context = codec.DecodeContext()
    else:
        signal = codec.cloud_signal(pointcloud.read_ply(args.ply))
        siren_preset, unit = configs.CodecConfig(), "points"
        context = codec.DecodeContext(geometry=signal.geometry)
    n = len(signal.colours)

    def quality(decoded) -> str:
        if args.image:
            return f"RGB {image.image_psnr(signal.colours, decoded.values.reshape(n, -1)):.2f} dB"
        return f"Y {colour_psnr(signal.colours, decoded.values)['y']:.2f} dB"

    if args.nic:
        with open(args.nic, "rb") as f:
            data = f.read()
        decoded = codec.decode(data, context)  # warm-up: compiles
        decode_s = best_of(lambda: codec.decode(data, context), args.repeats)
        print(f"file    decode {decode_s:.3f} s ({n / decode_s / 1e6:.2f} M {unit}/s)  {8 * len(data) / n:.4f} bpp  "
              f"{quality(decoded)}")
        for label, seconds in decode_parts(data, context.geometry, args.repeats).items():
            print(f"  latent decode, {label}: {seconds:.3f} s")
        return
    latent_config = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(configs.LATENT.fit,
                                                                                 rate_lambda=args.lam))
    siren_steps = args.siren_steps or siren_preset.fit.steps
    siren_config = dataclasses.replace(siren_preset, fit=dataclasses.replace(siren_preset.fit, steps=siren_steps))
    rows = {}
    for name, config in (("latent", latent_config), ("siren", siren_config)):
        t = time.perf_counter()
        data = codec.encode(signal, config, progress=False).data
        encode_s = time.perf_counter() - t
        decoded = codec.decode(data, context)  # warm-up: compiles
        decode_s = best_of(lambda: codec.decode(data, context), args.repeats)
        rows[name] = (encode_s, decode_s, data)
        print(f"{name:7s} encode {encode_s:7.1f} s  decode {decode_s:.3f} s ({n / decode_s / 1e6:.2f} M {unit}/s)  "
              f"{8 * len(data) / n:.4f} bpp  {quality(decoded)}", flush=True)
    data = rows["latent"][2]
    for label, seconds in decode_parts(data, context.geometry, args.repeats).items():
        print(f"  latent decode, {label}: {seconds:.3f} s")
    (le, ld, *_), (se, sd, *_) = rows["latent"], rows["siren"]
    print(f"ratios (latent / SIREN preset): encode {le / se:.3f}, decode time {ld / sd:.3f} ({n} {unit}, "
          f"SIREN {siren_steps} steps)")


if __name__ == "__main__":
    main()

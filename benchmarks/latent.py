"""Encode and decode speed of the latent representation against the SIREN default, in one run (ratios).

    python -m benchmarks.latent [--ply PATH] [--lambda 0.001] [--siren_steps 8000] [--repeats 3]
    python -m benchmarks.latent --image ../shared/data/images/kodak/kodim04.png   # an image (no geometry)

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

from nicjax import codec, configs, container, representations  # noqa: E402
from nicjax.metrics import colour_psnr  # noqa: E402
from nicjax.signals import image, pointcloud  # noqa: E402

_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded/longdress_cwi_pcl_l3.ply"


def best_of(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ply", default=_DATA)
    parser.add_argument("--image", default=None, help="an image file instead of --ply")
    parser.add_argument("--lambda", dest="lam", type=float, default=1e-3)
    parser.add_argument("--siren_steps", type=int, default=0, help="0: the preset's (8000 clouds, 3000 images)")
    parser.add_argument("--repeats", type=int, default=3)
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
    geometry = codec.geometry_of(signal)
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
        if args.image:
            quality = f"RGB {image.image_psnr(signal.colours, decoded.values.reshape(n, -1)):.2f} dB"
        else:
            quality = f"Y {colour_psnr(signal.colours, decoded.values)['y']:.2f} dB"
        rows[name] = (encode_s, decode_s, data)
        print(f"{name:7s} encode {encode_s:7.1f} s  decode {decode_s:.3f} s ({n / decode_s / 1e6:.2f} M {unit}/s)  "
              f"{8 * len(data) / n:.4f} bpp  {quality}", flush=True)
    data = rows["latent"][2]
    header, params = codec.read(data, geometry=signal.geometry)
    parts = {
        "container + entropy (with the canonical re-encode)": lambda: container.decode(data, representations.REGISTRY,
                                                                                      geometry),
        "octree features": lambda: codec.network_inputs(codec.model_of(header), geometry),
    }
    inputs = codec.network_inputs(codec.model_of(header), geometry)
    parts["network"] = lambda: codec.colours_at(header, params, inputs)
    for label, f in parts.items():
        print(f"  latent decode, {label}: {best_of(f, args.repeats):.3f} s")
    (le, ld, *_), (se, sd, *_) = rows["latent"], rows["siren"]
    print(f"ratios (latent / SIREN preset): encode {le / se:.3f}, decode time {ld / sd:.3f} ({n} {unit}, "
          f"SIREN {siren_steps} steps)")


if __name__ == "__main__":
    main()

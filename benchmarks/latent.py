"""Encode and decode speed of the latent representation against the SIREN default, in one run (ratios).

    python -m benchmarks.latent [--ply PATH] [--lambda 0.001] [--siren_steps 8000] [--repeats 3]

Both codecs code the same cloud at their presets (latent: 'latent' preset at --lambda; SIREN: the default 64x5,
8000 steps, 256 levels). Encode: wall seconds of codec.encode (training and writing; the geometry features are
included for the latent). Decode: whole file after imports and a first warm-up decode (jit compiled), the best of
--repeats, as points per second; the latent decode split into its parts (container and entropy decoding with the
canonical check, the octree features, the network). Both rates and PSNRs are printed so that a faster codec is
not read as a better one.
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
from nicjax.signals import pointcloud  # noqa: E402

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
    parser.add_argument("--lambda", dest="lam", type=float, default=1e-3)
    parser.add_argument("--siren_steps", type=int, default=configs.CodecConfig().fit.steps)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cloud = pointcloud.read_ply(args.ply)
    signal = codec.cloud_signal(cloud)
    n = len(signal.geometry)
    latent_config = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(configs.LATENT.fit,
                                                                                 rate_lambda=args.lam))
    siren_config = dataclasses.replace(configs.CodecConfig(), fit=dataclasses.replace(configs.CodecConfig().fit,
                                                                                       steps=args.siren_steps))
    rows = {}
    for name, config in (("latent", latent_config), ("siren", siren_config)):
        t = time.perf_counter()
        data = codec.encode(signal, config, progress=False).data
        encode_s = time.perf_counter() - t
        context = codec.DecodeContext(geometry=signal.geometry)
        decoded = codec.decode(data, context)  # warm-up: compiles
        decode_s = best_of(lambda: codec.decode(data, context), args.repeats)
        psnr = colour_psnr(signal.colours, decoded.values)["y"]
        rows[name] = (encode_s, decode_s, 8 * len(data) / n, psnr, data)
        print(f"{name:7s} encode {encode_s:7.1f} s  decode {decode_s:.3f} s ({n / decode_s / 1e6:.2f} M points/s)  "
              f"{8 * len(data) / n:.4f} bpp  Y {psnr:.2f} dB", flush=True)
    data = rows["latent"][4]
    header, params = codec.read(data, geometry=signal.geometry)
    parts = {
        "container + entropy (with the canonical re-encode)": lambda: container.decode(data, representations.REGISTRY,
                                                                                      signal.geometry),
        "octree features": lambda: codec.cloud_inputs(header, signal.geometry),
    }
    inputs = codec.cloud_inputs(header, signal.geometry)
    parts["network"] = lambda: codec.colours_at(header, params, inputs)
    for label, f in parts.items():
        print(f"  latent decode, {label}: {best_of(f, args.repeats):.3f} s")
    (le, ld, *_), (se, sd, *_) = rows["latent"], rows["siren"]
    print(f"ratios (latent / SIREN default): encode {le / se:.3f}, decode time {ld / sd:.3f} ({n} points, "
          f"SIREN {args.siren_steps} steps)")


if __name__ == "__main__":
    main()

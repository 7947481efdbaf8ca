"""Entropy coder benchmark: the whole-array coder (nicjax.entropy) against the per-symbol coder of format
version 2 (nicjax.entropy_v2).

    python -m benchmarks.entropy            # speed: Laplacian symbols, RAHT on longdress l3 vs TMC13 v23
    python -m benchmarks.entropy --rate     # also the rate comparison on trained SIREN networks (~10-15 min)

The rate comparison trains the README's l1 sweep networks (ω0 60, Adam 1e-3 cosine, batch 16384, snapshots at
1000 and 3000 steps), quantizes every snapshot at 4 ... 1024 levels against the seeded reference and codes the
identical symbols with both coders. `--symbols_cache PATH` keeps the quantized symbols in an .npz, so a rerun
skips the training.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
import zlib

import numpy as np

from nicjax import entropy, entropy_v2

DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded"
L1 = f"{DATA}/longdress_cwi_pcl_l1.ply"
L3 = f"{DATA}/longdress_cwi_pcl_l3.ply"
TMC13 = "../shared/reference/gpcc/longdress_cwi_pcl_l3_tmc13-v23.tsv"
NETWORKS = ["16x2", "24x3", "32x3", "48x3", "64x3", "48x5", "64x5", "12x2", "16x3", "20x3", "40x4", "40x5", "56x4",
            "56x5"]
SNAPSHOTS = (1000, 3000)
LEVELS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def laplacian_speed(n: int = 1_000_000, scales=(2.0, 30.0)) -> None:
    print(f"Laplacian symbols, n = {n:,}, one kind (best of 3 new, 1 old; seconds, symbols/s)")
    print("| scale | coder | encode s | decode s | encode sym/s | decode sym/s | bytes |")
    print("|---|---|---|---|---|---|---|")
    for scale in scales:
        a = np.rint(np.random.default_rng(0).laplace(0, scale, n)).astype(np.int64)
        rows = {}
        for name, mod, repeats in (("new", entropy, 3), ("old", entropy_v2, 1)):
            te, data = _best_time(lambda: mod.encode_ints([a]), repeats)
            td, back = _best_time(lambda: mod.decode_ints(data, [n]), repeats)
            assert np.array_equal(back[0], a)
            rows[name] = (te, td, len(data))
            print(f"| {scale:g} | {name} | {te:.3f} | {td:.3f} | {n / te:,.0f} | {n / td:,.0f} | {len(data):,} |")
        (ne, nd, nb), (oe, od, ob) = rows["new"], rows["old"]
        print(f"| {scale:g} | new/old | speed-up encode {oe / ne:.0f}x | decode {od / nd:.0f}x | | | "
              f"bytes {nb / ob:.4f} |")


def coder_libraries(n: int = 1_000_000) -> None:
    """The raw coders on one static table (what nicjax.entropy hands them per block): range_coder (integer CDF,
    through a file) vs constriction (float probabilities it quantizes itself), if installed."""
    import tempfile

    import range_coder

    freq = np.array([3000, 2000, 1500, 900, 500, 200, 60, 20, 8, 4], dtype=np.int64)  # total 8192, like a block table
    sym = np.random.default_rng(1).choice(freq.size, n, p=freq / freq.sum())
    ideal = float(-(np.log2(freq / freq.sum())[sym]).sum()) / 8
    cdf = [0, *np.cumsum(freq).tolist()]
    path = tempfile.mkstemp(suffix=".rc")[1]

    def rc_encode():
        enc = range_coder.RangeEncoder(path)
        enc.encode(sym.tolist(), cdf)
        enc.close()
        return os.path.getsize(path)

    def rc_decode():
        dec = range_coder.RangeDecoder(path)
        out = np.fromiter(dec.decode(n, cdf), dtype=np.int64, count=n)
        dec.close()
        return out

    te, size = _best_time(rc_encode, 3)
    td, out = _best_time(rc_decode, 3)
    assert np.array_equal(out, sym)
    os.remove(path)
    print(f"\nRaw coders, {n:,} symbols, one static 10-symbol table (ideal {ideal:,.0f} bytes; best of 3):")
    print(f"  range_coder:  encode {te:.3f} s, decode {td:.3f} s, {size:,} bytes (list in/out, through a file)")
    try:
        import constriction
    except ImportError:
        print("  constriction: not installed")
        return
    model = constriction.stream.model.Categorical(freq.astype(np.float64), perfect=False)
    s32 = sym.astype(np.int32)
    for name, make in (("queue.RangeEncoder", constriction.stream.queue.RangeEncoder),
                       ("stack.AnsCoder", constriction.stream.stack.AnsCoder)):
        def c_encode():
            coder = make()
            (coder.encode if name.startswith("queue") else coder.encode_reverse)(s32, model)
            return coder.get_compressed()

        te, comp = _best_time(c_encode, 3)
        if name.startswith("queue"):
            td, out = _best_time(lambda: constriction.stream.queue.RangeDecoder(comp).decode(model, n), 3)
        else:
            td, out = _best_time(lambda: constriction.stream.stack.AnsCoder(comp).decode(model, n), 3)
        assert np.array_equal(out, s32)
        print(f"  constriction {name}: encode {te:.3f} s, decode {td:.3f} s, {comp.nbytes:,} bytes")


def _tmc13_times(path: str) -> tuple[float, float, float, float]:
    """(min, max) of enc_s and dec_s over TMC13's RAHT rows."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["mode"] == "raht"]
    enc = [float(r["enc_s"]) for r in rows]
    dec = [float(r["dec_s"]) for r in rows]
    return min(enc), max(enc), min(dec), max(dec)


def raht_speed(path: str = L3, step: float = 32.0, old: bool = True) -> None:
    from nicjax.baselines import raht
    from nicjax.signals.pointcloud import read_ply

    cloud = read_ply(path)
    coords = raht.check_coords(cloud.xyz)
    rgb = np.asarray(cloud.rgb).astype(np.uint8)
    te, data = _best_time(lambda: raht.encode(coords, rgb, step), 2)
    td, _ = _best_time(lambda: raht.decode(data, coords), 2)
    print(f"\nRAHT on {os.path.basename(path)} ({len(coords):,} points), step {step:g}: {len(data):,} bytes, "
          f"encode {te:.2f} s, decode {td:.2f} s (best of 2; transform and geometry included)")
    if os.path.exists(TMC13):
        e0, e1, d0, d1 = _tmc13_times(TMC13)
        print(f"TMC13 v23 RAHT ({os.path.basename(TMC13)}, same cloud): enc_s {e0:.3f}-{e1:.3f}, "
              f"dec_s {d0:.3f}-{d1:.3f} -> ours / TMC13's slowest: encode {te / e1:.2f}x, decode {td / d1:.2f}x; "
              f"/ its fastest: encode {te / e0:.2f}x, decode {td / d0:.2f}x")
    if old:  # the same symbols in a version-2 file (the per-symbol coder), timed once
        from nicjax.signals.color import rgb_to_ycbcr

        structure = raht.raht_structure(coords)
        q = np.rint(raht.raht_forward_with_structure(structure, rgb_to_ycbcr(rgb)) / step).astype(np.int64)
        t = time.perf_counter()
        payload = entropy_v2.encode_ints([q[:, ch] for ch in range(3)], [0, 1, 2])
        te2 = time.perf_counter() - t
        body = raht._HEADER.pack(raht.MAGIC, 2, step, raht.geometry_crc(coords)) + payload
        data2 = body + raht._TRAILER.pack(zlib.crc32(body))
        td2, rgb2 = _best_time(lambda: raht.decode(data2, coords), 1)
        assert np.array_equal(rgb2, raht.decode(data, coords))
        print(f"Same symbols, version-2 coder: {len(data2):,} bytes (new/old {len(data) / len(data2):.4f}); its "
              f"entropy encode alone {te2:.1f} s, whole decode {td2:.1f} s")


# ---------------------------------------------------------------------------------------------------------
# Rate comparison on trained networks
# ---------------------------------------------------------------------------------------------------------


def train_snapshots(ply: str, network: str, snapshots=SNAPSHOTS, omega0: float = 60.0):
    """Trains one SIREN on a cloud; returns ({step: params}, reference params, tensor specs). The one place that knows the
    library's training API (codec.plan and codec.train with a callback, as experiments/common.py trains)."""
    from nicjax import codec, configs
    from nicjax.representations import siren
    from nicjax.signals import pointcloud

    width, depth = (int(v) for v in network.split("x"))
    cloud = pointcloud.read_ply(ply)
    config = configs.CodecConfig(model=siren.SirenConfig(width=width, depth=depth, omega0=omega0),
                                 fit=configs.FitConfig(steps=max(snapshots), learning_rate=1e-3, schedule="cosine",
                                                       batch_size=16384, steps_per_call=50))
    signal = codec.cloud_signal(cloud, config)
    plan = codec.plan(signal, config)
    kept = {}

    def callback(step, params):
        if step in snapshots:
            kept[step] = params

    codec.train(signal, plan, progress=False, callback=callback)
    return kept, plan.reference, plan.model.tensors()


def rate_symbols(cache: str | None) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """{"WxD@steps/levels": (symbol arrays, kinds)} for every network, snapshot and level."""
    if cache and os.path.exists(cache):
        z = np.load(cache)
        out = {}
        for key in sorted({k.rsplit("|", 1)[0] for k in z.files}):
            kinds = [int(k) for k in z[f"{key}|kinds"]]
            out[key] = ([z[f"{key}|{i}"] for i in range(len(kinds))], kinds)
        return out
    from nicjax import container, quantize

    out = {}
    for network in NETWORKS:
        t = time.perf_counter()
        kept, reference, specs = train_snapshots(L1, network)
        for step, params in sorted(kept.items()):
            for levels in LEVELS:
                q = quantize.quantize(params, reference, levels, specs=specs)
                out[f"{network}@{step}/{levels}"] = ([np.asarray(t.symbols) for t in q],
                                                     [container.ROLES.index(t.spec.role) for t in q])
        print(f"  trained {network} in {time.perf_counter() - t:.0f} s", flush=True)
        if cache:
            flat = {}
            for key, (arrays, kinds) in out.items():
                flat[f"{key}|kinds"] = np.asarray(kinds)
                flat.update({f"{key}|{i}": a for i, a in enumerate(arrays)})
            np.savez_compressed(cache, **flat)
    return out


def rate_comparison(cache: str | None) -> None:
    print("\nRate on identical symbols: SIREN snapshots on longdress l1 (ω0 60), 1000 and 3000 steps, "
          f"levels {LEVELS[0]}...{LEVELS[-1]}")
    streams = rate_symbols(cache)
    rows = []
    for key, (arrays, kinds) in streams.items():
        new = entropy.encode_ints(arrays, kinds)
        old = entropy_v2.encode_ints(arrays, kinds)
        back = entropy.decode_ints(new, [a.size for a in arrays], kinds)
        assert all(np.array_equal(a, b) for a, b in zip(arrays, back)), key
        rows.append((key, len(old), len(new)))
    print("| network | streams | old bytes | new bytes | new/old | worst stream new/old |")
    print("|---|---|---|---|---|---|")
    for network in NETWORKS:
        mine = [r for r in rows if r[0].startswith(network + "@")]
        if not mine:
            continue
        o, n = sum(r[1] for r in mine), sum(r[2] for r in mine)
        worst = max(mine, key=lambda r: r[2] / r[1])
        print(f"| {network} | {len(mine)} | {o:,} | {n:,} | {n / o:.4f} | {worst[2] / worst[1]:.4f} ({worst[0]}, "
              f"{worst[1]} -> {worst[2]} B) |")
    o, n = sum(r[1] for r in rows), sum(r[2] for r in rows)
    worst = max(rows, key=lambda r: r[2] / r[1])
    best = min(rows, key=lambda r: r[2] / r[1])
    print(f"| all | {len(rows)} | {o:,} | {n:,} | {n / o:.4f} | {worst[2] / worst[1]:.4f} ({worst[0]}, "
          f"{worst[1]} -> {worst[2]} B) |")
    print(f"best stream new/old {best[2] / best[1]:.4f} ({best[0]}, {best[1]} -> {best[2]} B); streams from "
          f"{min(r[1] for r in rows)} to {max(r[1] for r in rows)} bytes (old)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", action="store_true", help="also the rate comparison (trains 14 networks)")
    parser.add_argument("--rate_only", action="store_true", help="only the rate comparison")
    parser.add_argument("--symbols_cache", default=None, help=".npz of the quantized symbols (written if missing)")
    parser.add_argument("--n", type=int, default=1_000_000, help="Laplacian symbols")
    parser.add_argument("--raht_step", type=float, default=32.0)
    args = parser.parse_args()
    if not args.rate_only:
        laplacian_speed(args.n)
        coder_libraries()
        raht_speed(step=args.raht_step)
    if args.rate or args.rate_only:
        rate_comparison(args.symbols_cache)


if __name__ == "__main__":
    main()

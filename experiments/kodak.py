"""Kodak: NIC against JPEG, WebP and JPEG 2000 (Pillow, measured in the same run), with other codecs in context.

    python -m experiments.kodak --qat_steps=0      # CPU subset: 6 images, the SIREN's small networks and the
                                                   # latent codec at --lambdas (~1.2 h on 2 cores; the SIREN's QAT
                                                   # rows, --qat_steps 300, add to it)
    python -m experiments.kodak --full             # all 24 images, larger networks, 20000 steps (~a day on 2 cores)
    python -m experiments.kodak --networks= --lambdas=1e-3   # the latent codec alone, one λ
    python -m experiments.kodak --summarize_only   # redraw figures and tables from results/kodak/points.csv

Two NIC codecs, each its own rows and envelope: the paper's SIREN (codec "nic") and the latent codec
(`--representation latent`, codec "latent": latent grids on the pixel grid's quadtree, the latent preset by rule;
one training per λ of --lambdas, param = λ, coded at each of --latent_levels for its network).

NIC: for each image, each network (--networks, width×depth) is trained once (experiments.common.sweep: the
codec's own plan, training and coding) and snapshotted at each of --iterations; every snapshot is coded at each of
--levels, with and without quantization-aware fine-tuning (--qat_steps), with the real bitstream and decoded from
those bytes by the real decoder (codec.decode). Rates are 8 × file bytes / pixels, header and checksum included;
PSNR is over R, G and B together, peak 255.
Pillow codecs, on the same images in the same run, with the settings of ../shared/reference/kodak/README.md:
JPEG (quality sweep, 4:2:0, optimize), WebP (lossy, method 6), JPEG 2000 (OpenJPEG, rates mode, 9/7, mct=1, raw
codestream). Context, not run here: AVIF, HEVC 4:4:4 (a BPG stand-in) and JPEG XL from the measurements in
--reference_dir (restricted to the images evaluated), and the published 24-image averages of COIN, COIN++,
Strümpler et al. and C3 (experiments/kodak_published.py).

Averages: mean bpp and mean PSNR (dB) over the evaluated images, per codec parameter; for NIC per operating
point (width, depth, iterations, levels, QAT steps). The NIC envelope is the upper convex hull of its average operating
points (nicjax.rd.envelope); BD-rates use PCHIP over the overlapping PSNR range (nicjax.rd.bd_rate).

Outputs under --out: points.csv (every measured point), average.csv, bd_rates.csv, kodak_rd.png (averages),
kodak_rd_per_image.png, kodak_<codec>.json (average curves in CompressAI's format), summary.md. The CSV is
appended row by row and the job resumes: rows already there are not recomputed (a points.csv from before the QAT
columns gains them, its NIC rows marked as plain quantization).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
import time
import warnings

import numpy as np
from absl import flags

from experiments import common
from experiments.kodak_published import PUBLISHED
from nicjax import cli, codec, config_flags, configs, rd
from nicjax.representations import siren
from nicjax.signals import image

FLAGS = flags.FLAGS
# The CPU subset: six images spanning JPEG difficulty, at its 1/12, 3/12, ..., 11/12 quantiles (PSNR at quality 30 in
# ../shared/reference/kodak/jpeg.csv, sorted from hard to easy: positions 2, 6, 10, 14, 18 and 22 of 24). kodim04,
# on which the training settings (configs.IMAGE, the latent codec's image rules) were chosen, is not among them.
# Until session 18 the subset was three images (positions 6, 12, 18: kodim18, kodim19, kodim17).
CPU_IMAGES = ["kodim08", "kodim18", "kodim11", "kodim15", "kodim17", "kodim12"]
# λ of the latent codec's files on the CPU subset: ~25 to ~38 dB on average (session 18)
CPU_LAMBDAS = ["0.01", "0.003", "0.001", "0.0003", "0.0001"]
CPU_ARCHS = ["32x4", "48x5", "64x5"]
CPU_ITERATIONS = ["1000", "2000", "3000"]
FULL_ARCHS = ["32x4", "48x5", "64x5", "96x5", "128x5"]
FULL_ITERATIONS = ["2500", "5000", "10000", "20000"]
LEVELS = ["16", "32", "64", "128", "256"]
QAT_STEPS = ["0", "300"]  # as experiments.rd_sweep

flags.DEFINE_string("data_dir", "../shared/data/images/kodak", "Folder with kodim01.png … kodim24.png.")
flags.DEFINE_string("reference_dir", "../shared/reference/kodak", "Reference codec CSVs (see its README.md).")
flags.DEFINE_list("images", CPU_IMAGES, "Images to evaluate (names without .png); --full: all 24.")
flags.DEFINE_bool("full", False, f"All 24 images, networks {','.join(FULL_ARCHS)}, iterations "
                  f"{','.join(FULL_ITERATIONS)} (unless --networks/--iterations/--images are given).")
common.define_networks(CPU_ARCHS)
flags.DEFINE_list("iterations", CPU_ITERATIONS, "Training snapshots (each run lasts the largest).")
flags.DEFINE_list("levels", LEVELS, "Quantization levels per tensor.")
flags.DEFINE_list("qat_steps", QAT_STEPS, "Quantization-aware fine-tuning steps per coded snapshot "
                  "(FitConfig.qat_steps); each value is its own set of rows from the same training run (0: plain "
                  "quantization).")
# Unset, these take the image preset's values (configs.IMAGE: lr 1e-3, batch 4096, RGB, seeded reference).
CONFIG_FLAGS = ("lr", "batch", "seed", "qat_lr", "colour_space", "reference")
config_flags.define(only=CONFIG_FLAGS)
common.define_progress()
flags.DEFINE_list("lambdas", CPU_LAMBDAS, "The latent codec (codec 'latent' rows): one file per λ, the latent "
                  "preset with its rules (configs.LATENT); empty: none.")
flags.DEFINE_integer("latent_steps", 0, "Training steps of each latent file (0: by rule, the preset's).")
flags.DEFINE_list("latent_levels", [str(v) for v in configs.LATENT_LEVEL_CHOICES],
                  "Quantization levels of each latent file's synthesis network (the latents are integers): a row each.")
flags.DEFINE_list("jpeg", ["2", "5", "10", "15", "20", "30", "40", "50", "65", "75", "85", "90"], "JPEG qualities.")
flags.DEFINE_list("webp", ["0", "5", "10", "20", "30", "40", "50", "60", "70", "80", "85", "90"], "WebP qualities.")
flags.DEFINE_list("jpeg2000", ["480", "320", "240", "160", "120", "80", "60", "40", "30", "24", "16", "12"],
                  "JPEG 2000 compression ratios.")
flags.DEFINE_string("out", "results/kodak", "Output folder.")
flags.DEFINE_bool("summarize_only", False, "Only redraw figures and tables from points.csv.")
flags.adopt_module_key_flags(config_flags)  # --help lists the config and shared flags too
flags.adopt_module_key_flags(common)

MIN_OVERLAP_DB = 1.0  # BD figures over a shorter common PSNR range say nothing: reported as n/a
NO_OVERLAP = f"n/a (curves overlap < {MIN_OVERLAP_DB:g} dB)"
KEY = ("image", "codec", "param", "width", "depth", "iterations", "levels", "qat_steps", "qat_lr")
COLUMNS = list(KEY) + ["bytes", "bpp", "psnr_rgb", "encode_s", "decode_s"]
MEASURED = {"jpeg": "JPEG", "webp": "WebP", "jpeg2000": "JPEG 2000"}  # run here, through Pillow
REFERENCE = {"avif": "AVIF", "hevc444": "HEVC 4:4:4 (BPG stand-in)", "jxl": "JPEG XL"}  # context, from CSVs
COLOURS = {"jpeg": "tab:red", "webp": "tab:orange", "jpeg2000": "tab:brown", "avif": "tab:purple",
           "hevc444": "tab:gray", "jxl": "tab:olive"}


# --- bookkeeping ----------------------------------------------------------------------------------------------

def upgrade(row: dict) -> dict:
    """A row of a points.csv written before the QAT columns: its NIC rows are plain quantization."""
    if "qat_steps" in row:
        return row
    return dict(row, qat_steps="0" if row["codec"] == "nic" else "", qat_lr="")


def writer_for(path: str) -> common.RowWriter:
    return common.RowWriter(path, COLUMNS, KEY, upgrade=upgrade)


def nic_config() -> configs.CodecConfig:
    """The NIC settings the flags give (unset: the image preset's); the architecture is set per network."""
    return config_flags.codec_config(configs.IMAGE)


def settings_of(config: configs.CodecConfig) -> dict:
    """The NIC settings points.csv rows do not record: a resumed run must share them (settings.json)."""
    return {"lr": config.fit.learning_rate, "batch": config.fit.batch_size, "seed": config.fit.seed,
            "colour_space": "ycbcr" if config.colour_space == "ycbcr" else "rgb",
            "reference": codec.resolve_reference(config)}


# --- the Pillow codecs ----------------------------------------------------------------------------------------

def pillow_encode(img, codec_name: str, param: int) -> bytes:
    buf = io.BytesIO()
    if codec_name == "jpeg":
        img.save(buf, "JPEG", quality=param, optimize=True, subsampling="4:2:0")
    elif codec_name == "webp":
        img.save(buf, "WEBP", lossless=False, quality=param, method=6)
    elif codec_name == "jpeg2000":
        img.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[param], irreversible=True, mct=1,
                 no_jp2=True)
    else:
        raise ValueError(codec_name)
    return buf.getvalue()


def run_pillow(name: str, pixels: np.ndarray, writer: common.RowWriter) -> None:
    from PIL import Image as PILImage

    img = PILImage.fromarray(pixels)
    n = pixels.shape[0] * pixels.shape[1]
    for codec_name in MEASURED:
        for param in getattr(FLAGS, codec_name):
            if writer.has(image=name, codec=codec_name, param=param):
                continue
            t0 = time.perf_counter()
            data = pillow_encode(img, codec_name, int(param))
            t1 = time.perf_counter()
            with PILImage.open(io.BytesIO(data)) as dec:
                decoded = np.asarray(dec.convert("RGB"))
            t2 = time.perf_counter()
            if decoded.shape != pixels.shape:
                raise RuntimeError(f"{codec_name} {param} decoded {name} to {decoded.shape}")
            writer.add(dict(image=name, codec=codec_name, param=param, bytes=len(data),
                            bpp=f"{8 * len(data) / n:.6f}", psnr_rgb=f"{image.image_psnr(pixels, decoded):.4f}",
                            encode_s=f"{t1 - t0:.3f}", decode_s=f"{t2 - t1:.3f}"))


# --- NIC ------------------------------------------------------------------------------------------------------

def run_nic(name: str, pixels: np.ndarray, networks, iterations, levels, qat_steps, writer: common.RowWriter) -> None:
    base = nic_config()
    signal = codec.image_signal(pixels, base)
    for width, depth in networks:
        config = dataclasses.replace(base, model=siren.SirenConfig(width=width, depth=depth,
                                                                   omega0=base.model.omega0))

        def key(s: common.Setting) -> dict:
            return dict(image=name, codec="nic", width=width, depth=depth, iterations=s.iterations, levels=s.levels,
                        qat_steps=s.qat_steps, qat_lr=f"{base.fit.qat_learning_rate:g}" if s.qat_steps else "")

        def fields(p: common.Point) -> dict:
            return dict(bytes=p.bytes, bpp=f"{p.bpp:.6f}", psnr_rgb=f"{p.psnr['rgb']:.4f}",
                        encode_s=f"{p.encode_s:.3f}", decode_s=f"{p.decode_s:.3f}")

        t0 = time.perf_counter()
        points = common.sweep(signal, config, writer, key, fields, iterations=iterations, levels=levels,
                              qat_steps=qat_steps, progress=FLAGS.progress)
        if points:
            best = max(p.psnr["rgb"] for p in points)
            print(f"  {name} NIC {width}x{depth}: {len(points)} points in {time.perf_counter() - t0:.0f} s "
                  f"(training {max(p.train_s for p in points):.0f} s), best {best:.2f} dB", flush=True)


def run_latent(name: str, pixels: np.ndarray, writer: common.RowWriter) -> None:
    """One latent file per --lambdas (configs.LATENT by rule: levels, channels, network, steps), coded at each
    --latent_levels; rows codec "latent", param λ, width × depth the network's (hidden width × hidden layers)."""
    levels = common.int_list(FLAGS.latent_levels, "latent_levels", 2)
    for lam in map(float, FLAGS.lambdas):
        config = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(configs.LATENT.fit, rate_lambda=lam))
        signal = codec.image_signal(pixels, config)
        model = codec.architecture(config, signal)[0]
        if FLAGS.latent_steps:
            config = dataclasses.replace(config, fit=dataclasses.replace(config.fit, steps=FLAGS.latent_steps))
        steps = codec.fit_config_for(signal, config, model).steps

        def key(s: common.Setting) -> dict:
            return dict(image=name, codec="latent", param=f"{lam:g}", width=model.config.hidden,
                        depth=model.config.layers, iterations=s.iterations, levels=s.levels, qat_steps=0, qat_lr="")

        def fields(p: common.Point) -> dict:
            return dict(bytes=p.bytes, bpp=f"{p.bpp:.6f}", psnr_rgb=f"{p.psnr['rgb']:.4f}",
                        encode_s=f"{p.encode_s:.3f}", decode_s=f"{p.decode_s:.3f}")

        t0 = time.perf_counter()
        points = common.sweep(signal, config, writer, key, fields, iterations=[steps], levels=levels,
                              progress=FLAGS.progress)
        if points:
            best = max(points, key=lambda p: p.psnr["rgb"])
            print(f"  {name} latent λ={lam:g} ({model.config.hidden}x{model.config.layers}, {steps} steps): "
                  f"{len(points)} points in {time.perf_counter() - t0:.0f} s (training {points[0].train_s:.0f} s), "
                  f"{best.bpp:.3f} bpp {best.psnr['rgb']:.2f} dB at its most levels", flush=True)


# --- summaries ------------------------------------------------------------------------------------------------

def read_reference(reference_dir: str, codec_name: str, images) -> list[dict]:
    path = os.path.join(reference_dir, f"{codec_name}.csv")
    if not os.path.exists(path):
        return []
    return [r for r in rd.read_rows(path) if r["image"] in images]


def average_curve(rows: list[dict], images, key) -> list[dict]:
    """Mean bpp and mean PSNR over `images` per key(row); only keys measured on every image."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), {})[r["image"]] = (float(r["bpp"]), float(r["psnr_rgb"]))
    out = []
    for k, per_image in groups.items():
        if all(i in per_image for i in images):
            vals = np.array([per_image[i] for i in images])
            out.append({"key": k, "bpp": float(vals[:, 0].mean()), "psnr": float(vals[:, 1].mean())})
    return sorted(out, key=lambda p: p["bpp"])


def nic_key(r: dict) -> tuple:
    return int(r["width"]), int(r["depth"]), int(r["iterations"]), int(r["levels"]), int(r["qat_steps"] or 0)


def nic_label(k: tuple) -> str:
    return f"{k[0]}x{k[1]} it{k[2]} L{k[3]}" + (f" QAT{k[4]}" if k[4] else "")


def latent_key(r: dict) -> tuple:
    return -float(r["param"]), int(r["levels"])  # the largest λ first


def latent_label(k: tuple) -> str:
    return f"λ={-k[0]:g} L{k[1]}"


@dataclasses.dataclass(frozen=True)
class Test:
    """A NIC codec of points.csv: its rows (codec column), how its operating points are keyed and named."""

    label: str
    key: object
    name: object
    colour: str
    what: str  # what its operating points are


TESTS = {"nic": Test("NIC SIREN", nic_key, nic_label, "tab:blue", "network, iterations, levels, QAT steps"),
         "latent": Test("NIC latent", latent_key, latent_label, "tab:green", "λ, network levels")}


def envelope_points(points: list[dict]) -> list[dict]:
    if not points:
        return []
    idx = rd.envelope([p["bpp"] for p in points], [p["psnr"] for p in points])
    return [points[i] for i in idx]


def bd_row(test: str, anchor: str, scope: str, t_pts, a_pts) -> dict:
    """BD-rate and BD-PSNR of test against anchor; NaN when the curves share less than MIN_OVERLAP_DB of PSNR."""
    tr, tp = [p["bpp"] for p in t_pts], [p["psnr"] for p in t_pts]
    ar, ap = [p["bpp"] for p in a_pts], [p["psnr"] for p in a_pts]
    lo, hi = max(min(tp), min(ap)), min(max(tp), max(ap))
    bd = bdp = float("nan")
    if hi - lo >= MIN_OVERLAP_DB:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bd = rd.bd_rate(ar, ap, tr, tp)
            bdp = rd.bd_psnr(ar, ap, tr, tp)
    return {"test": test, "anchor": anchor, "scope": scope, "bd_rate_percent": bd, "bd_psnr_db": bdp,
            "overlap_lo_db": lo if hi > lo else float("nan"), "overlap_hi_db": hi if hi > lo else float("nan")}


def fmt(x: float, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def summarize(out: str, command: str, seconds: float | None) -> list[dict]:
    """Tables and figures of points.csv. The images averaged are those every NIC codec there has and every Pillow
    codec too; each NIC codec's envelope is compared with every anchor, on that average and per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = common.read_rows(os.path.join(out, "points.csv"), upgrade)
    present = [t for t in TESTS if any(r["codec"] == t for r in rows)]
    if not present:
        raise SystemExit(f"no NIC rows in {out}/points.csv")
    images = sorted({r["image"] for r in rows if r["codec"] in present})
    for c in list(MEASURED) + present:  # evaluate only images every codec has
        images = [i for i in images if any(r["image"] == i and r["codec"] == c for r in rows)]
    if not images:
        raise SystemExit(f"no image in {out}/points.csv has rows of every codec ({', '.join(present)} and Pillow's)")
    curves = {}  # anchor codec -> average points
    for c in MEASURED:
        curves[c] = average_curve([r for r in rows if r["codec"] == c], images, lambda r: int(r["param"]))
    reference_rows = {c: read_reference(FLAGS.reference_dir, c, images) for c in list(REFERENCE) + list(MEASURED)}
    for c in REFERENCE:
        curves[c] = average_curve(reference_rows[c], images, lambda r: float(r["param"]))
    tests = {}  # NIC codec -> (average points, envelope)
    for t in present:
        pts = average_curve([r for r in rows if r["codec"] == t], images, TESTS[t].key)
        tests[t] = (pts, envelope_points(pts))

    bd = []
    for t, (_, env) in tests.items():  # each NIC envelope against every codec, on the average and per image
        for c in list(MEASURED) + list(REFERENCE):
            if curves[c] and env:
                bd.append(bd_row(t, c, f"average of {len(images)}", env, curves[c]))
    per_image = {}
    for name in images:
        for t in present:
            pts = average_curve([r for r in rows if r["codec"] == t and r["image"] == name], [name], TESTS[t].key)
            env = envelope_points(pts)
            per_image[name, t] = (pts, env)
            for c in list(MEASURED) + list(REFERENCE):
                src = [r for r in rows if r["codec"] == c] if c in MEASURED else reference_rows[c]
                anchor = average_curve([r for r in src if r["image"] == name], [name], lambda r: float(r["param"]))
                if anchor and env:
                    bd.append(bd_row(t, c, name, env, anchor))
    # context: the published 24-image curves against the 24-image JPEG of the reference measurements
    all_jpeg = read_reference(FLAGS.reference_dir, "jpeg", [f"kodim{i:02d}" for i in range(1, 25)])
    jpeg24 = average_curve(all_jpeg, [f"kodim{i:02d}" for i in range(1, 25)], lambda r: int(r["param"]))
    published_bd = []
    if jpeg24:
        for label, d in PUBLISHED.items():
            pts = [{"bpp": b, "psnr": p} for b, p in zip(d["bpp"], d["psnr"])]
            published_bd.append(bd_row(label, "jpeg (reference CSV, 24 images)", "average of 24", pts, jpeg24))

    # measured Pillow points against the reference measurements of the same images (same settings)
    checks = []
    for c in MEASURED:
        ref = {(r["image"], int(r["param"])): (float(r["bpp"]), float(r["psnr_rgb"])) for r in reference_rows[c]}
        diffs = [(abs(float(r["bpp"]) - ref[k][0]), abs(float(r["psnr_rgb"]) - ref[k][1]))
                 for r in rows if r["codec"] == c and r["image"] in images
                 for k in [(r["image"], int(r["param"]))] if k in ref]
        if diffs:
            d = np.array(diffs)
            checks.append((c, len(diffs), d[:, 0].max(), d[:, 1].max()))

    write_csvs(out, curves, tests, bd + published_bd, len(images))
    write_json(out, images, curves, tests)
    plot_average(plt, out, images, curves, tests)
    plot_per_image(plt, out, images, rows, reference_rows, per_image, present)
    nic_rows = [r for r in rows if r["codec"] in present and r["image"] in images]
    write_summary(out, command, seconds, images, curves, tests, bd, published_bd, checks, nic_rows)
    return bd


def write_csvs(out, curves, tests, bd, n_images):
    with open(os.path.join(out, "average.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["codec", "param", "bpp", "psnr_rgb", "images", "on_envelope", "source"])
        for t, (pts, env) in tests.items():
            on = {p["key"] for p in env}
            for p in pts:
                w.writerow([t, TESTS[t].name(p["key"]), f"{p['bpp']:.6f}", f"{p['psnr']:.4f}", n_images,
                            int(p["key"] in on), "measured"])
        for c, pts in curves.items():
            for p in pts:
                w.writerow([c, p["key"], f"{p['bpp']:.6f}", f"{p['psnr']:.4f}", n_images, "",
                            "measured" if c in MEASURED else "reference CSV"])
        for label, d in PUBLISHED.items():
            for b, p in zip(d["bpp"], d["psnr"]):
                w.writerow([label, "", b, p, 24, "", "published: " + d["citation"]])
    with open(os.path.join(out, "bd_rates.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(bd[0]))
        w.writeheader()
        for r in bd:
            w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()})


def write_json(out, images, curves, tests):
    """The average curves in CompressAI's JSON format: kodak_<nic codec>.json (its envelope; kodak_nic.json the
    SIREN's) and one per codec measured here (the reference CSVs' codecs are inputs, not results of this run)."""
    what = f"mean bpp and mean RGB PSNR over {len(images)} Kodak image(s): {', '.join(images)}"
    for t, (pts, env) in tests.items():
        common.write_compressai_json(
            os.path.join(out, f"kodak_{t}.json"), f"{TESTS[t].label} (nicjax)",
            f"Upper convex hull of {len(pts)} average operating points ({TESTS[t].what}); {what}",
            [p["bpp"] for p in env], [p["psnr"] for p in env], "psnr-rgb")
    for c, label in MEASURED.items():
        if curves[c]:
            common.write_compressai_json(
                os.path.join(out, f"kodak_{c}.json"), f"{label} (Pillow)",
                f"{label} through Pillow, settings of ../shared/reference/kodak/README.md; {what}",
                [p["bpp"] for p in curves[c]], [p["psnr"] for p in curves[c]], "psnr-rgb")


def _curve(ax, pts, **kw):
    ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], **kw)


def plot_average(plt, out, images, curves, tests):
    fig, ax = plt.subplots(figsize=(9, 6.5))
    for t, (pts, env) in tests.items():
        colour = TESTS[t].colour
        ax.scatter([p["bpp"] for p in pts], [p["psnr"] for p in pts], s=10, color=colour, alpha=0.3,
                   label=f"{TESTS[t].label} operating points ({TESTS[t].what})")
        _curve(ax, env, color=colour, lw=2.5, marker="o", label=f"{TESTS[t].label} envelope (nicjax, this run)")
    for c, label in MEASURED.items():
        _curve(ax, curves[c], color=COLOURS[c], lw=1.8, marker=".", label=f"{label} (Pillow, this run)")
    for c, label in REFERENCE.items():
        if curves.get(c):
            _curve(ax, curves[c], color=COLOURS[c], lw=1.2, ls="--", label=f"{label} (reference CSV)")
    markers = iter("s^vD")
    for label, d in PUBLISHED.items():
        ax.plot(d["bpp"], d["psnr"], ls=":", marker=next(markers), ms=4, lw=1, color="black", alpha=0.6,
                label=f"{label} (published, all 24 images)")
    ax.set_xscale("log")
    ax.set_xlim(0.02, 2.5)
    lo = min(p["psnr"] for pts, _ in tests.values() for p in pts)
    ax.set_ylim(max(15, math.floor(lo) - 1), 42)
    ax.set_xlabel("bits per pixel (log scale)")
    ax.set_ylabel("PSNR RGB (dB), mean over images")
    ax.set_title(f"Kodak, average over {len(images)} image(s): {', '.join(images) if len(images) <= 6 else 'all'}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "kodak_rd.png"), dpi=130)
    plt.close(fig)


def plot_per_image(plt, out, images, rows, reference_rows, per_image, present):
    cols = min(3, len(images))
    nrows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.8 * nrows), squeeze=False)
    for ax, name in zip(axes.ravel(), images):
        lo = 40.0
        for t in present:
            pts, env = per_image[name, t]
            ax.scatter([p["bpp"] for p in pts], [p["psnr"] for p in pts], s=8, color=TESTS[t].colour, alpha=0.3)
            _curve(ax, env, color=TESTS[t].colour, lw=2, marker="o", ms=3, label=f"{TESTS[t].label} envelope")
            lo = min([lo] + [p["psnr"] for p in pts])
        for c, label in MEASURED.items():
            pts_c = average_curve([r for r in rows if r["codec"] == c and r["image"] == name], [name],
                                  lambda r: int(r["param"]))
            _curve(ax, pts_c, color=COLOURS[c], lw=1.5, marker=".", label=label)
        for c, label in REFERENCE.items():
            pts_c = average_curve([r for r in reference_rows[c] if r["image"] == name], [name],
                                  lambda r: float(r["param"]))
            if pts_c:
                _curve(ax, pts_c, color=COLOURS[c], lw=1, ls="--", label=label)
        ax.set_xscale("log")
        ax.set_xlim(0.02, 2.5)
        ax.set_ylim(max(15, math.floor(lo) - 1), 44)
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("bpp")
        ax.set_ylabel("PSNR RGB (dB)")
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "kodak_rd_per_image.png"), dpi=110)
    plt.close(fig)


def write_summary(out, command, seconds, images, curves, tests, bd, published_bd, checks, nic_rows):
    config = nic_config()
    settings = settings_of(config)
    lines = [f"# Kodak: NIC against Pillow's JPEG, WebP and JPEG 2000", "", f"Command: `{command}`", "",
             f"Images ({len(images)}): {', '.join(images)}. NIC SIREN settings: networks {','.join(FLAGS.networks)}, "
             f"iterations {','.join(FLAGS.iterations)}, levels {','.join(FLAGS.levels)}, QAT steps "
             f"{','.join(FLAGS.qat_steps)} (lr {config.fit.qat_learning_rate:g}), lr {settings['lr']:g}, batch "
             f"{settings['batch']}, colour space {settings['colour_space']}, reference {settings['reference']}, seed "
             f"{settings['seed']}. NIC latent: the latent preset by rule (configs.LATENT), λ "
             f"{','.join(FLAGS.lambdas) or '(none this run)'}, network levels {','.join(FLAGS.latent_levels)}; "
             "its rows say the network (width × hidden layers) and the training steps."]
    if seconds is not None:
        lines.append(f"Wall time of the last invocation: {seconds / 60:.1f} min (earlier rows of points.csv may "
                     "come from earlier, resumed invocations).")
    for t in tests:
        fit_s = {}
        for r in nic_rows:
            if r["codec"] != t or r["qat_steps"] not in ("", "0"):
                continue  # encode_s of a QAT row includes its fine-tuning
            k = (r["image"], r["width"], r["depth"], r["param"])
            fit_s[k] = max(fit_s.get(k, 0.0), float(r["encode_s"]))
        extra = ""
        if t == "latent" and fit_s:
            extra = (f" (per image and λ: mean {np.mean(list(fit_s.values())) / 60:.1f} min, longest "
                     f"{max(fit_s.values()) / 60:.1f} min, training and coding one file)")
        lines.append(f"{TESTS[t].label} encode time, all images: {sum(fit_s.values()) / 60:.1f} min{extra}.")
    lines += ["", "## BD-rate of each NIC envelope (negative: NIC needs fewer bits at equal PSNR)", "",
              f"PCHIP over the PSNR range both curves cover (`nicjax.rd.bd_rate`); n/a where they share less than "
              f"{MIN_OVERLAP_DB:g} dB.", "",
              "| NIC | anchor | scope | BD-rate | BD-PSNR | PSNR overlap |", "|---|---|---|---|---|---|"]
    for r in sorted(bd, key=lambda r: (not r["scope"].startswith("average"), r["scope"], r["test"])):
        name = MEASURED.get(r["anchor"]) or REFERENCE.get(r["anchor"], r["anchor"])
        lines.append(f"| {TESTS[r['test']].label} | {name} | {r['scope']} | "
                     f"{common.fmt(r['bd_rate_percent'], '+.1f', ' %', NO_OVERLAP)} | "
                     f"{common.fmt(r['bd_psnr_db'], '+.2f', ' dB', 'n/a')} | {fmt(r['overlap_lo_db'], '.2f')}–"
                     f"{fmt(r['overlap_hi_db'], '.2f')} dB |")
    for t, (_, env) in tests.items():
        lines += ["", f"## {TESTS[t].label} envelope (average over the images)", "",
                  "| operating point | bpp | PSNR (dB) |", "|---|---|---|"]
        lines += [f"| {TESTS[t].name(p['key'])} | {p['bpp']:.4f} | {p['psnr']:.2f} |" for p in env]
    lines += ["", "## Average curves of the other codecs over the same images", ""]
    for c, pts in curves.items():
        label = MEASURED.get(c) or REFERENCE.get(c)
        src = "Pillow, this run" if c in MEASURED else "reference CSV"
        lines.append(f"- {label} ({src}): " + ", ".join(f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in pts))
    if checks:
        lines += ["", "## Check: Pillow measured here against the reference CSVs (same images, same settings)", ""]
        lines += [f"- {MEASURED[c]}: {n} points, max |Δbpp| {db:.4f}, max |ΔPSNR| {dp:.3f} dB"
                  for c, n, db, dp in checks]
    if published_bd:
        lines += ["", "## Context: published 24-image curves against JPEG (reference CSV, all 24 images)", "",
                  "Not comparable with the table above unless all 24 images were evaluated.", "",
                  "| method | BD-rate vs JPEG | PSNR overlap |", "|---|---|---|"]
        for r in published_bd:
            lines.append(f"| {r['test']} | {common.fmt(r['bd_rate_percent'], '+.1f', ' %', NO_OVERLAP)} | "
                         f"{fmt(r['overlap_lo_db'], '.2f')}–{fmt(r['overlap_hi_db'], '.2f')} dB |")
        lines += ["", "Sources: experiments/kodak_published.py."]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


# --- main -----------------------------------------------------------------------------------------------------

def check_settings(out: str) -> None:
    """points.csv rows do not record lr, batch, seed, ...: refuse to mix rows made with other settings."""
    path = os.path.join(out, "settings.json")
    settings = settings_of(nic_config())
    if os.path.exists(path) and os.path.exists(os.path.join(out, "points.csv")):
        with open(path) as f:
            before = json.load(f)
        if before != settings:
            raise SystemExit(f"{out} holds points made with {before}, not {settings}: use another --out")
    with open(path, "w") as f:
        json.dump(settings, f, indent=1)


def apply_full_preset():
    if not FLAGS.full:
        return
    if not FLAGS["images"].present:
        FLAGS.images = [f"kodim{i:02d}" for i in range(1, 25)]
    if not FLAGS["networks"].present:
        FLAGS.networks = FULL_ARCHS
    if not FLAGS["iterations"].present:
        FLAGS.iterations = FULL_ITERATIONS


def main(argv):
    del argv
    apply_full_preset()
    command = "python -m " + " ".join(["experiments.kodak"] + sys.argv[1:])
    os.makedirs(FLAGS.out, exist_ok=True)
    t_start = time.perf_counter()
    added = 0
    if not FLAGS.summarize_only:
        networks = common.parse_networks(FLAGS.networks)
        iterations = sorted(set(common.int_list(FLAGS.iterations, "iterations", 1)))
        levels = sorted(set(common.int_list(FLAGS.levels, "levels", 2)))
        qat_steps = common.int_list(FLAGS.qat_steps, "qat_steps")
        check_settings(FLAGS.out)
        with writer_for(os.path.join(FLAGS.out, "points.csv")) as writer:
            try:
                for name in FLAGS.images:
                    t0 = time.perf_counter()
                    pixels = image.read_image(os.path.join(FLAGS.data_dir, f"{name}.png")).pixels
                    if pixels.shape[2] != 3:
                        raise SystemExit(f"{name}: expected an RGB image")
                    run_pillow(name, pixels, writer)
                    run_nic(name, pixels, networks, iterations, levels, qat_steps, writer)
                    run_latent(name, pixels, writer)
                    print(f"{name} done in {time.perf_counter() - t0:.0f} s", flush=True)
            finally:
                added = writer.added
    seconds = time.perf_counter() - t_start if added else None
    bd = summarize(FLAGS.out, command, seconds)
    print(f"\nBD-rate of each NIC envelope (PCHIP over the common PSNR range); {FLAGS.out}/summary.md:")
    for r in bd:
        if r["scope"].startswith("average"):
            bd_rate = common.fmt(r["bd_rate_percent"], "+7.1f", " %", NO_OVERLAP)
            print(f"  {TESTS[r['test']].label:10s} vs {r['anchor']:9s} {bd_rate}   ({r['scope']} images, overlap "
                  f"{fmt(r['overlap_lo_db'], '.2f')}–{fmt(r['overlap_hi_db'], '.2f')} dB)")
    print(f"figures: {FLAGS.out}/kodak_rd.png, {FLAGS.out}/kodak_rd_per_image.png; tables: points.csv, "
          f"average.csv, bd_rates.csv; curves: kodak_<codec>.json")


if __name__ == "__main__":
    cli.run(main)

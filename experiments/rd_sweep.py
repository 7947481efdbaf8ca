"""R-D sweep of NIC against RAHT and G-PCC: every operating point a CSV row, then figures and BD-rate tables.

    python -m experiments.rd_sweep                      # CPU-sized default grid on the three longdress clouds
    python -m experiments.rd_sweep --widths=60,80,130,170 --depths=5,7,9 --omega0s=30 --qat_steps=0 \
        --iterations=...                                # the paper's grid and settings
    python -m experiments.rd_sweep --summarize_only     # redraw figures/tables from the CSV

NIC: for each cloud, each network (width × depth, × ω0, × rate penalty) is trained once and snapshotted at each
of --iterations; every snapshot is coded at each of --levels, with and without quantization-aware fine-tuning
(--qat_steps), with the real bitstream and decoded by the real decoder. RAHT
(nicjax.baselines.raht) runs at each of --raht_steps. Rates are 8 × bytes / points from the encoded bytes.
The CSV is appended row by row and the job resumes: rows already there are not recomputed.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time

import numpy as np
from absl import flags

from experiments import common
from nicjax import cli, codec, codecs, config_flags, configs, rd
from nicjax.representations import siren
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded"
flags.DEFINE_list("clouds", [f"{_DATA}/longdress_cwi_pcl_l{i}.ply" for i in (1, 2, 3)], "PLY files to sweep.")
flags.DEFINE_string("reference_dir", "../shared/reference/gpcc", "G-PCC reference TSVs (<cloud>_tmc13-*.tsv).")
# The default grid spans the rates of RAHT on the three longdress clouds (16k to 254k points): a network's bits
# are shared by the cloud's points, so small clouds need small networks.
common.define_networks(["16x2", "24x3", "32x3", "48x3", "64x3", "48x5", "64x5"],
                       "Ignored when --widths or --depths is given.")
flags.DEFINE_list("widths", ["32", "64"], "Shorthand: with --depths, sweep every width × depth (instead of "
                  "--networks).")
flags.DEFINE_list("depths", ["3", "5"], "Shorthand: with --widths, sweep every width × depth (instead of "
                  "--networks).")
flags.DEFINE_list("omega0s", ["60"], "First-layer SIREN frequencies ω0 (the paper's is 30; 60 fitted these clouds "
                  "better, README).")
flags.DEFINE_list("iterations", ["1000", "3000"], "Training snapshots (the run lasts the largest).")
flags.DEFINE_list("levels", [str(2**k) for k in range(2, 9)] + ["1024"],
                  "Quantization levels (2^2 .. 2^12 allowed).")
flags.DEFINE_list("raht_steps", ["8", "12", "16", "24", "32", "48", "64", "96", "128", "192", "256"],
                  "RAHT quantization steps.")
flags.DEFINE_list("delta_l1s", ["0"], "Rate-penalty weights (FitConfig.delta_l1) to train with, one run each.")
flags.DEFINE_list("qat_steps", ["0", "300"], "Quantization-aware fine-tuning steps per coded snapshot "
                  "(FitConfig.qat_steps); each value is its own set of rows from the same training run (0: plain "
                  "quantization).")
flags.DEFINE_list("lambdas", [], "The latent representation (--representation latent's codec): one file per λ "
                  "(FitConfig.rate_lambda), rows with codec 'latent'; empty: none.")
flags.DEFINE_integer("latent_steps", 0, "Training steps of each latent file (0: by rule, the preset's: "
                     "configs.LATENT_STEPS, DENSE_STEPS on dense clouds at small λ).")
flags.DEFINE_list("latent_levels", [str(v) for v in configs.LATENT_LEVEL_CHOICES],
                  "Quantization levels of the latent files' synthesis network (the latents are integers), a row "
                  "each; the codec itself keeps the one of least D + λ·R (configs.LATENT_LEVEL_CHOICES).")
# Ablations of the latent codec (the 'variant' column; "" is the codec as shipped).
LATENT_VARIANTS = {
    "": lambda c: c,
    "nearest": lambda c: dataclasses.replace(c, model=dataclasses.replace(c.model, interpolation="nearest")),
    "noise": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, latent_noise="noise")),
    "mixed": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, latent_noise="mixed")),
    "best": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, latent_noise="best")),
    "noise_only": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, latent_noise="noise",
                                                                           hard_fraction=0.0)),
    # the dense-cloud rule switched off: 1 channel, the latents at the network's rate (session 7's preset)
    "channels1_lr1e-2": lambda c: dataclasses.replace(c, model=dataclasses.replace(c.model, channels=1),
                                                      fit=dataclasses.replace(c.fit, latent_learning_rate=1e-2)),
    # session 7's candidate rule for clouds whose levels start at 2^1 (README): 3 channels, latents at 3e-2
    "channels3_lr3e-2": lambda c: dataclasses.replace(c, model=dataclasses.replace(c.model, channels=3),
                                                      fit=dataclasses.replace(c.fit, latent_learning_rate=3e-2)),
    "context_rate": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, rate_model="context")),
    "factorised_rate": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, rate_model="factorised")),
    # the training length before the dense-cloud steps rule (session 11): 1000 steps on every cloud
    "steps1000": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, steps=1000)),
    "steps3000": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, steps=3000)),
    # the rate model's scales at the network's Adam rate, as until session 15 (FitConfig.rate_model_learning_rate)
    "rate_lr1x": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit,
                                                                          rate_model_learning_rate=c.fit.learning_rate)),
    # the training start until session 14: latents at 0, the network as seeded (FitConfig.latent_init)
    "zeros_init": lambda c: dataclasses.replace(c, fit=dataclasses.replace(c.fit, latent_init="zeros")),
    # The cumulative ablation (README, session 13): each adds one part, up to the codec as shipped ("").
    # ablate1: nearest-node latents, a factorised Laplace per level and channel in training and one coded array per
    # level in the file (entropy model (a)), noise training only (no rounding finish)
    "ablate1": lambda c: _without_contexts(c, interpolation="nearest", hard=False),
    "ablate2": lambda c: _without_contexts(c, interpolation="trilinear", hard=False),  # + trilinear
    "ablate3": lambda c: _without_contexts(c, interpolation="trilinear", hard=True),  # + rounding finish
}


def _without_contexts(c, *, interpolation: str, hard: bool):
    """The ablation's codec before its last part (the coder's contexts, and the finish by rule): a factorised rate
    in training, one coded array per level, `noise` training, the rounding finish at every λ or at none."""
    fit = dataclasses.replace(c.fit, latent_noise="noise", rate_model="factorised",
                              hard_fraction=configs.HARD_FRACTION if hard else 0.0)
    return dataclasses.replace(c, model=dataclasses.replace(c.model, interpolation=interpolation, contexts=False),
                               fit=fit)


flags.DEFINE_enum("latent_variant", "", list(LATENT_VARIANTS), "An ablation of the latent files: 'nearest' (each "
                  "point reads its own node's latent, no interpolation), 'noise' (the preset since session 11) "
                  "or 'mixed' (only that training), 'best' (both, the better kept), 'noise_only' (noise training "
                  "without the straight-through rounding phase), 'channels3_lr3e-2' (3 channels per level, the "
                  "latents at Adam 3e-2), 'channels1_lr1e-2' (1 channel, the latents at 1e-2: the dense-cloud rule "
                  "off), 'context_rate' / 'factorised_rate' (the rate training sees: FitConfig.rate_model), "
                  "'steps1000' / 'steps3000' (that many training steps at every λ, not by rule), 'zeros_init' (training "
                  "from zero latents, not the pyramid start); 'ablate1'..'ablate3' "
                  "the cumulative ablation: nearest-node latents with a factorised rate and one coded array per "
                  "level, no rounding finish; + trilinear; + the rounding finish (then + contexts: as shipped).")
CONFIG_FLAGS = ("lr", "batch", "seed", "qat_lr")  # the config flags taken (nicjax.config_flags); the rest is swept
config_flags.define(only=CONFIG_FLAGS)
common.define_progress()
flags.DEFINE_string("out", "results", "Output folder: rd.csv, rd_<cloud>.png, <cloud>_<codec>.json, summary.md.")
flags.DEFINE_bool("summarize_only", False, "Only redraw figures and tables from the CSV.")
flags.adopt_module_key_flags(config_flags)  # --help lists the config and shared flags too
flags.adopt_module_key_flags(common)

KEY = ("cloud", "codec", "width", "depth", "omega0", "lr", "delta_l1", "qat_steps", "qat_lr", "iterations", "levels",
       "raht_step", "lambda", "variant")
COLUMNS = list(KEY) + ["bytes", "bpp", "y_psnr", "u_psnr", "v_psnr", "yuv_psnr", "encode_s", "decode_s"]
SHOW = ("codec", "width", "depth", "delta_l1", "qat_steps", "iterations", "levels", "raht_step", "lambda", "bpp",
        "y_psnr")


def cloud_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def upgrade(row: dict) -> dict:
    """Rows of CSVs written before the latent representation: no λ."""
    return {"lambda": "", "variant": "", **row}


def writer_for(path: str) -> common.RowWriter:
    return common.RowWriter(path, COLUMNS, KEY, show=SHOW, upgrade=upgrade)


def measured_fields(num_bytes: int, bpp: float, psnr: dict, encode_s: float, decode_s: float) -> dict:
    return {"bytes": num_bytes, "bpp": f"{bpp:.5f}", "y_psnr": f"{psnr['y']:.4f}", "u_psnr": f"{psnr['u']:.4f}",
            "v_psnr": f"{psnr['v']:.4f}", "yuv_psnr": f"{psnr['yuv']:.4f}", "encode_s": f"{encode_s:.2f}",
            "decode_s": f"{decode_s:.2f}"}


def networks() -> list[tuple[int, int]]:
    """(width, depth) pairs: every --widths × --depths if either is given, else --networks."""
    if FLAGS["widths"].present or FLAGS["depths"].present:
        widths = common.int_list(FLAGS.widths, "widths", 1)
        depths = common.int_list(FLAGS.depths, "depths", 1)
        return list(itertools.product(widths, depths))
    return common.parse_networks(FLAGS.networks)


def sweep_nic(name, signal, writer: common.RowWriter):
    iterations = sorted(common.int_list(FLAGS.iterations, "iterations", 1))
    levels = common.int_list(FLAGS.levels, "levels", 2)
    qat_steps = common.int_list(FLAGS.qat_steps, "qat_steps")
    base_config = config_flags.codec_config(configs.CodecConfig())
    fit = base_config.fit
    for (width, depth), omega0, delta_l1 in itertools.product(networks(), map(float, FLAGS.omega0s),
                                                              map(float, FLAGS.delta_l1s)):
        network = dict(cloud=name, codec="nic", width=width, depth=depth, omega0=f"{omega0:g}",
                       lr=f"{fit.learning_rate:g}", delta_l1=f"{delta_l1:g}", raht_step="")

        def key(s: common.Setting) -> dict:
            return dict(network, qat_steps=s.qat_steps, qat_lr=f"{fit.qat_learning_rate:g}" if s.qat_steps else "",
                        iterations=s.iterations, levels=s.levels)

        def fields(p: common.Point) -> dict:
            return measured_fields(p.bytes, p.bpp, p.psnr, p.encode_s, p.decode_s)

        config = dataclasses.replace(base_config, model=siren.SirenConfig(width=width, depth=depth, omega0=omega0),
                                     fit=dataclasses.replace(fit, delta_l1=delta_l1))
        common.sweep(signal, config, writer, key, fields, iterations=iterations, levels=levels, qat_steps=qat_steps,
                     progress=FLAGS.progress,
                     label=f"{name}: NIC {width}x{depth} ω0={omega0:g} delta_l1={delta_l1:g}, {iterations[-1]} steps")


def sweep_latent(name, signal, writer: common.RowWriter):
    """One latent file per λ (the latent preset; --lr, --batch, --seed if given), coded at each --latent_levels."""
    levels = common.int_list(FLAGS.latent_levels, "latent_levels", 2)
    base = config_flags.codec_config(configs.LATENT)
    for lam in map(float, FLAGS.lambdas):
        config = LATENT_VARIANTS[FLAGS.latent_variant](
            dataclasses.replace(base, fit=dataclasses.replace(base.fit, rate_lambda=lam)))
        model = codec.architecture(config, signal)[0]  # the network by rule (latent.NETWORKS)

        def key(s: common.Setting) -> dict:
            return dict(cloud=name, codec="latent", width=model.config.hidden, depth=model.config.layers,
                        lr=f"{base.fit.learning_rate:g}", iterations=s.iterations, levels=s.levels, qat_steps=0,
                        variant=FLAGS.latent_variant, **{"lambda": f"{lam:g}"})

        def fields(p: common.Point) -> dict:
            return measured_fields(p.bytes, p.bpp, p.psnr, p.encode_s, p.decode_s)

        steps = FLAGS.latent_steps or codec.fit_config_for(signal, config, model).steps
        common.sweep(signal, config, writer, key, fields, iterations=[steps], levels=levels,
                     progress=FLAGS.progress, label=f"{name}: latent λ={lam:g}, {steps} steps"
                     + (f", variant {FLAGS.latent_variant}" if FLAGS.latent_variant else ""))


def sweep_raht(name, signal, writer: common.RowWriter):
    raht = codecs.CODECS["raht"]
    context = codec.DecodeContext(geometry=signal.geometry)
    for step in FLAGS.raht_steps:
        if writer.has(cloud=name, codec="raht", raht_step=step):
            continue
        t = time.perf_counter()
        data = raht.encode(signal, configs.RahtConfig(float(step)))
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        decoded = raht.decode(data, context)
        dec_s = time.perf_counter() - t
        writer.add(dict(cloud=name, codec="raht", raht_step=step,
                        **measured_fields(len(data), 8 * len(data) / len(signal.inputs),
                                          common.measure(signal, decoded), enc_s, dec_s)))


# Which rows each envelope of the "what each part adds" table is drawn from (cumulative, in the order the parts
# were added to the sweep).
PARTS = [
    ("ω0 = 30, plain quantization (the first grid: 32/64 × 3/5)", lambda r: r["omega0"] == "30"),
    ("+ the ω0 = 60 networks (default grid; l1: more sizes), plain quantization",
     lambda r: r["qat_steps"] == "0" and r["delta_l1"] == "0"),
    ("+ quantization-aware fine-tuning", lambda r: r["delta_l1"] == "0"),
    ("+ rate penalty delta_l1 (all rows)", lambda r: True),
]


def column(rows, key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


def cloud_rows(rows, name: str):
    """One cloud's NIC rows, and its RAHT rows in rate order."""
    nic = [r for r in rows if r["cloud"] == name and r["codec"] == "nic"]
    ours = sorted((r for r in rows if r["cloud"] == name and r["codec"] == "raht"), key=lambda r: float(r["bpp"]))
    return nic, ours


def nic_envelope(nic, metric: str):
    """(bpp, psnr, indices of the envelope) of NIC rows, on `metric`'s PSNR."""
    bpp, psnr = column(nic, "bpp"), column(nic, f"{metric}_psnr")
    return bpp, psnr, rd.envelope(bpp, psnr)


def ablation(rows, clouds) -> list[str]:
    """BD-rate (Y) vs our RAHT of the envelope over cumulative subsets of the NIC rows (PARTS)."""
    table = ["| rows in the envelope | " + " | ".join(clouds) + " | average |",
             "| --- |" + " --- |" * (len(clouds) + 1)]
    for label, keep in PARTS:
        bds = []
        for name in clouds:
            nic, ours = cloud_rows(rows, name)
            nic = [r for r in nic if keep(r)]
            if not nic or not ours:
                bds.append(float("nan"))
                continue
            bpp, psnr, hull = nic_envelope(nic, "y")
            bds.append(rd.bd_rate(column(ours, "bpp"), column(ours, "y_psnr"), bpp[hull], psnr[hull]))
        table.append(f"| {label} | " + " | ".join(common.fmt(b, "+.1f", "%") for b in bds)
                     + f" | {common.fmt(common.mean(bds), '+.1f', '%')} |")
    return table


def latent_summary(rows, clouds, out_dir: str, reference_dir: str) -> list[str]:
    """The latent representation's envelope per cloud against every anchor there is (our RAHT, the SIREN envelope,
    G-PCC), as BD-rate (Y) lines, a figure `rd_latent_<cloud>.png` and a CompressAI JSON."""
    import matplotlib.pyplot as plt

    table = ["| cloud | latent points | anchor | BD-rate Y (latent vs anchor) | BD-PSNR Y | PSNR overlap |",
             "| --- | --- | --- | --- | --- | --- |"]
    points = ["| cloud | λ | levels | bpp | Y-PSNR | encode s | decode s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    bds: dict = {}
    for name in clouds:
        lat = [r for r in rows if r["cloud"] == name and r["codec"] == "latent" and r["variant"] == ""]
        if not lat:
            continue
        bpp, psnr, hull = nic_envelope(lat, "y")
        lb, lp = bpp[hull], psnr[hull]
        points += [f"| {name} | {lat[i]['lambda']} | {lat[i]['levels']} | {bpp[i]:.4f} | {psnr[i]:.2f} | "
                   f"{lat[i]['encode_s']} | {lat[i]['decode_s']} |" for i in hull]
        common.write_compressai_json(
            os.path.join(out_dir, f"{common.safe_name(name)}_latent.json"), "NIC latent (nicjax)",
            f"{name}: upper convex hull (Y-PSNR) of {len(lat)} latent-representation files (λ, levels); rates from "
            "real bytes, colour bits per input point", lb, lp, "psnr-y")
        anchors = []
        nic, ours = cloud_rows(rows, name)
        if ours:
            anchors.append(("RAHT (nicjax)", column(ours, "bpp"), column(ours, "y_psnr"), "b-s"))
        if nic:
            nb, np_, nh = nic_envelope(nic, "y")
            anchors.append(("SIREN envelope (nicjax)", nb[nh], np_[nh], "k-o"))
        for version, style in {"v12": "--", "v23": "-.", "v23-rahtplain": ":"}.items():
            path = os.path.join(reference_dir, f"{name}_tmc13-{version}.tsv")
            if os.path.exists(path):
                for mode, ref in rd.read_gpcc_reference(path).items():
                    anchors.append((f"G-PCC {version.split('-')[0]} {mode}", np.asarray(ref["bpp"]),
                                    np.asarray(ref["y"]), style))
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        ax.scatter(bpp, psnr, s=8, c="0.7", label="latent files")
        ax.plot(lb, lp, "r-o", ms=4, lw=2, label="NIC latent envelope")
        for label, ab, ap, style in anchors:
            ax.plot(ab, ap, style, ms=3, marker=".", label=label)
            bd = rd.bd_rate(ab, ap, lb, lp)
            bdp = common.bd_psnr(ab, ap, lb, lp)
            table.append(f"| {name} | {len(lat)} | {label} | {common.fmt(bd, '+.1f', '%')} | "
                         f"{common.fmt(bdp, '+.2f', ' dB')} | {rd.overlap_fraction(ap, lp):.0%} |")
            bds.setdefault(label, []).append(bd)
        ax.set_xscale("log")
        ax.set_xlabel("colour bits per point")
        ax.set_ylabel("Y-PSNR (dB)")
        ax.set_title(f"{name}: latents on the octree")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, f"rd_latent_{name}.png"), dpi=120)
        plt.close(fig)
    if len(points) == 2:
        return []
    table += [f"| **average** ({len(v)} clouds) | | {label} | {common.fmt(common.mean(v), '+.1f', '%')} | | |"
              for label, v in bds.items()]
    return (["", "## Latent representation (codec 'latent') vs every anchor", ""] + table
            + ["", "### Its envelope's points", ""] + points + latent_ablation(rows, clouds, reference_dir))


def latent_ablation(rows, clouds, reference_dir: str) -> list[str]:
    """BD-rate (Y) vs G-PCC v23 RAHT of each variant's envelope, per cloud that has variant rows."""
    variants = sorted({r["variant"] for r in rows if r["codec"] == "latent"})
    if variants == [""]:
        return []
    table = ["| cloud | variant | files | BD-rate Y vs G-PCC v23 RAHT | vs our RAHT |", "| --- | --- | --- | --- | --- |"]
    for name in clouds:
        path = os.path.join(reference_dir, f"{name}_tmc13-v23.tsv")
        ref = rd.read_gpcc_reference(path).get("raht") if os.path.exists(path) else None
        _, ours = cloud_rows(rows, name)
        for variant in variants:
            lat = [r for r in rows if r["cloud"] == name and r["codec"] == "latent" and r["variant"] == variant]
            if not lat:
                continue
            bpp, psnr, hull = nic_envelope(lat, "y")
            g = rd.bd_rate(ref["bpp"], ref["y"], bpp[hull], psnr[hull]) if ref else float("nan")
            o = rd.bd_rate(column(ours, "bpp"), column(ours, "y_psnr"), bpp[hull], psnr[hull]) if ours else float("nan")
            table.append(f"| {name} | {variant or 'as shipped'} | {len(lat)} | {common.fmt(g, '+.1f', '%')} | "
                         f"{common.fmt(o, '+.1f', '%')} |")
    return ["", "### Ablation: the shipped latent codec against its variants", ""] + table


def summarize(csv_path: str, out_dir: str, reference_dir: str) -> str:
    """Figures (the paper's Fig. 2 per cloud) and BD-rate tables (its Table 1, plus G-PCC) as markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [upgrade(r) for r in rd.read_rows(csv_path)]
    clouds = sorted({r["cloud"] for r in rows})
    lines = ["# R-D results", "", f"From `{csv_path}`; rates are colour bits per input point from real bytes. "
             "BD-rates: PCHIP over the overlapping PSNR range (bjontegaard); negative = NIC needs fewer bits.", ""]
    table1 = ["| cloud | NIC points | BD-rate YUV vs RAHT (ours) | BD-rate Y vs RAHT (ours) | BD-PSNR Y vs RAHT |",
              "| --- | --- | --- | --- | --- |"]
    gpcc_table = ["| cloud | anchor | BD-rate Y (NIC vs anchor) | PSNR overlap |", "| --- | --- | --- | --- |"]
    averages = {"yuv": [], "y": []}
    gpcc_bds = {}  # anchor label -> BD-rate Y per cloud, for the averages row
    envelope_lines = ["| cloud | network | ω0 | delta_l1 | QAT steps | iterations | levels | bpp | Y-PSNR |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in clouds:
        nic, ours = cloud_rows(rows, name)
        if not nic:
            continue
        curves = {}
        for metric in ("y", "yuv"):
            bpp, psnr, hull = nic_envelope(nic, metric)
            curves[metric] = (bpp[hull], psnr[hull], psnr)
            if metric == "y":
                envelope_lines += [f"| {name} | {nic[i]['width']}x{nic[i]['depth']} | {nic[i]['omega0']} | "
                                   f"{nic[i]['delta_l1']} | {nic[i]['qat_steps']} | "
                                   f"{nic[i]['iterations']} | {nic[i]['levels']} | {bpp[i]:.4f} | {psnr[i]:.2f} |"
                                   for i in hull]
        common.write_compressai_json(
            os.path.join(out_dir, f"{common.safe_name(name)}_nic.json"), "NIC (nicjax)",
            f"{name}: upper convex hull (Y-PSNR) of {len(nic)} NIC operating points (network, ω0, rate penalty, "
            "iterations, QAT steps, levels); rates from real bytes, colour bits per input point",
            curves["y"][0], curves["y"][1], "psnr-y")
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        ax.scatter(bpp, curves["y"][2], s=8, c="0.7", label="NIC operating points")
        ax.plot(curves["y"][0], curves["y"][1], "k-o", ms=3, label="NIC envelope")
        if ours:
            rb = column(ours, "bpp")
            ax.plot(rb, column(ours, "y_psnr"), "b-s", ms=3, label="RAHT (nicjax)")
            for metric in ("yuv", "y"):
                bd = rd.bd_rate(rb, column(ours, f"{metric}_psnr"), *curves[metric][:2])
                averages[metric].append(bd)
            bdp = common.bd_psnr(rb, column(ours, "y_psnr"), *curves["y"][:2])
            common.write_compressai_json(
                os.path.join(out_dir, f"{common.safe_name(name)}_raht.json"), "RAHT (nicjax)",
                f"{name}: nicjax.baselines.raht at each RAHT step (uniform quantization, adaptive range "
                "coding); rates from real bytes, colour bits per input point", rb, column(ours, "y_psnr"), "psnr-y")
            table1.append(f"| {name} | {len(nic)} | {common.fmt(averages['yuv'][-1], '+.1f', '%')} | "
                          f"{common.fmt(averages['y'][-1], '+.1f', '%')} | {common.fmt(bdp, '+.2f', ' dB')} |")
        styles = {"v12": "--", "v23": "-.", "v23-rahtplain": ":"}
        for version, style in styles.items():
            path = os.path.join(reference_dir, f"{name}_tmc13-{version}.tsv")
            if not os.path.exists(path):
                continue
            for mode, ref in rd.read_gpcc_reference(path).items():
                label = f"G-PCC {version.split('-')[0]} {mode}"
                ax.plot(ref["bpp"], ref["y"], style, marker=".", label=label)
                bd = rd.bd_rate(ref["bpp"], ref["y"], *curves["y"][:2])
                overlap = rd.overlap_fraction(ref["y"], curves["y"][1])
                gpcc_table.append(f"| {name} | {label} | {common.fmt(bd, '+.1f', '%')} | {overlap:.0%} |")
                gpcc_bds.setdefault(label, []).append(bd)
        ax.set_xscale("log")
        ax.set_xlabel("colour bits per point")
        ax.set_ylabel("Y-PSNR (dB)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        lo = min(curves["y"][0].min(), 0.02)
        ax.set_xlim(lo * 0.8, max(curves["y"][0].max() * 3, 1.0))
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, f"rd_{name}.png"), dpi=120)
        plt.close(fig)
    if averages["yuv"]:
        table1.append(f"| **average** | | {common.fmt(common.mean(averages['yuv']), '+.1f', '%')} | "
                      f"{common.fmt(common.mean(averages['y']), '+.1f', '%')} | |")
    gpcc_table += [f"| **average** ({len(bds)} clouds) | {label} | {common.fmt(common.mean(bds), '+.1f', '%')} | |"
                   for label, bds in gpcc_bds.items()]
    if any(r["codec"] == "nic" for r in rows):  # the SIREN's tables (a latent-only sweep has none)
        lines += ["## NIC envelope vs RAHT (Table 1)", ""] + table1 + ["", "## NIC envelope vs G-PCC", ""] + gpcc_table
        lines += ["", "## What each part of the grid adds (BD-rate Y vs RAHT (ours), cumulative)", ""]
        lines += ablation(rows, clouds)
        lines += ["", "## The NIC envelope's points (Y-PSNR)", ""] + envelope_lines
    lines += latent_summary(rows, clouds, out_dir, reference_dir)
    figures = [f for c in clouds for f in (f"rd_{c}.png", f"rd_latent_{c}.png")
               if os.path.exists(os.path.join(out_dir, f))]
    lines += ["", "Figures: " + ", ".join(f"`{f}`" for f in figures)]
    lines += ["", "R-D curves in CompressAI's JSON format (envelope points; Y-PSNR): "
              + ", ".join(f"`{common.safe_name(c)}_{k}.json`" for c in clouds for k in ("nic", "raht", "latent")
                          if os.path.exists(os.path.join(out_dir, f"{common.safe_name(c)}_{k}.json")))]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(text)
    return text


def main(argv):
    del argv
    os.makedirs(FLAGS.out, exist_ok=True)
    csv_path = os.path.join(FLAGS.out, "rd.csv")
    if not FLAGS.summarize_only:
        with writer_for(csv_path) as writer:
            for path in FLAGS.clouds:
                cloud = pointcloud.read_ply(path)
                name = cloud_name(path)
                print(f"{name}: {cloud.num_points} points", flush=True)
                signal = codec.cloud_signal(cloud)
                sweep_raht(name, signal, writer)
                sweep_nic(name, signal, writer)
                sweep_latent(name, signal, writer)
    print(summarize(csv_path, FLAGS.out, FLAGS.reference_dir))


if __name__ == "__main__":
    cli.run(main)

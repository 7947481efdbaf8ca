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

import csv
import dataclasses
import itertools
import math
import os
import sys
import time

import jax
import numpy as np
from absl import app, flags

from nicjax import codec, fit, rd, siren
from nicjax.baselines import raht
from nicjax.metrics import colour_psnr
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded"
flags.DEFINE_list("clouds", [f"{_DATA}/longdress_cwi_pcl_l{i}.ply" for i in (1, 2, 3)], "PLY files to sweep.")
flags.DEFINE_string("reference_dir", "../shared/reference/gpcc", "G-PCC reference TSVs (<cloud>_tmc13-*.tsv).")
flags.DEFINE_list("widths", ["32", "64"], "SIREN widths: with --depths, sweep every width × depth.")
flags.DEFINE_list("depths", ["3", "5"], "SIREN depths: with --widths, sweep every width × depth.")
# The default grid spans the rates of RAHT on the three longdress clouds (16k to 254k points): a network's bits
# are shared by the cloud's points, so small clouds need small networks.
flags.DEFINE_list("networks", ["16x2", "24x3", "32x3", "48x3", "64x3", "48x5", "64x5"],
                  "WIDTHxDEPTH pairs to sweep (ignored when --widths or --depths is given).")
flags.DEFINE_list("omega0s", ["60"], "First-layer SIREN frequencies ω0 (the paper's is 30; 60 fitted these clouds "
                  "better, README).")
flags.DEFINE_list("iterations", ["1000", "3000"], "Training snapshots (the run lasts the largest).")
flags.DEFINE_list("levels", [str(2**k) for k in range(2, 9)] + ["1024"],
                  "Quantization levels (2^2 .. 2^12 allowed).")
flags.DEFINE_list("raht_steps", ["8", "12", "16", "24", "32", "48", "64", "96", "128", "192", "256"],
                  "RAHT quantization steps.")
flags.DEFINE_float("lr", fit.FitConfig.learning_rate, "Adam learning rate.")
flags.DEFINE_list("delta_l1s", ["0"], "Rate-penalty weights (FitConfig.delta_l1) to train with, one run each.")
flags.DEFINE_list("qat_steps", ["0", "300"], "Quantization-aware fine-tuning steps per coded snapshot "
                  "(FitConfig.qat_steps); each value is its own set of rows from the same training run (0: plain "
                  "quantization).")
flags.DEFINE_float("qat_lr", fit.FitConfig.qat_learning_rate, "Learning rate of the quantization-aware steps.")
flags.DEFINE_integer("batch", fit.FitConfig.batch_size, "Points per training step.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("out", "results", "Output folder: rd.csv, rd_<cloud>.png, summary.md.")
flags.DEFINE_bool("summarize_only", False, "Only redraw figures and tables from the CSV.")

KEY = ("cloud", "codec", "width", "depth", "omega0", "lr", "delta_l1", "qat_steps", "qat_lr", "iterations", "levels",
       "raht_step")
COLUMNS = list(KEY) + ["bytes", "bpp", "y_psnr", "u_psnr", "v_psnr", "yuv_psnr", "encode_s", "decode_s"]


def cloud_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def row_key(row: dict) -> tuple:
    return tuple(str(row[k]) for k in KEY)


class RowWriter:
    def __init__(self, path: str):
        self.path = path
        if os.path.exists(path):
            with open(path, newline="") as f:
                found = next(csv.reader(f), [])
            if found != COLUMNS:
                raise SystemExit(f"error: {path} has columns {found}, expected {COLUMNS}; use another --out")
        self.done = {row_key(r) for r in rd.read_rows(path)}
        new = not os.path.exists(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=COLUMNS)
        if new:
            self.writer.writeheader()

    def has(self, **key) -> bool:
        return row_key({k: key.get(k, "") for k in COLUMNS}) in self.done

    def add(self, row: dict) -> None:
        row = {k: row.get(k, "") for k in COLUMNS}
        self.writer.writerow(row)
        self.file.flush()
        self.done.add(row_key(row))
        shown = ("codec", "width", "depth", "delta_l1", "qat_steps", "iterations", "levels", "raht_step", "bpp",
                 "y_psnr")
        print("  " + "  ".join(f"{k}={row[k]}" for k in shown if row[k] != ""), flush=True)


def psnr_fields(cloud, rgb) -> dict:
    p = colour_psnr(cloud.rgb, rgb)
    return {"y_psnr": f"{p['y']:.4f}", "u_psnr": f"{p['u']:.4f}", "v_psnr": f"{p['v']:.4f}",
            "yuv_psnr": f"{p['yuv']:.4f}"}


def networks() -> list[tuple[int, int]]:
    """(width, depth) pairs: every --widths × --depths if either is given, else --networks."""
    if FLAGS["widths"].present or FLAGS["depths"].present:
        return list(itertools.product(map(int, FLAGS.widths), map(int, FLAGS.depths)))
    try:
        return [tuple(int(v) for v in n.lower().split("x")) for n in FLAGS.networks]
    except ValueError:
        raise SystemExit(f"error: --networks takes WIDTHxDEPTH pairs such as 32x3, got {FLAGS.networks}")


def sweep_nic(name, cloud, writer: RowWriter):
    iterations = sorted(int(i) for i in FLAGS.iterations)
    levels = [int(v) for v in FLAGS.levels]
    qat_steps = [int(q) for q in FLAGS.qat_steps]
    for (width, depth), omega0, delta_l1 in itertools.product(networks(), map(float, FLAGS.omega0s),
                                                              map(float, FLAGS.delta_l1s)):
        network = dict(cloud=name, codec="nic", width=width, depth=depth, omega0=f"{omega0:g}", lr=f"{FLAGS.lr:g}",
                       delta_l1=f"{delta_l1:g}", raht_step="")
        bases = {q: dict(network, qat_steps=q, qat_lr=f"{FLAGS.qat_lr:g}" if q else "") for q in qat_steps}
        if all(writer.has(**b, iterations=i, levels=lv) for b in bases.values() for i in iterations for lv in levels):
            continue
        print(f"{name}: NIC {width}x{depth} ω0={omega0:g} delta_l1={delta_l1:g}, {iterations[-1]} steps", flush=True)
        config = codec.CodecConfig(
            model=siren.SirenConfig(width=width, depth=depth, omega0=omega0),
            fit=fit.FitConfig(steps=iterations[-1], learning_rate=FLAGS.lr, batch_size=FLAGS.batch,
                              seed=FLAGS.seed, steps_per_call=math.gcd(50, *iterations),
                              qat_learning_rate=FLAGS.qat_lr, delta_l1=delta_l1))
        header = codec.cloud_header(config, cloud.xyz, cloud.colour_bits)
        coords = pointcloud.normalised(cloud.xyz)
        targets = codec.targets_from_rgb(cloud.rgb, cloud.colour_bits)
        t0 = time.perf_counter()
        paused = [0.0]  # time spent coding snapshots is not training time

        def snapshot(step, params):
            if step not in iterations:
                return
            t_snap = time.perf_counter()
            train_s = t_snap - t0 - paused[0]
            for q, base in bases.items():
                qat_config = dataclasses.replace(config.fit, qat_steps=q)
                for lv in levels:
                    if writer.has(**base, iterations=step, levels=lv):
                        continue
                    t = time.perf_counter()
                    coded, steps = codec.quantization_aware(header, params, lv, coords, targets, qat_config,
                                                            progress=False)
                    data = codec.encode_params(header, coded, lv, steps=steps)
                    enc_s = train_s + time.perf_counter() - t
                    t = time.perf_counter()
                    xyz, rgb = codec.decompress_cloud(data, cloud.xyz)
                    dec_s = time.perf_counter() - t
                    writer.add(dict(base, iterations=step, levels=lv, bytes=len(data),
                                    bpp=f"{8 * len(data) / cloud.num_points:.5f}", encode_s=f"{enc_s:.2f}",
                                    decode_s=f"{dec_s:.2f}", **psnr_fields(cloud, rgb)))
            paused[0] += time.perf_counter() - t_snap

        init = siren.init_params(config.model, jax.random.key(FLAGS.seed))
        fit.fit(config.model, init, coords, targets, config.fit, progress=True, callback=snapshot,
                reference=codec.reference_params(header))


def sweep_raht(name, cloud, writer: RowWriter):
    coords = raht.check_coords(cloud.xyz)
    for step in FLAGS.raht_steps:
        if writer.has(cloud=name, codec="raht", width="", depth="", iterations="", levels="", raht_step=step):
            continue
        t = time.perf_counter()
        data, _ = raht.encode_with_reconstruction(coords, cloud.rgb, float(step))
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        rgb = raht.decode(data, coords)
        dec_s = time.perf_counter() - t
        writer.add(dict(cloud=name, codec="raht", raht_step=step, bytes=len(data),
                        bpp=f"{8 * len(data) / cloud.num_points:.5f}", encode_s=f"{enc_s:.2f}",
                        decode_s=f"{dec_s:.2f}", **psnr_fields(cloud, rgb)))


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
        table.append(f"| {label} | " + " | ".join(f"{b:+.1f}%" for b in bds) + f" | {np.nanmean(bds):+.1f}% |")
    return table


def summarize(csv_path: str, out_dir: str, reference_dir: str) -> str:
    """Figures (the paper's Fig. 2 per cloud) and BD-rate tables (its Table 1, plus G-PCC) as markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rd.read_rows(csv_path)
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
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        ax.scatter(bpp, curves["y"][2], s=8, c="0.7", label="NIC operating points")
        ax.plot(curves["y"][0], curves["y"][1], "k-o", ms=3, label="NIC envelope")
        if ours:
            rb = column(ours, "bpp")
            ax.plot(rb, column(ours, "y_psnr"), "b-s", ms=3, label="RAHT (nicjax)")
            for metric in ("yuv", "y"):
                bd = rd.bd_rate(rb, column(ours, f"{metric}_psnr"), *curves[metric][:2])
                averages[metric].append(bd)
            bdp = rd.bd_psnr(rb, column(ours, "y_psnr"), *curves["y"][:2])
            table1.append(f"| {name} | {len(nic)} | {averages['yuv'][-1]:+.1f}% | {averages['y'][-1]:+.1f}% | "
                          f"{bdp:+.2f} dB |")
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
                gpcc_table.append(f"| {name} | {label} | {bd:+.1f}% | {overlap:.0%} |")
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
        table1.append(f"| **average** | | {np.nanmean(averages['yuv']):+.1f}% | {np.nanmean(averages['y']):+.1f}% | |")
    gpcc_table += [f"| **average** ({len(bds)} clouds) | {label} | {np.nanmean(bds):+.1f}% | |"
                   for label, bds in gpcc_bds.items()]
    lines += ["## NIC envelope vs RAHT (Table 1)", ""] + table1 + ["", "## NIC envelope vs G-PCC", ""] + gpcc_table
    lines += ["", "## What each part of the grid adds (BD-rate Y vs RAHT (ours), cumulative)", ""]
    lines += ablation(rows, clouds)
    lines += ["", "## The NIC envelope's points (Y-PSNR)", ""] + envelope_lines
    lines += ["", "Figures: " + ", ".join(f"`rd_{c}.png`" for c in clouds)]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write(text)
    return text


def main(argv):
    del argv
    os.makedirs(FLAGS.out, exist_ok=True)
    csv_path = os.path.join(FLAGS.out, "rd.csv")
    if not FLAGS.summarize_only:
        writer = RowWriter(csv_path)
        for path in FLAGS.clouds:
            cloud = pointcloud.read_ply(path)
            name = cloud_name(path)
            print(f"{name}: {cloud.num_points} points", flush=True)
            sweep_raht(name, cloud, writer)
            sweep_nic(name, cloud, writer)
    print(summarize(csv_path, FLAGS.out, FLAGS.reference_dir))


if __name__ == "__main__":
    app.run(main)

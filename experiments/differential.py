"""Differential weight coding from a meta-learned init: the paper's Fig. 3 and Fig. 4, plus BD-rates.

    python -m experiments.differential --init=runs/meta/<id>.init        # longdress l3, CPU-sized
    python -m experiments.differential --init=... --clouds=l1,l2,l3 --iterations=2000,5000,10000

Arms, all trained for the same steps from the same seed (equal fine-tuning time):
  meta_diff     start from the meta-learned init, code (weights − init)          (the paper's NIC)
  meta_direct   start from the meta-learned init, code the weights themselves
  random_direct start from a random (Sitzmann) init, code the weights themselves (the paper's baseline)
  random_diff   start from the seeded random init, code (weights − init): the decoder regenerates the init
                from the seed in the header (nicjax's default when no init artefact is given)
Writes results/differential/{rd.csv, fig3_histogram.png, fig4_rd.png, <cloud>_<arm>.json, summary.md}; rates from
real bytes. Each arm runs experiments.common.sweep (the codec's own plan, training, coding and decoding).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from absl import flags

from experiments import common
from nicjax import cli, codec, config_flags, configs, inits, rd
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded/longdress_cwi_pcl_{}.ply"
flags.DEFINE_list("clouds", ["l3"], "longdress levels (l1, l2, l3) or PLY paths.")
flags.DEFINE_list("iterations", ["1000", "2000", "4000"], "Fine-tuning snapshots (equal for all arms).")
flags.DEFINE_list("levels", [str(2**k) for k in range(4, 11)], "Quantization levels.")
flags.DEFINE_list("arms", ["meta_diff", "meta_direct", "random_direct", "random_diff"], "Arms to run.")
# --init (required): the meta-learned init, a shipped id or an .init file; it defines the architecture of every
# arm. --lr: the fine-tuning learning rate (the paper's: 1e-5).
CONFIG_FLAGS = ("init", "lr", "batch", "seed")
config_flags.define(only=CONFIG_FLAGS)
common.define_progress()
flags.DEFINE_string("out", "results/differential", "Output folder.")
flags.DEFINE_bool("summarize_only", False, "Only redraw the figures and tables from the CSV.")
flags.adopt_module_key_flags(config_flags)  # --help lists the config and shared flags too
flags.adopt_module_key_flags(common)

ARMS = {  # arm: (start from the meta-learned init?, reference the weights are coded against)
    "meta_diff": (True, "init"),
    "meta_direct": (True, "zeros"),
    "random_direct": (False, "zeros"),
    "random_diff": (False, "seeded"),
}
KEY = ("cloud", "arm", "iterations", "levels")
COLUMNS = list(KEY) + ["bytes", "bpp", "y_psnr", "yuv_psnr"]


def cloud_path(name: str) -> str:
    return _DATA.format(name) if name in ("l1", "l2", "l3") else name


def arm_config(base: configs.CodecConfig, init: inits.Init, arm: str) -> configs.CodecConfig:
    from_meta, reference = ARMS[arm]
    return dataclasses.replace(base, model=init.model, reference=reference, init=FLAGS.init if from_meta else None)


def run_arm(cloud_name, cloud, arm, init, writer: common.RowWriter, hist):
    config = arm_config(config_flags.codec_config(configs.CodecConfig()), init, arm)
    iterations = common.int_list(FLAGS.iterations, "iterations", 1)
    last = max(iterations)

    def key(s: common.Setting) -> dict:
        return dict(cloud=cloud_name, arm=arm, iterations=s.iterations, levels=s.levels)

    def fields(p: common.Point) -> dict:
        return dict(bytes=p.bytes, bpp=f"{p.bpp:.5f}", y_psnr=f"{p.psnr['y']:.4f}", yuv_psnr=f"{p.psnr['yuv']:.4f}")

    def snapshot(step, params):
        if arm == "meta_diff" and step == last:
            hist["finetuned"] = jax.tree_util.tree_map(np.asarray, params)

    common.sweep(codec.cloud_signal(cloud, config), config, writer, key, fields, iterations=iterations,
                 levels=common.int_list(FLAGS.levels, "levels", 2), progress=FLAGS.progress, on_snapshot=snapshot,
                 label=f"{cloud_name}: {arm}, {last} steps")


def plot_histogram(init, finetuned, path):
    import matplotlib.pyplot as plt

    name = "layer_02"  # a hidden layer, as in the paper's Fig. 3
    w = np.asarray(finetuned[name]["kernel"]).ravel()
    d = w - np.asarray(init.params[name]["kernel"]).ravel()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].hist(w, bins=100, color="tab:blue")
    ax[0].set_title(f"{name} fine-tuned weights (std {w.std():.2e})")
    ax[1].hist(d, bins=100, color="tab:orange")
    ax[1].set_title(f"difference from the init (std {d.std():.2e})")
    for a in ax:
        a.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summarize(csv_path, out):
    import matplotlib.pyplot as plt

    rows = rd.read_rows(csv_path)
    lines = ["# Differential coding from a meta-learned init", "",
             f"Init: `{FLAGS.init}`; lr {FLAGS.lr}; snapshots {','.join(FLAGS.iterations)}; rates from real bytes.",
             "BD-rate (Y-PSNR, PCHIP) of each arm's envelope against `random_direct` (negative = fewer bits).", "",
             "| cloud | arm | points | BD-rate Y vs random_direct | BD-PSNR Y |", "| --- | --- | --- | --- | --- |"]
    clouds = sorted({r["cloud"] for r in rows})
    fig, axes = plt.subplots(1, len(clouds), figsize=(6 * len(clouds), 4.5), squeeze=False)
    for ax, cloud in zip(axes[0], clouds):
        curves = {}
        for arm in ARMS:
            sel = [r for r in rows if r["cloud"] == cloud and r["arm"] == arm]
            if not sel:
                continue
            bpp = np.array([float(r["bpp"]) for r in sel])
            y = np.array([float(r["y_psnr"]) for r in sel])
            hull = rd.envelope(bpp, y)
            curves[arm] = (bpp[hull], y[hull], len(sel))
            common.write_compressai_json(
                os.path.join(out, f"{common.safe_name(os.path.splitext(os.path.basename(cloud))[0])}_{arm}.json"),
                f"NIC {arm} (nicjax)",
                f"{cloud}: upper convex hull (Y-PSNR) of {len(sel)} operating points (iterations, levels) of the "
                f"{arm} arm, init {FLAGS.init}; rates from real bytes, colour bits per input point", bpp[hull],
                y[hull], "psnr-y")
            ax.scatter(bpp, y, s=6, alpha=0.35)
            ax.plot(bpp[hull], y[hull], "-o", ms=3, label=arm)
        base = curves.get("random_direct")
        for arm, (b, y, n) in curves.items():
            if base is None:
                break
            bd = rd.bd_rate(base[0], base[1], b, y)
            bdp = common.bd_psnr(base[0], base[1], b, y)
            lines.append(f"| {cloud} | {arm} | {n} | {common.fmt(bd, '+.1f', '%')} | "
                         f"{common.fmt(bdp, '+.2f', ' dB', 'n/a')} |")
        ax.set_xscale("log")
        ax.set_xlabel("bits per point")
        ax.set_ylabel("Y-PSNR (dB)")
        ax.set_title(f"longdress {cloud}: NIC R-D by coding arm")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fig4_rd.png"), dpi=120)
    plt.close(fig)
    text = "\n".join(lines) + "\n\nFigures: `fig3_histogram.png`, `fig4_rd.png`\n"
    text += ("\nR-D curves in CompressAI's JSON format (envelope points; Y-PSNR): `<cloud>_<arm>.json`\n"
             if clouds else "")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    return text


def main(argv):
    del argv
    import matplotlib

    matplotlib.use("Agg")
    if not FLAGS.init:
        raise SystemExit("error: --init (the meta-learned init: shipped id or .init path) is required")
    init = inits.find(FLAGS.init)
    os.makedirs(FLAGS.out, exist_ok=True)
    csv_path = os.path.join(FLAGS.out, "rd.csv")
    if not FLAGS.summarize_only:
        unknown = [a for a in FLAGS.arms if a not in ARMS]
        if unknown:
            raise SystemExit(f"error: unknown arms {unknown}: use some of {', '.join(ARMS)}")
        hist = {}
        with common.RowWriter(csv_path, COLUMNS, KEY, show=COLUMNS) as writer:
            for name in FLAGS.clouds:
                cloud = pointcloud.read_ply(cloud_path(name))
                for arm in FLAGS.arms:
                    run_arm(name, cloud, arm, init, writer, hist)
            if "finetuned" in hist:
                plot_histogram(init, hist["finetuned"], os.path.join(FLAGS.out, "fig3_histogram.png"))
    print(summarize(csv_path, FLAGS.out))


if __name__ == "__main__":
    cli.run(main)

"""Differential weight coding from a meta-learned init: the paper's Fig. 3 and Fig. 4, plus BD-rates.

    python -m experiments.differential --init=runs/meta/<id>.init        # longdress l3, CPU-sized
    python -m experiments.differential --init=... --clouds=l1,l2,l3 --iterations=2000,5000,10000

Arms, all trained for the same steps from the same seed (equal fine-tuning time):
  meta_diff     start from the meta-learned init, code (weights − init)          (the paper's NIC)
  meta_direct   start from the meta-learned init, code the weights themselves
  random_direct start from a random (Sitzmann) init, code the weights themselves (the paper's baseline)
  random_diff   start from the seeded random init, code (weights − init): the decoder regenerates the init
                from the seed in the header (nicjax's default when no init artefact is given)
Writes results/differential/{rd.csv, fig3_histogram.png, fig4_rd.png, summary.md}; rates from real bytes.
"""

from __future__ import annotations

import csv
import os

import jax
import numpy as np
from absl import app, flags

from nicjax import codec, fit, inits, rd, siren
from nicjax.metrics import colour_psnr
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
_DATA = "../shared/data/pointclouds/8iVFB_cwi_codec_decoded/longdress_cwi_pcl_{}.ply"
flags.DEFINE_string("init", None, "The meta-learned init: an id of a shipped init or a path to an .init file.")
flags.DEFINE_list("clouds", ["l3"], "longdress levels (l1, l2, l3) or PLY paths.")
flags.DEFINE_list("iterations", ["1000", "2000", "4000"], "Fine-tuning snapshots (equal for all arms).")
flags.DEFINE_list("levels", [str(2**k) for k in range(4, 11)], "Quantization levels.")
flags.DEFINE_list("arms", ["meta_diff", "meta_direct", "random_direct", "random_diff"], "Arms to run.")
flags.DEFINE_float("lr", fit.FitConfig.learning_rate, "Fine-tuning Adam learning rate (paper: 1e-5).")
flags.DEFINE_integer("batch", fit.FitConfig.batch_size, "Points per step.")
flags.DEFINE_string("out", "results/differential", "Output folder.")
flags.DEFINE_bool("summarize_only", False, "Only redraw the figures and tables from the CSV.")

ARMS = {  # arm: (start from the meta-learned init?, reference the weights are coded against)
    "meta_diff": (True, "init"),
    "meta_direct": (True, "zeros"),
    "random_direct": (False, "zeros"),
    "random_diff": (False, "seeded"),
}
COLUMNS = ["cloud", "arm", "iterations", "levels", "bytes", "bpp", "y_psnr", "yuv_psnr"]


def cloud_path(name: str) -> str:
    return _DATA.format(name) if name in ("l1", "l2", "l3") else name


def run_arm(cloud_name, cloud, arm, init, writer, done, hist):
    from_meta, reference = ARMS[arm]
    iterations = sorted(int(i) for i in FLAGS.iterations)
    levels = [int(v) for v in FLAGS.levels]
    if all((cloud_name, arm, str(i), str(lv)) in done for i in iterations for lv in levels):
        return
    config = codec.CodecConfig(model=init.model, levels=levels[0], reference=reference,
                               init=FLAGS.init if from_meta else None,
                               fit=fit.FitConfig(steps=iterations[-1], learning_rate=FLAGS.lr,
                                                 batch_size=FLAGS.batch, steps_per_call=50))
    signal = codec.cloud_signal(cloud, config)
    header = codec.signal_header(signal, config)
    start = init.params if from_meta else siren.init_params(init.model, jax.random.key(config.fit.seed))

    def snapshot(step, params):
        if step not in iterations:
            return
        if arm == "meta_diff" and step == iterations[-1]:
            hist["finetuned"] = jax.tree_util.tree_map(np.asarray, params)
        for lv in levels:
            if (cloud_name, arm, str(step), str(lv)) in done:
                continue
            data = codec.encode_params(header, params, lv)
            _, rgb = codec.decompress_cloud(data, cloud.xyz, init_search=(FLAGS.init,) if from_meta else ())
            p = colour_psnr(cloud.rgb, rgb)
            row = dict(cloud=cloud_name, arm=arm, iterations=step, levels=lv, bytes=len(data),
                       bpp=f"{8 * len(data) / cloud.num_points:.5f}", y_psnr=f"{p['y']:.4f}",
                       yuv_psnr=f"{p['yuv']:.4f}")
            writer.writerow(row)
            print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    print(f"{cloud_name}: {arm}", flush=True)
    fit.fit(init.model, start, signal.coords, codec.targets_for(signal), config.fit, progress=True,
            callback=snapshot)


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
            ax.scatter(bpp, y, s=6, alpha=0.35)
            ax.plot(bpp[hull], y[hull], "-o", ms=3, label=arm)
        base = curves.get("random_direct")
        for arm, (b, y, n) in curves.items():
            if base is None:
                break
            lines.append(f"| {cloud} | {arm} | {n} | {rd.bd_rate(base[0], base[1], b, y):+.1f}% | "
                         f"{rd.bd_psnr(base[0], base[1], b, y):+.2f} dB |")
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
        done = {(r["cloud"], r["arm"], r["iterations"], r["levels"]) for r in rd.read_rows(csv_path)}
        new = not os.path.exists(csv_path)
        with open(csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            hist = {}
            for name in FLAGS.clouds:
                cloud = pointcloud.read_ply(cloud_path(name))
                for arm in FLAGS.arms:
                    run_arm(name, cloud, arm, init, writer, done, hist)
                    f.flush()
            if "finetuned" in hist:
                plot_histogram(init, hist["finetuned"], os.path.join(FLAGS.out, "fig3_histogram.png"))
    print(summarize(csv_path, FLAGS.out))


if __name__ == "__main__":
    app.run(main)

"""Re-code the latents of existing latent files with and without same-level contexts: the same integers, two
payload layouts, sizes from the bytes.

    python -m experiments.recode_contexts --files=a.nic,b.nic --geometries=a.ply,b.ply

For each file: its bits per point coded one array per level (bit 6 clear) and context-coded (bit 6 set), the
difference as a share of the file, both decodes checked to give back the same symbols, and the container's
encode/decode times of the context-coded layout against the plain one (one run each, same process).
"""

import dataclasses
import time

import numpy as np
from absl import app, flags

from nicjax import container, representations
from nicjax.representations import latent
from nicjax.signals import pointcloud

FLAGS = flags.FLAGS
flags.DEFINE_list("files", [], "Latent .nic files to re-code.")
flags.DEFINE_list("geometries", [], "Their clouds (PLY), one per file, in the same order.")

REGISTRY = representations.REGISTRY


def layouts(data: bytes, xyz: np.ndarray) -> dict:
    """{contexts flag: (file bytes, encode s, decode s)} for one latent file, its symbols unchanged."""
    header, tensors = container.decode(data, REGISTRY, xyz)
    if header.representation != latent.LATENT.id:
        raise ValueError("not a latent file")
    out = {}
    for contexts in (False, True):
        h = dataclasses.replace(header, model=dataclasses.replace(header.model, contexts=contexts))
        t0 = time.perf_counter()
        coded = container.encode(h, tensors, REGISTRY, xyz)
        t1 = time.perf_counter()
        _, back = container.decode(coded, REGISTRY, xyz)
        t2 = time.perf_counter()
        if not all(np.array_equal(a.symbols, b.symbols) for a, b in zip(tensors, back)):
            raise AssertionError("a layout did not decode to the file's symbols")
        out[contexts] = (coded, t1 - t0, t2 - t1)
    return out


def main(argv):
    del argv
    if not FLAGS.files or len(FLAGS.files) != len(FLAGS.geometries):
        raise app.UsageError("give --files and as many --geometries")
    print("| file | points | one array per level: bpp | context-coded: bpp | change | container encode / decode s "
          "(plain → contexts) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path, ply in zip(FLAGS.files, FLAGS.geometries):
        xyz = pointcloud.read_ply(ply).xyz
        with open(path, "rb") as f:
            result = layouts(f.read(), xyz)
        (plain, pe, pd), (ctx, ce, cd) = result[False], result[True]
        bpp = lambda b: 8 * len(b) / len(xyz)
        print(f"| {path} | {len(xyz)} | {bpp(plain):.4f} | {bpp(ctx):.4f} | {100 * (len(ctx) / len(plain) - 1):+.1f}% "
              f"| {pe:.2f} / {pd:.2f} → {ce:.2f} / {cd:.2f} |", flush=True)


if __name__ == "__main__":
    app.run(main)

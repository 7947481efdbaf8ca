"""What the experiments share: the one operating-point loop, the resumable CSV writer, flags and summary helpers.

The operating-point loop, `sweep(signal, config, writer, key, fields, iterations=..., levels=..., qat_steps=...)`:

    codec.plan(signal, config)                        once: model, header, reference, start, fit config, targets
    codec.train(..., callback)                        once, to the largest of `iterations`; at each snapshot:
      for each setting (levels × QAT steps)           rows already in the CSV are skipped
        codec.code(signal, plan, params, levels)      QAT for that many steps, then the file's bytes
        codec.decode(bytes, DecodeContext)            the real decoder, from the bytes alone (+ geometry)
        measure                                       bytes and bits per point/pixel from the data, PSNR from
                                                      the decoded values
        writer.add(key(setting) | fields(point))      one CSV row, flushed

A network none of whose rows is missing is not trained at all, and training stops at the last snapshot that
still has a missing row (the schedule is still that of the largest iteration, so the rows are those a full run
makes). Each experiment keeps its own CSV columns: it says how a setting maps to its row key (`key`) and how a
measured point maps to its other columns (`fields`).

`RowWriter`: appends rows to a CSV, flushing each, and knows which rows are already there (one row-key rule:
the row's key columns as strings, a missing column read as ""), so every experiment resumes where it stopped.
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
from typing import Callable, Iterable

import numpy as np
from absl import flags

from nicjax import codec, config_flags, container, rd
from nicjax.configs import CodecConfig
from nicjax.metrics import colour_psnr
from nicjax.signals import Signal, color, image, pointcloud

FLAGS = flags.FLAGS

def define_progress() -> None:
    flags.DEFINE_bool("progress", sys.stderr.isatty(), "Progress bars on stderr (default: on when stderr is a "
                      "terminal).")


def define_networks(default: list[str], help_extra: str = "") -> None:
    flags.DEFINE_list("networks", default, "SIREN networks to sweep, WIDTHxDEPTH (depth = sine layers)."
                      + (" " + help_extra if help_extra else ""))


def parse_networks(values: Iterable[str]) -> list[tuple[int, int]]:
    """[(width, depth)] from WIDTHxDEPTH strings; SystemExit naming the bad one."""
    out = []
    for v in values:
        try:
            w, d = (int(x) for x in v.lower().split("x"))
        except ValueError:
            raise SystemExit(f"error: --networks takes WIDTHxDEPTH pairs such as 32x3, got {v!r}")
        if w < 1 or d < 1:
            raise SystemExit(f"error: --networks: width and depth must be positive, got {v!r}")
        out.append((w, d))
    return out


def int_list(values: Iterable[str], flag: str, minimum: int = 0) -> list[int]:
    try:
        out = [int(v) for v in values]
    except ValueError:
        raise SystemExit(f"error: --{flag} takes integers, got {list(values)}")
    if any(v < minimum for v in out):
        raise SystemExit(f"error: --{flag} values must be at least {minimum}, got {out}")
    return out


# --- the resumable CSV ------------------------------------------------------------------------------------------

def row_key(row: dict, key: tuple) -> tuple:
    """The one row-key rule: the key columns as strings; a column the row lacks reads as ""."""
    return tuple(str(row.get(k, "")) for k in key)


def read_rows(path: str, upgrade: Callable[[dict], dict] | None = None) -> list[dict]:
    """The rows of a CSV ([] if there is none), each passed through `upgrade` (filling columns an older version
    of the experiment did not write)."""
    rows = rd.read_rows(path)
    return [upgrade(r) for r in rows] if upgrade else rows


class RowWriter:
    """Appends rows to a CSV with `columns`, flushing each one, and skips rows whose key is already there.

    An existing CSV must have `columns`, or a subset of them when `upgrade` is given: then it was written by an
    older version of the experiment, and it is rewritten once (atomically) with `upgrade` filling the new
    columns of its rows. Anything else is refused (SystemExit): use another output folder.
    """

    def __init__(self, path: str, columns: list[str], key: tuple, *, upgrade: Callable[[dict], dict] | None = None,
                 show: tuple = ()):
        self.path, self.columns, self.key, self.show = path, list(columns), tuple(key), tuple(show)
        self.added = 0
        exists = os.path.exists(path)
        if exists:
            with open(path, newline="") as f:
                found = next(csv.reader(f), [])
            if found != self.columns:
                if upgrade is None or not set(found) < set(self.columns) or not set(self.key) <= set(self.columns):
                    raise SystemExit(f"error: {path} has columns {found}, expected {self.columns}; use another "
                                     "output folder")
                rows = read_rows(path, upgrade)
                buf = io.StringIO()
                w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\r\n")
                w.writeheader()
                w.writerows({k: r.get(k, "") for k in self.columns} for r in rows)
                pointcloud.atomic_write(path, lambda f: f.write(buf.getvalue().encode()))
                print(f"{path}: added the columns {', '.join(c for c in self.columns if c not in found)} to its "
                      f"{len(rows)} rows", flush=True)
        self.done = {row_key(r, self.key) for r in read_rows(path, upgrade)}
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.file = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.columns)
        if not exists:
            self.writer.writeheader()
            self.file.flush()

    def has(self, **key) -> bool:
        return row_key(key, self.key) in self.done

    def add(self, row: dict) -> None:
        row = {k: row.get(k, "") for k in self.columns}
        self.writer.writerow(row)
        self.file.flush()
        self.done.add(row_key(row, self.key))
        self.added += 1
        if self.show:
            print("  " + "  ".join(f"{k}={row[k]}" for k in self.show if row.get(k, "") != ""), flush=True)

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- the operating-point loop -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Setting:
    """One operating point of a trained network: its snapshot, quantization levels and QAT steps."""

    iterations: int
    levels: int
    qat_steps: int = 0


@dataclasses.dataclass
class Point:
    """A measured operating point: the file's bytes, what the real decoder made of them, and their cost."""

    setting: Setting
    data: bytes
    decoded: codec.Decoded
    psnr: dict  # clouds: metrics.colour_psnr's y, u, v, yuv, rgb; images: {"rgb": over all pixels and channels}
    bpp: float  # 8 × bytes / points (clouds) or pixels (images)
    train_s: float  # training up to this snapshot (time spent coding earlier snapshots excluded)
    code_s: float  # QAT and writing the bytes
    decode_s: float

    @property
    def bytes(self) -> int:
        return len(self.data)

    @property
    def encode_s(self) -> float:
        return self.train_s + self.code_s


def measure(signal: Signal, decoded: codec.Decoded) -> dict:
    """PSNR of the decoded values against the signal's colours, peak 2^bits − 1."""
    peak = color.peak(signal.colour_bits)
    if signal.info.kind == container.SIGNAL_POINTCLOUD:
        return colour_psnr(signal.colours, decoded.values, peak)
    pixels = signal.colours.reshape(decoded.values.shape)
    return {"rgb": image.image_psnr(pixels, decoded.values, peak)}


class _Done(Exception):
    """Raised from the training callback once no snapshot still to come has a missing row."""


def sweep(signal: Signal, config: CodecConfig, writer: RowWriter, key: Callable[[Setting], dict],
          fields: Callable[[Point], dict], *, iterations: Iterable[int], levels: Iterable[int],
          qat_steps: Iterable[int] = (0,), progress: bool = False, keep_better: bool = False,
          on_snapshot: Callable | None = None, label: str | None = None) -> list[Point]:
    """Trains `config`'s network on `signal` once and measures every setting of iterations × QAT steps × levels
    whose row `writer` lacks; each becomes the row key(setting) | fields(point). Returns the points measured.

    config.fit.steps is replaced by max(iterations) (each snapshot is a point of that one run) and its
    qat_steps by each of `qat_steps` in turn. `keep_better` (codec.code): code the QAT weights only if they decode
    better than the plain ones; off by default, so a QAT row measures QAT itself (the envelope picks the better).
    `on_snapshot(step, params)` is called at each snapshot, before coding. `label` is printed before training
    (nothing is printed for a network whose rows are all there).
    """
    iterations = sorted(set(int(i) for i in iterations))
    levels = [int(v) for v in levels]
    qat_steps = [int(q) for q in qat_steps]
    if not iterations or iterations[0] < 1:
        raise SystemExit(f"error: --iterations must be positive, got {iterations}")
    grid = [Setting(i, lv, q) for i in iterations for q in qat_steps for lv in levels]
    todo = [s for s in grid if not writer.has(**key(s))]
    if not todo:
        return []
    if label:
        print(label, flush=True)
    # snapshots land between jit-compiled chunks: make every iteration a chunk boundary (the minibatches depend on
    # the seed and step index only, so the chunking does not change the result)
    fit = dataclasses.replace(config.fit, steps=iterations[-1],
                              steps_per_call=math.gcd(config.fit.steps_per_call, *iterations))
    config = dataclasses.replace(config, fit=fit)
    plan = codec.plan(signal, config)
    context = codec.DecodeContext(geometry=signal.geometry, init_search=codec.search_path(config))
    plans = {q: dataclasses.replace(plan, fit=dataclasses.replace(plan.fit, qat_steps=q)) for q in qat_steps}
    last = max(s.iterations for s in todo)
    points: list[Point] = []
    t0 = time.perf_counter()
    paused = 0.0  # time spent coding snapshots is not training time

    def snapshot(step, params):
        nonlocal paused
        if step not in iterations:
            return
        t_snap = time.perf_counter()
        train_s = t_snap - t0 - paused
        if on_snapshot is not None:
            on_snapshot(step, params)
        for s in (s for s in todo if s.iterations == step):
            if writer.has(**key(s)):
                continue
            t = time.perf_counter()
            data = codec.code(signal, plans[s.qat_steps], params, s.levels, keep_better=keep_better,
                              progress=progress)
            t_code = time.perf_counter() - t
            t = time.perf_counter()
            decoded = codec.decode(data, context)
            t_decode = time.perf_counter() - t
            point = Point(s, data, decoded, measure(signal, decoded), 8.0 * len(data) / len(signal.inputs),
                          train_s, t_code, t_decode)
            writer.add({**key(s), **fields(point)})
            points.append(point)
        paused += time.perf_counter() - t_snap
        if step >= last:
            raise _Done

    try:
        codec.train(signal, plan, progress=progress, callback=snapshot)
    except _Done:
        pass
    missing = [s for s in todo if not writer.has(**key(s))]
    if missing:
        raise RuntimeError(f"no snapshot at iterations {sorted({s.iterations for s in missing})}")
    return points


# --- summaries ---------------------------------------------------------------------------------------------------

NO_OVERLAP = "n/a (curves do not overlap)"


def fmt(x, spec: str, suffix: str = "", missing: str = NO_OVERLAP) -> str:
    """format(x, spec) + suffix, or `missing` for NaN/None (a BD figure of curves that do not overlap)."""
    if x is None or (isinstance(x, (float, np.floating)) and not math.isfinite(x)):
        return missing
    return format(x, spec) + suffix


def mean(values) -> float:
    """Mean of the finite values; NaN (no warning) when there are none."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def write_compressai_json(path: str, name: str, description: str, bpp, psnr, metric: str) -> None:
    """An R-D curve in CompressAI's results format: {"name", "description", "results": {"bpp", metric}}, with
    the points sorted by rate. metric: "psnr-y" for clouds, "psnr-rgb" for images."""
    order = np.argsort(np.asarray(bpp, np.float64), kind="stable")
    doc = {"name": name, "description": description,
           "results": {"bpp": [float(bpp[i]) for i in order], metric: [float(psnr[i]) for i in order]}}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


def safe_name(text: str) -> str:
    """A file-name part from a cloud, image-set or codec name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """rd.bd_psnr, or NaN when the two curves share no rate range (there is nothing to integrate over)."""
    ra, rt = np.asarray(rate_anchor, np.float64), np.asarray(rate_test, np.float64)
    ra, rt = ra[np.isfinite(ra) & (ra > 0)], rt[np.isfinite(rt) & (rt > 0)]
    if len(ra) < 2 or len(rt) < 2 or min(ra.max(), rt.max()) <= max(ra.min(), rt.min()):
        return float("nan")
    return rd.bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test)

"""Rate-distortion bookkeeping: envelopes of operating points, BD-rate/BD-PSNR, reference curves."""

from __future__ import annotations

import csv
import os
import warnings

import numpy as np


def envelope(rates, psnrs) -> np.ndarray:
    """Indices of the upper convex hull of (rate, PSNR) points: the best any mix of operating points can do.

    Sorted by rate; every point on it has a higher PSNR than all cheaper ones (a Pareto front), and the front is
    concave (a point below the chord of its neighbours is dominated by time-sharing them).
    """
    rates = np.asarray(rates, np.float64)
    psnrs = np.asarray(psnrs, np.float64)
    order = np.lexsort((-psnrs, rates))
    hull: list[int] = []
    for i in order:
        if hull and psnrs[i] <= psnrs[hull[-1]]:
            continue  # dominated: no better than a cheaper point
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or below the chord a -> i
            cross = (rates[b] - rates[a]) * (psnrs[i] - psnrs[a]) - (psnrs[b] - psnrs[a]) * (rates[i] - rates[a])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.asarray(hull, dtype=int)


def overlap_fraction(psnr_a, psnr_b) -> float:
    """Overlap of the two PSNR ranges as a fraction of the smaller one."""
    lo = max(np.min(psnr_a), np.min(psnr_b))
    hi = min(np.max(psnr_a), np.max(psnr_b))
    span = min(np.ptp(psnr_a), np.ptp(psnr_b))
    return max(0.0, hi - lo) / span if span > 0 else 0.0


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test, min_overlap: float = 0.5) -> float:
    """BD-rate (%) of test against anchor, PCHIP over the overlapping PSNR range (bjontegaard package).

    Negative: the test codec needs fewer bits for the same PSNR. NaN when the curves do not overlap; a
    warning when the overlap is below `min_overlap` of the smaller range.
    """
    import bjontegaard

    ra, pa = _monotone(rate_anchor, psnr_anchor)
    rt, pt = _monotone(rate_test, psnr_test)
    if len(ra) < 2 or len(rt) < 2 or overlap_fraction(pa, pt) == 0:
        return float("nan")
    if overlap_fraction(pa, pt) < min_overlap:
        warnings.warn(f"BD-rate over a small PSNR overlap ({overlap_fraction(pa, pt):.0%} of the smaller range)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bjontegaard.bd_rate(ra, pa, rt, pt, method="pchip", require_matching_points=False,
                                         min_overlap=0.0))


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    import bjontegaard

    ra, pa = _monotone(rate_anchor, psnr_anchor)
    rt, pt = _monotone(rate_test, psnr_test)
    if len(ra) < 2 or len(rt) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bjontegaard.bd_psnr(ra, pa, rt, pt, method="pchip", require_matching_points=False,
                                         min_overlap=0.0))


def _monotone(rates, psnrs):
    """Sorted by rate, keeping only points that improve PSNR (PCHIP needs a monotone curve)."""
    rates = np.asarray(rates, np.float64)
    psnrs = np.asarray(psnrs, np.float64)
    keep = np.isfinite(rates) & np.isfinite(psnrs) & (rates > 0)
    rates, psnrs = rates[keep], psnrs[keep]
    order = np.argsort(rates, kind="stable")
    out_r, out_p = [], []
    for r, p in zip(rates[order], psnrs[order]):
        if not out_p or p > out_p[-1]:
            if out_r and r == out_r[-1]:
                out_p[-1] = p
            else:
                out_r.append(r)
                out_p.append(p)
    return np.asarray(out_r), np.asarray(out_p)


def read_rows(path: str) -> list[dict]:
    """The rows of an R-D CSV (what a resumable experiment has already measured); [] if there is none yet."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_gpcc_reference(path: str) -> dict:
    """{mode: {"bpp": [...], "y": [...], "u": [...], "v": [...], "yuv": [...]}} from a shared/reference/gpcc TSV."""
    out: dict = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            d = out.setdefault(row["mode"], {"bpp": [], "y": [], "u": [], "v": [], "yuv": []})
            y, u, v = float(row["ypsnr"]), float(row["cbpsnr"]), float(row["crpsnr"])
            d["bpp"].append(float(row["colour_bpp"]))
            d["y"].append(y)
            d["u"].append(u)
            d["v"].append(v)
            d["yuv"].append((6 * y + u + v) / 8)
    return {mode: {k: np.asarray(v) for k, v in d.items()} for mode, d in out.items()}

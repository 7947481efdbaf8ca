"""Rate control: code a signal at a target number of bits per point (or pixel), from the file's real bytes, or at
a target quality (PSNR of the decoded file).

    compress_to_bpp(signal, config, target_bpp) -> RateResult
    compress_to_psnr(signal, config, target_db) -> QualityResult   (the network given; the levels bisected on the
                                                                    PSNR of each decoded trial file)

1. The network (unless the caller fixed it, choose_network=False): the SIREN of `LADDER` whose bits per parameter
   at the target, target_bpp · points / parameters, is closest in log to `BITS_PER_PARAMETER` (6.3). That is
   where results/rd/rd.csv's envelopes sit: on all three longdress clouds the best file at a given rate comes
   from a network quantized to 64-128 levels (5.3-6.3 bits per parameter), and a network moves onto the envelope
   when the one below it would need more than ~7. ω0 and everything else come from the
   config.
2. Train once (codec.plan + codec.train), then bisect the integer number of levels (4..4096) on the real bytes
   of codec.write: the largest level count whose file is not over the target, or the next one up where it is
   closer and at most 5% over. Bytes grow with the levels (about P · log2(L) bits for P parameters).
3. With config.fit.qat_steps > 0, quantization-aware fine-tuning at the chosen levels (codec.code, keeping the
   tuned weights only if they decode better). QAT trains at fixed steps, so the rate barely moves, but it can:
   the bytes are measured again, and if they ended more than 5% over the target the file without QAT is kept.
4. A target out of reach (under the smallest network at 4 levels, over the largest at 4096; or under/over the
   fixed network's) is coded at the nearest end and reported: RateResult.reached is False, .note says why.
"""

from __future__ import annotations

import dataclasses
import math
import time


from nicjax import codec, quantize as quant
from nicjax.configs import CodecConfig
from nicjax.metrics import colour_psnr
from nicjax.signals import Signal, color, image as imaging

# SIREN sizes (width, depth), by parameter count (3 inputs, 3 outputs: 243 … 66,563). 12x2 … 64x5 were measured
# in results/rd (12x2, 16x3, 20x3 on l1 only); 96x5 and 128x5 extend the ladder upwards by the same rule, beyond
# the measured grid, so that a dense cloud at a high rate gets a network that can spend the bits.
LADDER = ((12, 2), (16, 2), (16, 3), (20, 3), (24, 3), (32, 3), (48, 3), (48, 5), (64, 5), (96, 5), (128, 5))
# The bits per parameter the rule aims at: the median over results/rd/rd.csv's plain rows at 128 levels (6.06 to
# 8.26, median 6.31; 64 levels: median 5.30).
BITS_PER_PARAMETER = 6.3
TOLERANCE = 0.05  # a file may end at most this far over the target
MIN_LEVELS, MAX_LEVELS = 1 << quant.MIN_LOG2_LEVELS, 1 << quant.MAX_LOG2_LEVELS


@dataclasses.dataclass
class RateResult:
    data: bytes
    target_bpp: float
    points: int  # points (or pixels) the rate is counted over
    model: object  # the representation's config (SirenConfig: width, depth, omega0), as coded
    levels: int
    reached: bool  # the file is within ±TOLERANCE of the target
    note: str  # "" when reached; else one line saying why not and what was coded instead
    qat: str  # "off", "kept" (fine-tuned weights coded), "not better" (keep_better kept the plain ones),
    #           "over target" (the fine-tuned file was over the target: the plain one was coded)
    trials: dict  # levels -> bytes of every file the search wrote (before QAT)
    seconds: dict  # "fit", "search", "qat", "encode" (all of it)

    @property
    def bpp(self) -> float:
        return 8.0 * len(self.data) / self.points

    @property
    def target_bytes(self) -> float:
        return self.target_bpp * self.points / 8.0


def num_params(model_config, in_dim: int, out_dim: int) -> int:
    return dataclasses.replace(model_config, in_dim=in_dim, out_dim=out_dim).num_params()


def network_for(target_bits: float, model_config, in_dim: int = 3, out_dim: int = 3,
                   ladder=LADDER, bits_per_parameter: float = BITS_PER_PARAMETER):
    """The ladder's network whose bits per parameter at `target_bits` is closest in log to `bits_per_parameter`
    (ω0 and the rest from `model_config`)."""
    if not target_bits > 0:
        raise ValueError(f"the target must be positive, got {target_bits} bits")
    sizes = [dataclasses.replace(model_config, width=w, depth=d) for w, d in ladder]
    return min(sizes, key=lambda m: abs(math.log(target_bits / (num_params(m, in_dim, out_dim) * bits_per_parameter))))


def search_levels(size, target_bytes: float, lo: int = MIN_LEVELS, hi: int = MAX_LEVELS,
                  tolerance: float = TOLERANCE):
    """(levels, bytes, trials): bisection over integer levels in [lo, hi] on `size(levels)` (the real byte count,
    non-decreasing in levels): the largest level count whose size is ≤ target_bytes, or the next one up if it is
    closer and ≤ (1 + tolerance)·target_bytes; `lo` if even it is over, `hi` if even it is under. `trials`:
    levels -> bytes of every call."""
    trials = {}

    def at(levels):
        if levels not in trials:
            trials[levels] = int(size(levels))
        return trials[levels]

    if at(lo) > target_bytes:
        return lo, trials[lo], trials
    if at(hi) <= target_bytes:
        return hi, trials[hi], trials
    while hi - lo > 1:  # at(lo) ≤ target < at(hi): 12 halvings of 4..4096
        mid = (lo + hi) // 2
        if at(mid) <= target_bytes:
            lo = mid
        else:
            hi = mid
    if trials[hi] <= (1 + tolerance) * target_bytes and trials[hi] - target_bytes < target_bytes - trials[lo]:
        lo = hi
    return lo, trials[lo], trials


def check_target(target_bpp: float) -> float:
    target_bpp = float(target_bpp)
    if not (target_bpp > 0 and math.isfinite(target_bpp)):
        raise ValueError(f"--bpp must be a positive number of bits per point, got {target_bpp:g}")
    return target_bpp


def _within(nbytes: int, target_bytes: float, tolerance: float) -> bool:
    return abs(nbytes - target_bytes) <= tolerance * target_bytes


def compress_to_bpp(signal: Signal, config: CodecConfig, target_bpp: float, *, choose_network: bool = True,
                    progress: bool = True, callback=None, tolerance: float = TOLERANCE) -> RateResult:
    """Codes `signal` at `target_bpp` bits per point/pixel (see the module docstring). `choose_network=False`
    keeps config.model (or the --init artefact's network, which always stays); config.levels is ignored."""
    t0 = time.perf_counter()
    target_bpp = check_target(target_bpp)
    if config.representation != "siren":
        raise ValueError(f"rate control is built for the SIREN only, not {config.representation!r} (whose rate "
                         "FitConfig.rate_lambda sets)")
    points = int(signal.inputs.shape[0])
    target_bytes = target_bpp * points / 8.0
    if choose_network and not config.init:
        model = network_for(8.0 * target_bytes, config.model, signal.in_dim, signal.channels)
        config = dataclasses.replace(config, model=model)
    p = codec.plan(signal, config)
    params, _ = codec.train(signal, p, progress=progress, callback=callback)
    t_fit = time.perf_counter()
    levels, nbytes, trials = search_levels(lambda n: len(codec.write(p.header, params, p.reference, n)),
                                           target_bytes, tolerance=tolerance)
    data = codec.write(p.header, params, p.reference, levels)
    t_search = time.perf_counter()
    qat = "off"
    if config.fit.qat_steps > 0:
        tuned = codec.code(signal, p, params, levels, progress=progress)  # keep_better: may return the plain file
        if tuned == data:
            qat = "not better"
        elif len(tuned) <= (1 + tolerance) * target_bytes or len(tuned) <= len(data):
            data, qat = tuned, "kept"
        else:
            qat = "over target"
    t_end = time.perf_counter()
    m = p.model.config
    net = f"{m.width}x{m.depth}" if hasattr(m, "width") else p.model.representation.name
    reached = _within(len(data), target_bytes, tolerance)
    note = ""
    if not reached:
        bpp = 8.0 * len(data) / points
        fixed = "" if choose_network and not config.init else " (network fixed by the caller)"
        if len(data) > target_bytes:
            note = (f"target {target_bpp:g} bpp is below what the {net} network{fixed} reaches at {levels} levels: "
                    f"coded at {bpp:.4g} bpp")
        else:
            note = (f"target {target_bpp:g} bpp is above what the {net} network{fixed} reaches at {levels} levels: "
                    f"coded at {bpp:.4g} bpp")
    return RateResult(data=data, target_bpp=target_bpp, points=points, model=m, levels=levels, reached=reached,
                      note=note, qat=qat, trials=trials,
                      seconds={"fit": t_fit - t0, "search": t_search - t_fit, "qat": t_end - t_search,
                               "encode": t_end - t0})


def _cloud_result(signal: Signal, config: CodecConfig, data: bytes, fit_s: float, t0: float) -> codec.CloudResult:
    """The CloudResult of a file coded from `signal`, decoded from its bytes as the decoder will."""
    t_enc = time.perf_counter()
    decoded = codec.decode(data, codec.DecodeContext(geometry=signal.geometry, init_search=codec.search_path(config)))
    t_dec = time.perf_counter()
    return codec.CloudResult(data=data, xyz=signal.geometry, rgb=signal.colours, decoded_rgb=decoded.values,
                             psnr=colour_psnr(signal.colours, decoded.values, color.peak(signal.colour_bits)),
                             seconds={"fit": fit_s, "encode": t_enc - t0, "decode": t_dec - t_enc})


def _image_result(signal: Signal, config: CodecConfig, data: bytes, seconds: dict) -> codec.ImageResult:
    pixels = signal.colours.reshape(signal.info.height, signal.info.width, signal.channels)
    t_enc = time.perf_counter()
    decoded = codec.decompress_image(data, init_search=codec.search_path(config))
    header = codec.read_header(data)
    return codec.ImageResult(data=data, pixels=pixels, decoded=decoded, header=header,
                             seconds=dict(seconds, decode=time.perf_counter() - t_enc),
                             psnr=imaging.image_psnr(pixels, decoded, color.peak(signal.colour_bits)))


def compress_cloud_to_bpp(cloud, config: CodecConfig, target_bpp: float, *, choose_network: bool = True,
                          progress: bool = True):
    """(codec.CloudResult, RateResult): a cloud coded at `target_bpp`, decoded from its bytes as the decoder will."""
    t0 = time.perf_counter()
    signal = codec.cloud_signal(cloud, config)
    rate = compress_to_bpp(signal, config, target_bpp, choose_network=choose_network, progress=progress)
    return _cloud_result(signal, config, rate.data, rate.seconds["fit"], t0), rate


def compress_image_to_bpp(pixels, config: CodecConfig, target_bpp: float, *, choose_network: bool = True,
                          progress: bool = True):
    """(codec.ImageResult, RateResult): an image coded at `target_bpp` bits per pixel."""
    signal = codec.image_signal(pixels, config)
    rate = compress_to_bpp(signal, config, target_bpp, choose_network=choose_network, progress=progress)
    return _image_result(signal, config, rate.data, rate.seconds), rate


# --- a quality target ------------------------------------------------------------------------------------------

@dataclasses.dataclass
class QualityResult:
    data: bytes
    target_db: float
    psnr_db: float  # what the decoder's output reaches: Y-PSNR for clouds, RGB PSNR for images
    metric: str  # "Y" or "RGB"
    model: object
    levels: int
    reached: bool  # psnr_db >= target_db
    note: str
    trials: dict  # levels -> PSNR (dB) of every file the search decoded
    seconds: dict  # "fit", "search", "encode"


def check_psnr_target(target_db: float) -> float:
    target_db = float(target_db)
    if not (0 < target_db < 200):
        raise ValueError(f"--psnr must be a PSNR in dB between 0 and 200, got {target_db:g}")
    return target_db


def decoded_psnr(signal: Signal, data: bytes, init_search: tuple = ()) -> float:
    """What the decoder makes of `data`, against the signal: Y-PSNR (clouds) or RGB PSNR (images), in dB."""
    decoded = codec.decode(data, codec.DecodeContext(geometry=signal.geometry, init_search=init_search))
    peak = color.peak(signal.colour_bits)
    if signal.geometry is not None:
        return float(colour_psnr(signal.colours, decoded.values, peak)["y"])
    return float(imaging.image_psnr(signal.colours.reshape(decoded.values.shape), decoded.values, peak))


def search_levels_for_quality(quality, target_db: float, lo: int = MIN_LEVELS, hi: int = MAX_LEVELS):
    """(levels, psnr, trials): the fewest integer levels in [lo, hi] whose `quality(levels)` (the decoded PSNR,
    non-decreasing in levels up to rounding) reaches target_db, by bisection; `hi` if none does."""
    trials = {}

    def at(levels):
        if levels not in trials:
            trials[levels] = float(quality(levels))
        return trials[levels]

    if at(lo) >= target_db:
        return lo, trials[lo], trials
    if at(hi) < target_db:
        return hi, trials[hi], trials
    while hi - lo > 1:  # at(lo) < target <= at(hi)
        mid = (lo + hi) // 2
        if at(mid) >= target_db:
            hi = mid
        else:
            lo = mid
    return hi, trials[hi], trials


def compress_to_psnr(signal: Signal, config: CodecConfig, target_db: float, *, progress: bool = True,
                     callback=None) -> QualityResult:
    """Codes `signal` with config's network, trained once, at the fewest quantization levels (4..4096) whose decoded
    file reaches `target_db` (Y-PSNR for clouds, RGB PSNR for images; every trial is decoded from its bytes). The
    network is the caller's (config.model, or the --init artefact's): no rule picks one for a quality target. A
    target the network does not reach at 4096 levels is coded there and reported (reached False, a note)."""
    t0 = time.perf_counter()
    target_db = check_psnr_target(target_db)
    if config.representation != "siren":
        raise ValueError(f"rate control is built for the SIREN only, not {config.representation!r} (whose rate "
                         "FitConfig.rate_lambda sets)")
    p = codec.plan(signal, config)
    params, _ = codec.train(signal, p, progress=progress, callback=callback)
    t_fit = time.perf_counter()
    search = codec.search_path(config)
    levels, psnr, trials = search_levels_for_quality(
        lambda n: decoded_psnr(signal, codec.write(p.header, params, p.reference, n), search), target_db)
    data = codec.write(p.header, params, p.reference, levels)
    t_end = time.perf_counter()
    m = p.model.config
    metric = "Y" if signal.geometry is not None else "RGB"
    note = ""
    if psnr < target_db:
        note = (f"target {target_db:g} dB is above what the {m.width}x{m.depth} network reaches after "
                f"{config.fit.steps} steps ({psnr:.2f} dB at {levels} levels): coded there; try a larger network "
                "or more steps")
    return QualityResult(data=data, target_db=target_db, psnr_db=psnr, metric=metric, model=m, levels=levels,
                         reached=psnr >= target_db, note=note, trials=trials,
                         seconds={"fit": t_fit - t0, "search": t_end - t_fit, "encode": t_end - t0})


def compress_cloud_to_psnr(cloud, config: CodecConfig, target_db: float, *, progress: bool = True):
    """(codec.CloudResult, QualityResult): a cloud coded to reach `target_db` Y-PSNR (compress_to_psnr)."""
    t0 = time.perf_counter()
    signal = codec.cloud_signal(cloud, config)
    quality = compress_to_psnr(signal, config, target_db, progress=progress)
    return _cloud_result(signal, config, quality.data, quality.seconds["fit"], t0), quality


def compress_image_to_psnr(pixels, config: CodecConfig, target_db: float, *, progress: bool = True):
    """(codec.ImageResult, QualityResult): an image coded to reach `target_db` RGB PSNR."""
    signal = codec.image_signal(pixels, config)
    quality = compress_to_psnr(signal, config, target_db, progress=progress)
    return _image_result(signal, config, quality.data, quality.seconds), quality


def describe_quality(q: QualityResult, points: int, unit: str = "point") -> str:
    m = q.model
    return (f"{q.metric} {q.psnr_db:.2f} dB reached for a target of {q.target_db:g} dB at "
            f"{8.0 * len(q.data) / points:.4f} bits per {unit}: {m.width}x{m.depth} SIREN (ω0 {m.omega0:g}), "
            f"{q.levels} levels")


def describe(rate: RateResult, unit: str = "point") -> str:
    """One line: the target, what was reached, the network and the levels."""
    m = rate.model
    net = f"{m.width}x{m.depth} SIREN (ω0 {m.omega0:g})" if hasattr(m, "width") else str(m)
    off = 100.0 * (rate.bpp / rate.target_bpp - 1.0)
    qat = "" if rate.qat == "off" else f", QAT {rate.qat}"
    return (f"{rate.bpp:.4f} reached for a target of {rate.target_bpp:g} bits per {unit} ({off:+.1f}%): "
            f"{net}, {rate.levels} levels{qat}")

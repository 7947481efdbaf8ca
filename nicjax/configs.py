"""Every configuration of the library, and the named presets: frozen dataclasses, one place.

    FitConfig     how a representation is trained on a signal (optimiser, schedule, loss, QAT, rate penalty)
    CodecConfig   what the codec does: the representation and its architecture, training, quantization levels,
                  what the tensors are coded against, point-cloud and image options
    PRESETS       named CodecConfigs: "default" (point clouds), "image" (what an image gets when nothing is set),
                  "paper" (the paper's fine-tuning schedule), "demo" (the no-input demo: under a minute)

Entry points (the CLI, experiments) turn absl flags into these with `nicjax.config_flags`, the one mapper.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from nicjax.representations import latent, siren


@dataclasses.dataclass(frozen=True)
class FitConfig:
    steps: int = 8000  # representations with latents: 0 is by rule (codec.fit_config_for; LATENT_STEPS, DENSE_STEPS)
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # "cosine" (decay to final_lr_fraction) or "constant"
    final_lr_fraction: float = 0.05
    batch_size: int = 1 << 14
    loss_weights: tuple = (0.6, 0.2, 0.2)  # per output channel: Y, Cb, Cr for colours
    seed: int = 0
    steps_per_call: int = 50  # steps fused into one jit-compiled lax.scan between progress updates
    # Quantization-aware fine-tuning after `steps`: this many more steps with the weights quantized in the forward
    # pass (straight-through gradients) at the steps the coder will use, so the network adapts to its own
    # quantization. Worth ~3 dB at 8 levels and ~1 dB at 16 (README, "Point clouds: measured"); 0: off.
    qat_steps: int = 0
    qat_learning_rate: float = 3e-4  # cosine-decayed over qat_steps
    # Rate penalty: loss += delta_l1 · mean |w − reference| over all weights, the reference being what the coder
    # subtracts (the seeded init or an init artefact). It pulls unneeded weights back onto the reference, so the
    # quantized differences peak at zero and code in fewer bits: a rate knob beside size and levels (README,
    # "Point clouds: measured"). 0: off.
    delta_l1: float = 0.0
    # Rate-distortion training (representations with latents): loss = D + rate_lambda · R, R the latents' bits per
    # point (or pixel) under a learned Laplace (rate_model, below); D the weighted MSE above (colours in [0, 1]). One λ
    # gives one file: larger λ, fewer bits.
    rate_lambda: float = 0.0
    # The last fraction of the steps rounds the latents (straight-through) instead of adding uniform noise; None: by
    # rule (codec.fit_config_for: HARD_FRACTION, or 0 where the latent levels reach 2^0 by λ alone).
    hard_fraction: float | None = None
    # Before that: "noise" (uniform noise on the latents for the rate and the synthesis), "mixed" (noise for the
    # rate; the synthesis reads the rounded latents, straight-through, as the decoder will), or "best": both
    # trained, and the one with the lower D + λ·R of the integer latents kept (README: "noise" won on every cloud
    # tried since session 11).
    latent_noise: str = "noise"
    # Adam's rate for the latents (the network keeps learning_rate; the same schedule scales both); 0: by rule,
    # DENSE_LATENT_LR where the latent levels start at 2^0 (dense clouds: latent.is_dense), IMAGE_LATENT_LR on images,
    # else learning_rate.
    latent_learning_rate: float = 0.0
    # Adam's rate for the rate model's scales (the Laplace per latent tensor, channel and context); 0: by rule,
    # RATE_MODEL_GAIN times learning_rate (the network's)
    rate_model_learning_rate: float = 0.0
    # The rate R that training sees: "context" (a zero-mean Laplace per latent tensor, channel and coder context,
    # the context from each node's decoded same-level neighbours as the context-coded file codes it:
    # fit.context_rate_bits) or "factorised" (a Laplace per tensor and channel; files without context coding train
    # with it). One training each, same λ (README, session 11): as good on longdress l1, better on MVUB phil l2,
    # ricardo9 depth 9 and a dense sarah9 crop (+0.3 to +1 dB at equal rate).
    rate_model: str = "context"
    # Where the latents' training starts (codec.plan): "pyramid" (latent.pyramid_start: each level the node means of
    # what the coarser ones leave, at pyramid_gain(λ) steps per unit colour, the network a linear read-out of them) or
    # "zeros" (latents at 0, the network as seeded: the codec until session 14).
    latent_init: str = "pyramid"


# On dense clouds the latents need a larger Adam rate to move far enough in the preset's 1000 steps (λ 3e-4, levels
# from 2^0, 3 channels, one "noise" training: sarah9 37.6 dB at 0.36 bpp with 3e-2, 38.5 dB at 0.35 with 1e-1, 37.9 dB
# at 0.45 with 3e-1; ricardo9 depth 9 37.9 dB at 0.30 with 3e-2, 38.8 dB at 0.32 with 1e-1); on longdress l1/l3 (not
# dense) 1e-1 lost to the network's 1e-2 (README, session 8).
DENSE_LATENT_LR = 1e-1
# Images (their pixel grids are dense: levels from 2^0, 3 channels) at 3e-2: on kodim04's top-left 256x384 crop (the
# Kodak subset leaves kodim04 out), one training each at λ = 3e-3 / 1e-3 / 3e-4, 1e-1 gave 0.414 bpp 28.91 dB / 0.984
# 31.65 / 1.981 35.43, 3e-2 0.347 28.77 / 0.597 30.26 / 1.711 35.22 (+0.2 to +0.6 dB on 1e-1's curve), 1e-2 0.312
# 28.30 / - / 1.584 34.36 (+0.1 to +0.3 dB) (README, session 18)
IMAGE_LATENT_LR = 3e-2
# Training steps of latent files (FitConfig.steps 0 in the latent preset: by rule). Dense clouds at λ below
# DENSE_STEPS_LAMBDA get 3000: there, at the top of their curves, 1000 steps left them far from converged (one
# training each, λ = 1e-4: ricardo9 depth 9 41.37 dB at 0.501 bpp against 39.99 at 0.546; sarah9 41.03 dB at 0.583
# against 40.79 at 0.713; sarah9's top quarter at 3e-5, 46.57 dB at 0.677 against 45.01 at 1.179; sarah9 at 3e-5 the
# same 41.9 dB at 1.068 against 1.402 bpp). At λ = 3e-4 and 1e-3 they lost (sarah9: 38.95 dB at 0.393 against 0.337;
# 36.39 against 36.67 dB at 0.166). Longdress l1 with its levels by density gained ~0.3 dB at 1e-4 for 3x the time
# (README, session 11); since session 12 every cloud is dense below POINT_LEVEL_LAMBDA, so this rule then applies.
# Below POINT_LEVEL_LAMBDA the latent levels start at 2^0 on every cloud (latent.default_scales(point_level=True)), a
# latent per point, so that sparse clouds code as dense ones do (3 channels, latents at DENSE_LATENT_LR, DENSE_STEPS):
# the levels by density stop longdress near 31.5 dB (one latent per finest node, interpolated), from 2^0 its curves go
# on (l1, λ = 1e-4: 37.01 dB at 4.47 bpp against 31.38 at 2.08; 3e-5: 39.28 dB at 7.20; l2 at 1e-4: 36.47 dB at 4.15
# against 30.6 at the top). At λ = 3e-4 it lost in session 12 (l1: 32.53 dB at 3.13 bpp, under the curve of the levels
# by density, 30.68 at 1.90), hence a threshold of 2e-4 until session 16. With the session-16 codec (pyramid start,
# network by rule) 3e-4 is about even in Y and 5-10 dB better in U/V, one training each against the sweep's files
# (l1 2.301 bpp Y 32.97 U 34.56 against 2.132 32.37 29.90; l2 2.173 32.56 34.93 against 2.064 31.86 30.06; l3 1.714
# 32.78 35.29 against 1.678 32.86 25.40: +0.2, +0.3, -0.2 dB on each curve's slope), while 1e-3 lost ~0.5 dB of Y on
# l1 and l2 (0.789 bpp 26.99 dB against 0.900 27.87; 0.783 27.03 against 0.922 27.99): the threshold lies between
# (README, session 17). The sparse clouds' one channel per level leaves their chroma flat (27-30 dB) above it.
POINT_LEVEL_LAMBDA = 5e-4
# The rounding finish (straight-through, the last HARD_FRACTION of the steps) pays at large λ (longdress l1, λ = 3e-3:
# 25.54 dB at 0.483 bpp against 24.88 at 0.453 without it; 1e-3: 28.28 at 1.305 against 27.07 at 1.209). On the clouds
# that the point level makes dense (their levels by density start above 2^0) it costs both rate and PSNR: l1, λ = 1e-4,
# 37.01 dB at 4.47 bpp with it, 38.02 at 3.94 without; 3e-5: 39.28 at 7.20 against 39.93 at 6.23. So they train without
# it below POINT_LEVEL_LAMBDA; the clouds dense by density keep it (sarah9's top quarter, λ = 1e-4: 44.73 dB at 0.489
# with it, 42.52 at 0.296 without: along its curve, no gain shown) (README, session 13).
HARD_FRACTION = 0.2
LATENT_INITS = ("pyramid", "zeros")  # FitConfig.latent_init


def pyramid_gain(rate_lambda: float) -> float:
    """Latent steps per unit colour of the pyramid start (FitConfig.latent_init): the step Δ at which a uniform
    quantizer of Y (weight 0.6 of D) balances D + λ·R at high rate, d(0.6·Δ²/12)/dΔ = λ·d(−log2 Δ)/dΔ, so
    Δ = sqrt(10·λ / ln 2); at most 1024 (a quarter of an 8-bit step)."""
    return min(1024.0, 1.0 / math.sqrt(10.0 * max(rate_lambda, 1e-9) / math.log(2.0)))


# The rate model's scales learn at RATE_MODEL_GAIN times the network's Adam rate (FitConfig.rate_model_learning_rate
# 0). At the network's rate (until session 16) a scale moves by at most ~0.01 in log per step, and the scales lag
# the latents by hundreds of steps: on sarah9's top quarter at λ = 3e-4 the training's estimate was 1.07 bpp after
# 300 steps where the file had 0.26. At 10x: +1.0 / +0.3 dB at equal rate on that crop (λ 3e-4 / 1e-3), within one
# training's spread on full sarah9, and l1's whole curve 12.9% -> 10.2% BD-rate vs G-PCC v23 RAHT (README, session 16).
RATE_MODEL_GAIN = 10.0

LATENT_STEPS = 1000
# (images keep LATENT_STEPS at every λ: on kodim04's crop, latents at IMAGE_LATENT_LR, 3000 steps came out under the
# curve of 1000 at λ = 3e-3 (0.423 bpp 29.02 dB against 0.347 28.77) and 3e-4 (1.915 35.09 against 1.711 35.22))
DENSE_STEPS = 3000
DENSE_STEPS_LAMBDA = 2e-4


REFERENCES = ("auto", "zeros", "seeded", "init")
COLOUR_SPACES = ("auto", "rgb", "ycbcr")


@dataclasses.dataclass(frozen=True)
class CodecConfig:
    representation: str = "siren"  # a name in nicjax.representations.REGISTRY
    # The representation's configuration (in_dim/out_dim follow the signal). With an init artefact (`init`), the
    # artefact's architecture is used, and a different one here is an error.
    model: Any = siren.SirenConfig()
    fit: FitConfig = FitConfig()
    levels: int = 256
    # Files with latents: the network is coded at each of these levels and the file of least D + λ·R kept (D the
    # decoded network's weighted MSE, R the file's bits per point); () codes at `levels` alone (and `--levels` sets
    # that). The latents are integers already, so only the network's few weights change between the candidates.
    level_choices: tuple[int, ...] = ()
    # What the tensors are coded against: "zeros" (direct coding), "seeded" (the seeded random init the training
    # starts from; the decoder regenerates it), "init" (the init artefact `init`); "auto": "init" when an init
    # artefact is given, else "seeded".
    reference: str = "auto"
    init: str | None = None  # an init artefact (shipped id/name or .init path) to start from; None: seeded random
    voxelize: bool = False  # point clouds only
    colour_space: str = "auto"  # images: "rgb" or "ycbcr" ("auto": RGB); clouds: always YCbCr

    def __post_init__(self):
        if self.reference not in REFERENCES:
            raise ValueError(f"unknown reference {self.reference!r}: use one of {', '.join(REFERENCES)}")
        if self.colour_space not in COLOUR_SPACES:
            raise ValueError(f"unknown colour space {self.colour_space!r}: use one of {', '.join(COLOUR_SPACES)}")


# What images get from the CLI (and the Kodak experiment) when nothing is set: chosen on kodim04, which the default
# Kodak subset leaves out (README, "Images"). Smaller batches and more steps than for clouds: at equal training
# time, 4096 pixels × 4× the steps fitted better than 16384 × 1×. Learning rate 1e-3: 2e-3 fitted kodim04 as well
# but diverged on kodim19 with a 64×5 network.
IMAGE = CodecConfig(model=siren.SirenConfig(width=48, depth=5),
                    fit=FitConfig(steps=3000, learning_rate=1e-3, batch_size=4096), levels=128)

# Latents on the octree (representations/latent.py) for point clouds: the levels by rule from the geometry, one
# channel each, a 2x16 GELU network (~0.5k multiply-adds per point), Adam 1e-2 (Cool-chic's rate for latents),
# all points in every step up to 2^21 (a latent gets a distortion gradient from every point it colours in every
# step: random minibatches drawn with replacement leave out ~37% of the points each step, while the rate term
# pulls every latent to zero in every step; on sarah9's 271k points, 2^18-point minibatches left the curve flat
# at ~32.7 dB), noise then rounding: one training with uniform noise ("noise"; until session 11 "best", which also
# trained "mixed" and kept the better, but with the context rate model and the dense-cloud rule "mixed" lost on every
# cloud tried, 0.4-3.4 dB less Y-PSNR at a higher rate: README).
# The network levels a latent file is coded at, the least D + λ·R kept: 64 levels cost 1.5-1.7 dB at small λ on
# longdress l1 (λ = 3e-5: 39.93 dB at 6.232 bpp; 256 levels 41.64 at 6.321), while 32 levels win at λ = 3e-3 (README,
# session 14). Since session 16 up to the coder's 4096: since the pyramid start the search kept its top, 1024, on
# most files at λ <= 3e-4 (e.g. l1 at 1e-5: 45.19 dB at 512 levels, 45.52 at 1024 for 0.4% more bits). Coding at
# eight levels adds a few entropy-coder passes to a training of minutes.
LATENT_LEVEL_CHOICES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
LATENT = CodecConfig(representation="latent", model=latent.LatentConfig(),
                     fit=FitConfig(steps=0, learning_rate=1e-2, batch_size=1 << 21, rate_lambda=2e-3,
                                   latent_noise="noise"),
                     levels=64, level_choices=LATENT_LEVEL_CHOICES)

PRESETS = {
    "default": CodecConfig(),
    "image": IMAGE,
    # The paper's settings for point clouds (Sec. 3): fine-tuning with Adam 1e-5 for 20000 steps (meant to start
    # from a meta-learned init, --init); ω0 = 30, Sitzmann init, loss 0.6/0.2/0.2 (the defaults).
    "paper": CodecConfig(fit=FitConfig(steps=20000, learning_rate=1e-5, schedule="constant")),
    # What `python -m nicjax.compress` with no input runs on its procedural cloud: a small network and few steps,
    # so the demo ends within a minute on 2 CPU cores (ω0 60: these voxel clouds fit better than at 30; README).
    "latent": LATENT,
    "demo": CodecConfig(model=siren.SirenConfig(width=32, depth=3, omega0=60.0),
                        fit=FitConfig(steps=1000, batch_size=8192), levels=64),
}


@dataclasses.dataclass(frozen=True)
class RahtConfig:
    """The RAHT baseline (nicjax.baselines.raht): one uniform quantization step for every coefficient."""

    step: float = 64.0


def preset(name: str) -> CodecConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]

"""The one mapper from absl flags to configs: every entry point (the CLI, every experiment) defines its flags with
`define` and reads them back with `codec_config`, so a setting has one flag name everywhere.

Flags left unset take the preset's value (`--preset`, or the defaults the entry point passes, e.g. the image
preset for an image). An experiment that sweeps a setting defines its own list flag instead (e.g. `--levels` as a
list) and excludes the scalar one here.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from nicjax import configs, representations

FLAGS = flags.FLAGS
_D = configs.CodecConfig()


def _definitions():
    fit = _D.fit
    return {
        "preset": lambda: flags.DEFINE_enum("preset", "default", list(configs.PRESETS),
                                            "Named settings that unset flags take ('paper': Adam 1e-5 for 20000 "
                                            "steps, constant rate, as in the paper; 'image': what images get)."),
        "representation": lambda: flags.DEFINE_enum("representation", _D.representation, representations.names(),
                                                    "What the file codes: the network's weights ('siren', the "
                                                    "paper's), or latents on the point cloud's octree (an image's "
                                                    "pixel grid) read by a tiny network ('latent'; unset flags then "
                                                    "take the 'latent' preset)."),
        "lambda": lambda: flags.DEFINE_float("lambda", fit.rate_lambda, "Representations with latents: λ of the "
                                             "training loss D + λ·R (R in bits per point, D the colour MSE in "
                                             "[0, 1]): larger, fewer bits. One λ, one file."),
        "latent_noise": lambda: flags.DEFINE_enum("latent_noise", None, ["noise", "mixed", "best"], "Representations "
                                                  "with latents: how training relaxes the rounding (latent preset: "
                                                  "'noise'; 'best': both trained and the better kept; README)."),
        "rate_model": lambda: flags.DEFINE_enum("rate_model", None, ["factorised", "context"], "Representations "
                                                "with latents: the rate training sees, a Laplace per tensor and "
                                                "channel ('factorised') or per coder context too ('context', the "
                                                "default; FitConfig.rate_model)."),
        "latent_init": lambda: flags.DEFINE_enum("latent_init", None, list(configs.LATENT_INITS), "Representations "
                                                 "with latents: where training starts, the node means of the colour "
                                                 "coarse to fine ('pyramid', the default) or zeros ('zeros', the "
                                                 "codec until session 14; FitConfig.latent_init)."),
        "latent_lr": lambda: flags.DEFINE_float("latent_lr", None, "Representations with latents: Adam's rate for "
                                                "the latents (the network keeps --lr; latent preset: by rule, 0.03 on images, 0.1 on dense clouds, "
                                                "whose levels start at 2^0, else --lr)."),
        "rate_lr": lambda: flags.DEFINE_float("rate_lr", None, "Representations with latents: Adam's rate for the "
                                              "rate model's scales (latent preset: by rule, 10 times --lr)."),
        "latent_channels": lambda: flags.DEFINE_integer("latent_channels", None, "Latent values per octree node "
                                                        "and level (latent preset: by rule, 3 on dense clouds, whose levels start "
                                                        "at 2^0, else 1)."),
        "latent_width": lambda: flags.DEFINE_integer("latent_width", None, "Width of the latent representation's "
                                                     "synthesis network (latent preset: 16)."),
        "width": lambda: flags.DEFINE_integer("width", _D.model.width, "SIREN width (features per hidden layer)."),
        "depth": lambda: flags.DEFINE_integer("depth", _D.model.depth, "SIREN depth (number of sine layers)."),
        "omega0": lambda: flags.DEFINE_float("omega0", _D.model.omega0, "Frequency ω0 of the first sine layer (the "
                                             "paper's: 30)."),
        "steps": lambda: flags.DEFINE_integer("steps", fit.steps, "Training steps (Adam; --representation "
                                              "latent: by rule unless given, 1000, or 3000 on dense clouds at "
                                              "λ < 2e-4; images 1000)."),
        "lr": lambda: flags.DEFINE_float("lr", fit.learning_rate, "Adam learning rate (peak of the schedule)."),
        "schedule": lambda: flags.DEFINE_enum("schedule", fit.schedule, ["cosine", "constant"],
                                              "Learning-rate schedule."),
        "batch": lambda: flags.DEFINE_integer("batch", fit.batch_size, "Points or pixels per training step (a "
                                              "random minibatch)."),
        "seed": lambda: flags.DEFINE_integer("seed", fit.seed, "Seed of the init and the minibatches: same seed, "
                                             "same bytes."),
        "qat_steps": lambda: flags.DEFINE_integer("qat_steps", fit.qat_steps, "Quantization-aware fine-tuning "
                                                  "steps after training, at the steps --levels gives (worth most "
                                                  "at 8-64 levels); 0: off."),
        "qat_lr": lambda: flags.DEFINE_float("qat_lr", fit.qat_learning_rate, "Learning rate of the "
                                             "quantization-aware steps."),
        "delta_l1": lambda: flags.DEFINE_float("delta_l1", fit.delta_l1, "Rate penalty: weight of mean |w − "
                                               "reference| in the training loss; 0: off."),
        "levels": lambda: flags.DEFINE_integer("levels", _D.levels, "Quantization levels per tensor, 4 .. 4096."),
        "reference": lambda: flags.DEFINE_enum("reference", _D.reference, list(configs.REFERENCES),
                                               "What the weights are coded against: 'zeros' (direct), 'seeded' "
                                               "(differences from the seeded random init), 'init' (differences "
                                               "from --init); 'auto': 'init' with --init, else 'seeded'."),
        "init": lambda: flags.DEFINE_string("init", None, "Start from this init artefact (a shipped id or name, or "
                                            "an .init file); it defines the architecture. The decoder needs the "
                                            "same init."),
        "voxelize": lambda: flags.DEFINE_bool("voxelize", _D.voxelize, "Point clouds: round coordinates to the "
                                              "integer grid and merge duplicates."),
        "colour_space": lambda: flags.DEFINE_enum("colour_space", _D.colour_space, list(configs.COLOUR_SPACES),
                                                  "Images: what the network outputs ('auto': RGB). Clouds: always "
                                                  "YCbCr."),
    }


NAMES = tuple(_definitions())
_defined: set = set()  # the config flags `define` made: only these are read back (an entry point's own list flag
#                        of the same name, e.g. an experiment's --levels axis, is not a config flag)


def define(only: tuple | None = None, exclude: tuple = ()) -> None:
    """Defines the config flags `only` (default: all of NAMES) less `exclude`; the other settings are the entry
    point's own (it sweeps them with list flags, or fixes them)."""
    unknown = (set(only or ()) | set(exclude)) - set(NAMES)
    if unknown:
        raise ValueError(f"not config flags: {', '.join(sorted(unknown))}")
    for name, definition in _definitions().items():
        if (only is None or name in only) and name not in exclude:
            definition()
            _defined.add(name)


def _value(name: str, default):
    """The flag's value if `define` made it and it was given on the command line, else `default`."""
    return getattr(FLAGS, name) if name in _defined and FLAGS[name].present else default


def codec_config(defaults: configs.CodecConfig | None = None) -> configs.CodecConfig:
    """The CodecConfig the flags describe. Unset flags take `defaults`, or the --preset's values if None.

    ValueError (one line) for a combination the codec cannot honour, e.g. an architecture that differs from the
    --init artefact's.
    """
    if defaults is None and _value("representation", None) == "latent" and _value("preset", None) is None:
        defaults = configs.LATENT
    d = defaults if defaults is not None else configs.preset(_value("preset", "default"))
    representation = _value("representation", d.representation)
    if representation != d.representation:
        d = dataclasses.replace(d, representation=representation,
                                model=representations.by_name(representation).default_config)
    if representation == "latent":
        return _latent_config(d)
    for name in ("latent_channels", "latent_width", "latent_noise", "latent_lr", "rate_lr", "rate_model",
                 "latent_init"):
        if _value(name, None) is not None:
            raise ValueError(f"--{name} is a setting of --representation latent")
    model = d.model
    arch = {"width": _value("width", None), "depth": _value("depth", None), "omega0": _value("omega0", None)}
    init = _value("init", d.init)
    if init:
        from nicjax import inits

        model = inits.find(init).model
        asked = {k: v for k, v in arch.items() if v is not None and v != getattr(model, k)}
        if asked:
            raise ValueError(f"--init {init} is a {model.width}x{model.depth} network (ω0 {model.omega0:g}): "
                             f"{', '.join(f'--{k} {v:g}' for k, v in asked.items())} cannot be used with it")
    else:
        model = dataclasses.replace(model, **{k: v for k, v in arch.items() if v is not None})
    return _with_common(d, model, init)


def _fit_config(f: configs.FitConfig) -> configs.FitConfig:
    return dataclasses.replace(
        f, steps=_value("steps", f.steps), learning_rate=_value("lr", f.learning_rate),
        schedule=_value("schedule", f.schedule), batch_size=_value("batch", f.batch_size), seed=_value("seed", f.seed),
        qat_steps=_value("qat_steps", f.qat_steps), qat_learning_rate=_value("qat_lr", f.qat_learning_rate),
        delta_l1=_value("delta_l1", f.delta_l1), rate_lambda=_value("lambda", f.rate_lambda),
        latent_noise=_value("latent_noise", None) or f.latent_noise,
        latent_learning_rate=_value("latent_lr", None) or f.latent_learning_rate,
        rate_model_learning_rate=_value("rate_lr", None) or f.rate_model_learning_rate,
        rate_model=_value("rate_model", None) or f.rate_model,
        latent_init=_value("latent_init", None) or f.latent_init)


def _with_common(d: configs.CodecConfig, model, init) -> configs.CodecConfig:
    return configs.CodecConfig(
        representation=d.representation, model=model, fit=_fit_config(d.fit),
        levels=_value("levels", d.levels), level_choices=() if _value("levels", None) else d.level_choices,
        reference=_value("reference", d.reference), init=init,
        voxelize=_value("voxelize", d.voxelize), colour_space=_value("colour_space", d.colour_space))


def _latent_config(d: configs.CodecConfig) -> configs.CodecConfig:
    """--representation latent: its own architecture flags; the SIREN's and init artefacts do not apply."""
    for name in ("width", "depth", "omega0", "init", "qat_steps", "delta_l1"):
        if _value(name, None) is not None:
            raise ValueError(f"--{name} does not apply to --representation latent")
    model = d.model
    channels, width = _value("latent_channels", None), _value("latent_width", None)
    model = dataclasses.replace(model, **({"channels": channels} if channels is not None else {}),
                                **({"hidden": width} if width is not None else {}))
    return _with_common(d, model, None)


def check(config: configs.CodecConfig) -> None:
    """ValueError (one line) for values no encode can use: checked before any training."""
    from nicjax import quantize

    for levels in (config.levels, *config.level_choices):
        quantize.check_levels(levels)
    f = config.fit
    if f.steps < 0 or f.batch_size < 1 or f.qat_steps < 0 or f.delta_l1 < 0 or not f.learning_rate > 0 \
            or not (f.rate_lambda >= 0 and f.rate_lambda < float("inf")):
        raise ValueError("--steps and --qat_steps must be non-negative, --batch positive, --lr positive and "
                         "--delta_l1 and --lambda non-negative")
    if not 0 <= f.seed < (1 << 32):
        raise ValueError(f"--seed must be in [0, 2**32), got {f.seed}")
    if config.init is None and config.representation == "siren":
        rep = representations.by_name(config.representation)
        rep.config_bytes(config.model)  # what the header can store (for any signal's in/out sizes)
    if config.representation == "latent":
        from nicjax.representations import latent

        m = config.model
        latent.check_config(dataclasses.replace(m, scales=m.scales or (1,), counts=(1,) * max(len(m.scales), 1),
                                                channels=m.channels or 1, hidden=m.hidden or latent.NETWORKS[0][0]))

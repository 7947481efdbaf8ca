"""Training and decoding speed of nicjax on this machine, against its float32 matmul peak and PyTorch.

    python -m benchmarks.speed [--batch 16384] [--steps 30] [--chunk 10] [--points 250000] [--skip_torch] [--ply X.ply]

In one run, for the paper's smallest and largest SIRENs (width 60 / depth 5 and width 170 / depth 9):

1. the float32 matmul peak of this machine (jitted 2048x2048 jnp matmul, best of 5);
2. the training step through nicjax.fit's own jitted chunk (`fit._train_chunk`, a lax.scan of Adam steps on
   random minibatches of a synthetic cloud, as `fit.fit` runs it): steps/s, points x parameters / s, and FLOP/s
   as a fraction of the peak (3 x the forward matmul FLOPs per point x batch; sines, gather and Adam not
   counted), plus the same step traced with jnp.sin in place of nicjax's fast sine;
3. decoding throughput: the network alone (`Model.evaluate`, the decoder's chunked forward pass) and the whole
   `codec.decode` on real bytes (entropy decoding, geometry check, colour conversion included);
4. the peak resident memory of decoding a 1,000,000-point cloud with the largest network, in a fresh
   subprocess (`--mode=decode_memory`);
5. the same training step in PyTorch (CPU), eager and with torch.compile, in a subprocess (`--mode=torch`),
   and nicjax's time per step as a ratio to each. The rows are skipped with a note when torch is not importable
   (it is a benchmark-only dependency: `pip install torch==2.13.0`, the CPU build).

Timings exclude compilation (a warm-up call first). Training steps are timed in groups of --chunk steps (one
`_train_chunk` call of --chunk steps for nicjax, --chunk eager steps for torch), --steps in all, and the best
group is reported, with the median beside it. "cores" is the process CPU time over wall time of that group:
well under the machine's core count means the run was starved by other load (or ran serial code). This
machine may be shared, so compare the ratios printed (measured in the same run), not absolute times across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

NETWORKS = (("w60 d5", 60, 5), ("w170 d9", 170, 9))  # the paper's smallest and largest
LOSS_WEIGHTS = (0.6, 0.2, 0.2)  # Y, Cb, Cr
OMEGA = 30.0
_RESULT = "RESULT "


def _parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", default="all", choices=("all", "decode_memory", "torch"),
                   help="all: the whole table; decode_memory / torch: the subprocesses the table runs")
    p.add_argument("--batch", type=int, default=16384, help="training minibatch size")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per measurement")
    p.add_argument("--chunk", type=int, default=10, help="steps per timed group (the best group is reported)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each decode measurement (best kept)")
    p.add_argument("--points", type=int, default=250_000, help="points of the synthetic clouds")
    p.add_argument("--memory_points", type=int, default=1_000_000, help="points of the decode-memory cloud")
    p.add_argument("--memory_limit_mib", type=float, default=2048.0, help="budget the decode-memory peak is held to")
    p.add_argument("--skip_torch", action="store_true", help="leave out the PyTorch rows")
    p.add_argument("--skip_plain_sin", action="store_true", help="leave out the jnp.sin training rows")
    p.add_argument("--torch_threads", type=int, default=0, help="torch.set_num_threads (0: os.cpu_count())")
    p.add_argument("--networks", default=",".join(n for n, _, _ in NETWORKS),
                   help="comma-separated subset of: " + ", ".join(n for n, _, _ in NETWORKS))
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic clouds")
    p.add_argument("--ply", default="", help="also decode a file for this cloud's geometry with the CLI's default "
                   "network (64x5 SIREN, 256 levels): the whole-file decode rate on a real cloud")
    # for --mode=decode_memory (the table's run passes them)
    p.add_argument("--data", default="", help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, default=170, help=argparse.SUPPRESS)
    p.add_argument("--depth", type=int, default=9, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.batch, args.steps, args.chunk, args.repeats, args.points, args.memory_points) < 1:
        p.error("--batch, --steps, --chunk, --repeats, --points and --memory_points must be positive")
    return args


def _networks(args):
    wanted = {s.strip() for s in args.networks.split(",") if s.strip()}
    nets = [n for n in NETWORKS if n[0] in wanted]
    if not nets:
        raise SystemExit(f"--networks names none of {[n for n, _, _ in NETWORKS]}")
    return nets


def _log(msg: str):
    print(f"[speed] {msg}", file=sys.stderr, flush=True)


def _best_of(fn, repeats: int) -> dict:
    """Runs fn `repeats` times: best and median wall seconds, and the CPU seconds of the best run."""
    walls, cpus = [], []
    for _ in range(max(1, repeats)):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    i = int(np.argmin(walls))
    return {"best": walls[i], "median": float(np.median(walls)), "cores": cpus[i] / max(walls[i], 1e-12)}


def _groups(steps: int, chunk: int) -> tuple[int, int]:
    """(steps per group, number of groups) covering at least `steps` steps."""
    chunk = min(chunk, steps)
    return chunk, -(-steps // chunk)


# --- synthetic data -----------------------------------------------------------------------------------------

def training_cloud(points: int, seed: int):
    """Uniform coordinates in [-1, 1]^3 and random targets in [-0.5, 0.5]^3 (float32)."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(-1.0, 1.0, (points, 3)).astype(np.float32)
    targets = rng.uniform(-0.5, 0.5, (points, 3)).astype(np.float32)
    return coords, targets


def integer_cloud(points: int, seed: int, bits: int = 10) -> np.ndarray:
    """Integer voxel coordinates (as float64, like a decoded PLY) in [0, 2^bits)^3."""
    rng = np.random.default_rng(seed + 1)
    return rng.integers(0, 1 << bits, (points, 3)).astype(np.float64)


def siren_model(width: int, depth: int):
    """The nicjax model (representations.Model) of a point-cloud SIREN of this size."""
    from nicjax.representations import siren

    return siren.model(siren.SirenConfig(in_dim=3, out_dim=3, width=width, depth=depth))


def coded_bytes(model, xyz: np.ndarray) -> bytes:
    """A real file for `xyz` (the codec's header for the cloud, 256 levels, weights coded against the seeded
    reference), for a representations.Model.

    The weights are an init of another seed, so every tensor's difference from the reference is dense and the
    entropy decoder has real work (the reference itself would code to all-zero symbols).
    """
    import jax

    from nicjax import codec, configs
    from nicjax.signals import pointcloud

    signal = pointcloud.to_signal(pointcloud.PointCloud(xyz=xyz, rgb=np.zeros((len(xyz), 3), np.uint8)))
    header = codec.header_for(signal, configs.CodecConfig(model=model.config), model, None)
    return codec.write(header, model.init(jax.random.key(12345)), codec.reference_params(header), 256)


# --- 1. matmul peak -----------------------------------------------------------------------------------------

def matmul_peak(n: int = 2048, reps: int = 5) -> dict:
    import jax
    import jax.numpy as jnp

    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    f(a, b).block_until_ready()
    t = _best_of(lambda: f(a, b).block_until_ready(), reps)
    return {"flops": 2.0 * n ** 3 / t["best"], **t}


# --- 2. nicjax training step --------------------------------------------------------------------------------

@contextlib.contextmanager
def _jnp_sine():
    """Traces the SIREN with jnp.sin in place of fast_sin (only what is traced inside the block)."""
    import jax.numpy as jnp

    from nicjax.representations import siren

    saved = siren.fast_sin
    siren.fast_sin = jnp.sin
    try:
        yield
    finally:
        siren.fast_sin = saved


def nicjax_train(model, coords, targets, args, plain_sin: bool = False) -> dict:
    """Seconds per training step of fit._train_chunk (compile excluded), or of a jnp.sin copy of it; `model` is a
    representations.Model."""
    import jax
    import jax.numpy as jnp

    from nicjax import configs, fit

    cfg = configs.FitConfig(batch_size=args.batch, loss_weights=LOSS_WEIGHTS)
    tx = fit.make_optimizer(cfg)
    weights = tuple(float(w) for w in cfg.loss_weights)
    batch = min(args.batch, coords.shape[0])
    params = model.init(jax.random.key(0))
    opt_state = tx.init(params)
    base = jax.random.key(cfg.seed)
    k, groups = _groups(args.steps, args.chunk)
    keys = [jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(g * k, (g + 1) * k)) for g in range(groups + 1)]
    coords, targets = jnp.asarray(coords), jnp.asarray(targets)
    static = dict(model=model, tx=tx, batch_size=batch, weights=weights, delta_l1=0.0)
    no_quantizer = no_reference = None  # plain training: no QAT, no rate penalty

    if plain_sin:
        raw = fit._train_chunk.__wrapped__

        def chunk(*a, **kw):  # a new function object, so no trace of the fast-sine chunk is reused
            return raw(*a, **kw)

        with _jnp_sine():
            lowered = jax.jit(chunk, static_argnames=tuple(static)).lower(
                params, opt_state, keys[0], coords, targets, no_quantizer, no_reference, **static)
        if "sine" not in lowered.as_text():
            raise RuntimeError("the jnp.sin variant did not trace jnp.sin")
        compiled = lowered.compile()

        def run(p, s, ks):
            return compiled(p, s, ks, coords, targets, no_quantizer, no_reference)
    else:
        def run(p, s, ks):  # exactly the call fit.fit makes
            return fit._train_chunk(p, s, ks, coords, targets, no_quantizer, no_reference, **static)

    t0 = time.perf_counter()
    state = jax.block_until_ready(run(params, opt_state, keys[-1]))  # compile (the real chunk) + warm-up
    first = time.perf_counter() - t0
    walls, cpus = [], []
    for g in range(groups):
        t, c = time.perf_counter(), time.process_time()
        state = jax.block_until_ready(run(state[0], state[1], keys[g]))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    if not np.all(np.isfinite(np.asarray(state[2]))):
        raise RuntimeError("training diverged")
    i = int(np.argmin(walls))
    return {"step_s": walls[i] / k, "median_s": float(np.median(walls)) / k, "cores": cpus[i] / walls[i],
            "first_call_s": first}


# --- 3. decoding --------------------------------------------------------------------------------------------

def nicjax_decode(model, xyz: np.ndarray, repeats: int) -> dict:
    """Decoding times of a representations.Model's file for the geometry `xyz`."""
    import jax

    from nicjax import codec
    from nicjax.signals import pointcloud

    data = coded_bytes(model, xyz)
    context = codec.DecodeContext(geometry=xyz)
    header, params = codec.read(data)
    coords = pointcloud.normalised(xyz)
    model.evaluate(params, coords[: 1 << 16])  # compiles the chunk shape evaluate uses
    t_apply = _best_of(lambda: model.evaluate(params, coords), repeats)

    codec.decode(data, context)  # warm-up
    t_full = _best_of(lambda: codec.decode(data, context), repeats)
    # where decode's time goes (one more warm run of each part)
    t0 = time.perf_counter()
    header, params = codec.read(data)
    jax.block_until_ready(params)
    t1 = time.perf_counter()
    geo = codec.coded_geometry(header, xyz)
    t2 = time.perf_counter()
    codec.colours_at(header, params, pointcloud.normalised(geo))
    t3 = time.perf_counter()
    return {"apply": t_apply, "full": t_full, "bytes": len(data),
            "parts": {"read": t1 - t0, "coded_geometry": t2 - t1, "colours_at": t3 - t2}}


# --- 4. decode memory (subprocess) --------------------------------------------------------------------------

def _rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB from /proc (Linux); falls back to ru_maxrss for both."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024.0, int(fields["VmHWM"].split()[0]) / 1024.0
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return peak, peak


def decode_memory_main(args) -> dict:
    """Decodes --data for the --memory_points cloud of --seed in this process; reports its peak memory."""
    import jax  # noqa: F401  (imported before the baseline is read: the runtime is part of any decoder)

    from nicjax import codec

    with open(args.data, "rb") as f:
        data = f.read()
    xyz = integer_cloud(args.memory_points, args.seed)
    _, baseline = _rss_mib()
    t0 = time.perf_counter()
    rgb = codec.decode(data, codec.DecodeContext(geometry=xyz)).values
    seconds = time.perf_counter() - t0
    if rgb.shape != (args.memory_points, 3):
        raise RuntimeError(f"decoded {rgb.shape}")
    _, hwm = _rss_mib()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    return {"peak_mib": max(hwm, maxrss), "baseline_mib": baseline, "seconds": seconds}


def run_decode_memory(args, width: int, depth: int) -> dict:
    model = siren_model(width, depth)
    xyz = integer_cloud(args.memory_points, args.seed)
    with tempfile.NamedTemporaryFile(suffix=".nic", delete=False) as f:
        f.write(coded_bytes(model, xyz))
        path = f.name
    try:
        return _run_child(["--mode=decode_memory", f"--data={path}", f"--memory_points={args.memory_points}",
                           f"--seed={args.seed}", f"--width={width}", f"--depth={depth}"])
    finally:
        os.unlink(path)


def _run_child(flags, timeout: float = 1800.0) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed", *flags], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT):])
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return {"error": f"exit {proc.returncode}: {tail}"}


# --- 5. PyTorch peer (subprocess) ---------------------------------------------------------------------------

def torch_main(args) -> dict:
    """The nicjax training step in PyTorch: same SIREN, init, minibatch gather, weighted MSE and Adam."""
    try:
        import torch
    except ImportError as e:
        return {"error": f"torch is not importable ({e}); it is benchmark-only: pip install torch==2.13.0 (CPU)"}
    from torch import nn

    torch.set_num_threads(args.torch_threads or os.cpu_count() or 1)
    torch.manual_seed(0)

    class Sine(nn.Module):
        def __init__(self, omega):
            super().__init__()
            self.omega = omega

        def forward(self, x):
            return torch.sin(self.omega * x)

    def build(width, depth):
        layers, fan_in = [], 3
        for i in range(depth + 1):
            out = width if i < depth else 3
            lin = nn.Linear(fan_in, out)
            bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / OMEGA  # Sitzmann et al., as nicjax
            nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.uniform_(lin.bias, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))
            layers.append(lin)
            if i < depth:
                layers.append(Sine(OMEGA))
            fan_in = out
        return nn.Sequential(*layers)

    coords_np, targets_np = training_cloud(args.points, args.seed)
    coords, targets = torch.from_numpy(coords_np), torch.from_numpy(targets_np)
    w = torch.tensor(LOSS_WEIGHTS, dtype=torch.float32)
    n, batch = coords.shape[0], min(args.batch, coords.shape[0])
    k, groups = _groups(args.steps, args.chunk)
    results = {"version": torch.__version__, "threads": torch.get_num_threads()}

    for name, width, depth in _networks(args):
        for compiled in (False, True):
            label = f"{name} {'compile' if compiled else 'eager'}"
            model = build(width, depth)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)

            def loss_of(idx, model=model):
                pred = model(coords[idx])
                per_channel = torch.mean(torch.square(pred - targets[idx]), dim=0)
                return torch.sum(per_channel * w)

            if compiled:  # forward + loss (and so its AOT backward) and the Adam update, as PyTorch recommends
                loss_fn, opt_step = torch.compile(loss_of), torch.compile(opt.step)
            else:
                loss_fn, opt_step = loss_of, opt.step

            def step(loss_fn=loss_fn, opt=opt, opt_step=opt_step):
                idx = torch.randint(0, n, (batch,))
                loss = loss_fn(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt_step()
                return loss.detach()

            t0 = time.perf_counter()
            for _ in range(3):  # compiles (torch.compile) and warms up
                step()
            first = time.perf_counter() - t0

            def group():
                for _ in range(k):
                    loss = step()
                if not math.isfinite(float(loss)):
                    raise RuntimeError(f"torch training diverged ({label})")

            t = _best_of(group, groups)
            results[label] = {"step_s": t["best"] / k, "median_s": t["median"] / k, "cores": t["cores"],
                              "warmup_s": first}
            _log(f"torch {label}: {1e3 * t['best'] / k:.1f} ms/step (warm-up {first:.0f} s)")
    return results


# --- the table ----------------------------------------------------------------------------------------------

def _table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def main_all(args):
    t_start = time.perf_counter()
    import jax

    nets = _networks(args)
    k, groups = _groups(args.steps, args.chunk)
    load0 = os.getloadavg()
    print(f"nicjax speed | {_cpu_name()}, {os.cpu_count()} cores, load average {load0[0]:.2f} at start | "
          f"jax {jax.__version__} ({jax.default_backend()}) | batch {args.batch}, {groups} x {k} timed steps per "
          f"training row (best group), {args.points} points", flush=True)

    _log("matmul peak")
    mm = matmul_peak()
    peak = mm["flops"]
    notes = [f"matmul peak: jitted 2048x2048 f32 jnp matmul, best of 5: {peak / 1e9:.1f} GFLOP/s "
             f"(median {2 * 2048 ** 3 / mm['median'] / 1e9:.1f}, {mm['cores']:.2f} cores busy)"]

    coords, targets = training_cloud(args.points, args.seed)
    train_rows, train = [], {}

    def train_row(label, name, model, r):
        model = model.config  # the SirenConfig: FLOPs and parameters
        flop_step = 3 * model.flops_per_point() * min(args.batch, args.points)
        sps = 1.0 / r["step_s"]
        train_rows.append((label, name, f"{1e3 * r['step_s']:.1f}", f"{1e3 * r['median_s']:.1f}", f"{sps:.2f}",
                           f"{min(args.batch, args.points) * model.num_params() * sps / 1e9:.2f}",
                           f"{flop_step * sps / 1e9:.1f}", f"{100 * flop_step * sps / peak:.0f}%",
                           f"{r['cores']:.2f}"))

    for name, width, depth in nets:
        model = siren_model(width, depth)
        variants = [("nicjax fit._train_chunk", False)] + ([] if args.skip_plain_sin else [("nicjax, jnp.sin", True)])
        for label, plain in variants:
            _log(f"train {name}: {label}")
            r = nicjax_train(model, coords, targets, args, plain_sin=plain)
            train[(name, plain)] = r["step_s"]
            train_row(label, name, model, r)
        if not args.skip_plain_sin:
            notes.append(f"{name}: the fast sine buys {train[(name, True)] / train[(name, False)]:.2f}x per training "
                         f"step (step with jnp.sin / step with fast_sin)")

    if args.skip_torch:
        notes.append("torch rows skipped (--skip_torch)")
    else:
        _log("torch (subprocess)")
        res = _run_child(["--mode=torch", f"--batch={args.batch}", f"--steps={args.steps}", f"--chunk={args.chunk}",
                          f"--points={args.points}", f"--seed={args.seed}", f"--networks={args.networks}",
                          f"--torch_threads={args.torch_threads}"])
        if "error" in res:
            notes.append(f"torch rows skipped: {res['error']}")
        else:
            notes.append(f"torch {res['version']} with {res['threads']} threads; torch.compile warm-up (compile) "
                         + ", ".join(f"{n} {res[n + ' compile']['warmup_s']:.0f} s" for n, _, _ in nets))
            for name, width, depth in nets:
                model = siren_model(width, depth)
                ratios = []
                for kind, label in (("eager", "torch eager"), ("compile", "torch.compile")):
                    r = res[f"{name} {kind}"]
                    train_row(label, name, model, r)
                    ratios.append(f"nicjax / {label} = {train[(name, False)] / r['step_s']:.2f}x")
                notes.append(f"{name}: time per step " + ", ".join(ratios) + " (below 1: nicjax is faster)")

    decode_rows = []

    def decode_row(label, name, model, t, points):
        flops = model.config.flops_per_point()
        pps = points / t["best"]
        decode_rows.append((label, name, f"{1e3 * t['best']:.0f}", f"{1e3 * t['median']:.0f}", f"{pps / 1e6:.3f}",
                            f"{flops * pps / 1e9:.1f}", f"{100 * flops * pps / peak:.0f}%", f"{t['cores']:.2f}"))

    synthetic = integer_cloud(args.points, args.seed)
    for name, width, depth in nets:
        model = siren_model(width, depth)
        _log(f"decode {name}")
        d = nicjax_decode(model, synthetic, args.repeats)
        for label, key in (("Model.evaluate", "apply"), ("codec.decode", "full")):
            decode_row(label, name, model, d[key], args.points)
        parts = ", ".join(f"{p} {1e3 * v:.0f} ms" for p, v in d["parts"].items())
        notes.append(f"{name}: codec.decode of {args.points} points ({d['bytes']} bytes) = {parts}")

    if args.ply:
        from nicjax import configs
        from nicjax.signals import pointcloud

        xyz = pointcloud.read_ply(args.ply).xyz
        default = configs.CodecConfig().model
        model = siren_model(default.width, default.depth)
        name = f"{default.width}x{default.depth}"
        _log(f"decode {name} on {os.path.basename(args.ply)}")
        decode_row(f"codec.decode, {os.path.basename(args.ply)} ({len(xyz)} pts)", name, model,
                   nicjax_decode(model, xyz, args.repeats)["full"], len(xyz))

    _log("decode memory (subprocess)")
    name, width, depth = nets[-1]
    m = run_decode_memory(args, width, depth)
    if "error" in m:
        memory = f"decode memory: failed: {m['error']}"
    else:
        verdict = "under" if m["peak_mib"] < args.memory_limit_mib else "OVER"
        memory = (f"decode memory: codec.decode of {args.memory_points} points with {name} in a fresh "
                  f"process: peak RSS {m['peak_mib']:.0f} MiB, {verdict} {args.memory_limit_mib / 1024:g} GiB "
                  f"(after imports {m['baseline_mib']:.0f} MiB; decode took {m['seconds']:.1f} s)")

    print()
    print("training step (FLOP/s = 3 x forward matmul FLOPs x batch; ms/step: best group, median group)")
    print(_table(("run", "network", "ms/step", "median", "steps/s", "Gpt*param/s", "GFLOP/s", "of peak", "cores"),
                 train_rows))
    print()
    print(f"decoding {args.points} points (best and median of {args.repeats}; FLOP/s = forward matmul FLOPs)")
    print(_table(("run", "network", "ms", "median", "Mpts/s", "GFLOP/s", "of peak", "cores"), decode_rows))
    print()
    print(memory)
    for n in notes:
        print(f"* {n}")
    load1 = os.getloadavg()
    print(f"(benchmark wall time {time.perf_counter() - t_start:.0f} s; load average {load1[0]:.2f} at the end on "
          f"{os.cpu_count()} cores)")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def main(argv=None):
    args = _parse(argv)
    if args.mode == "decode_memory":
        if not args.data:
            raise SystemExit("--mode=decode_memory needs --data (the table's run writes it)")
        print(_RESULT + json.dumps(decode_memory_main(args)), flush=True)
    elif args.mode == "torch":
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # no pool of compile workers to leave behind
        print(_RESULT + json.dumps(torch_main(args)), flush=True)
    else:
        main_all(args)


if __name__ == "__main__":
    main()

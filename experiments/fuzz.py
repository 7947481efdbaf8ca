"""Fuzzing the decoders: damaged and hostile files must give one clean error line, in bounded time and memory.

    python -m experiments.fuzz --cases 10000 --seed 0 --out fuzz.json [--rlimit_gb 2] [--cli 40]

Every kind of valid file (a seeded point cloud, an RGB image (SIREN and latent), a 16-bit grayscale image, a
zeros-reference cloud, a cloud coded against the shipped init artefact, a version-2 cloud file, the pinned golden
version-2 file, a RAHT version-3 file, a cloud coded with latents on its octree) is damaged by bit flips, byte
overwrites, truncations, insertions and header-field tampering (fields parsed from the layout and set to extreme
values: 0, all ones, 2^k, non-minimal varints, ±0/inf/NaN floats), the CRC recomputed each time (what a buggy writer
or an attacker makes), and decoded through the path the CLI takes. Each outcome is one of: error (NicError, one
line), decoded (and the file re-encodes to the same bytes: canonical), crash (any other exception: its type and a
reproducer saved under --reproducers), slow (over --budget seconds), memory (MemoryError). `tests/test_fuzz.py` runs
a few hundred cases of the same harness. --cli N also runs `python -m nicjax.decompress` on N of the damaged files
and checks each failure prints exactly one `error:` line and no traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

from nicjax import codec, codecs, container, container_v2, entropy, entropy_v2, inits, representations
from nicjax.baselines import raht
from nicjax.errors import NicError
from nicjax.representations import siren
from nicjax.signals import image, pointcloud

REGISTRY = representations.REGISTRY
OUTCOMES = ("error", "decoded", "crash", "slow", "memory")


@dataclasses.dataclass
class Sample:
    """A valid file and what its decoder is given."""

    name: str
    data: bytes
    geometry: np.ndarray | None = None  # point clouds
    fields: list = dataclasses.field(default_factory=list)  # (name, start, end, type) of its header fields


def _cloud(points: int = 300, seed: int = 0) -> pointcloud.PointCloud:
    return pointcloud.voxelize(pointcloud.procedural_cloud(num_points=points, seed=seed, bits=6))


def _nic(signal, config, reference: container.Reference, seed: int, ref_params=None, levels: int = 64) -> bytes:
    import jax

    header = container.Header(signal, siren.SIREN.id, config, reference)
    ref = codec.reference_params(header) if ref_params is None else ref_params
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda r: np.asarray(r, np.float32) + rng.normal(0, 0.05, np.shape(r)).astype(
        np.float32), ref)
    return codec.write(header, params, ref, levels)


def _latent(info: container.SignalInfo, geometry, seed: int, flat: bool = False) -> bytes:
    """A latent-representation file on `geometry` (a cloud's, or an image's pixel grid with `flat`): integer latents
    (Laplace-like), a small network around its seeded init."""
    import jax

    from nicjax.representations import latent

    config = latent.for_geometry(latent.LatentConfig(hidden=8, flat=flat), geometry)
    header = container.Header(info, latent.LATENT.id, config, container.Reference(container.REFERENCE_SEEDED,
                                                                                   seed=seed))
    ref = codec.reference_params(header)
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda r: np.asarray(r, np.float32) + rng.normal(0, 0.05, np.shape(r)).astype(
        np.float32), ref)
    for i in range(len(config.counts)):
        name = latent.latent_name(i)
        params[name] = np.round(rng.laplace(0, 2, params[name].shape)).astype(np.float32)
    return codec.write(header, params, ref, 32, geometry=geometry)


def _plain_latent(data: bytes, geometry) -> bytes:
    """The same latent file in the layout before session 9 (no contexts: one factorised sequence per level)."""
    header, tensors = container.decode(data, REGISTRY, geometry)
    plain = dataclasses.replace(header, model=dataclasses.replace(header.model, contexts=False))
    return container.encode(plain, tensors, REGISTRY)


def _v2(data: bytes) -> bytes:
    header, tensors = container.decode(data, REGISTRY)
    return container_v2.encode(header, tensors, REGISTRY)


GOLDEN_V2 = bytes.fromhex("4e4a02203304018053804fac0267452301243ca43cf63c243d2d94099f4319b2b91e506b"
                          "b48f25fe26a63f7b401a6cd49d0d")


def build_samples() -> list[Sample]:
    """One valid file of every kind the decoders read."""
    cloud = _cloud()
    info = pointcloud.to_signal(cloud).info
    small = siren.SirenConfig(width=12, depth=2)
    seeded = _nic(info, small, container.Reference(container.REFERENCE_SEEDED, seed=7), 1)
    zeros = _nic(info, dataclasses.replace(small, omega0=60.0), container.Reference(container.REFERENCE_ZEROS), 2)
    init = inits.load(inits.shipped()[next(iter(inits.shipped()))])
    artefact = _nic(info, init.model, container.Reference(container.REFERENCE_ARTEFACT, id=init.id_bytes), 3,
                    ref_params=init.params, levels=16)
    rgb_info = container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, 8, height=12, width=10)
    rgb = _nic(rgb_info, siren.SirenConfig(in_dim=2, out_dim=3, width=8, depth=2),
               container.Reference(container.REFERENCE_ZEROS), 4)
    gray_info = container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, 16, height=9, width=11)
    gray = _nic(gray_info, siren.SirenConfig(in_dim=2, out_dim=1, width=8, depth=2),
                container.Reference(container.REFERENCE_SEEDED, seed=123456), 5)
    raht_data = raht.encode(cloud.xyz.astype(np.int64), cloud.rgb, 6.0)
    latent_data = _latent(info, cloud.xyz, 8)
    # a latent RGB image (12x10): latents on its pixel grid, which the decoder derives from the header
    latent_image = _latent(container.SignalInfo(container.SIGNAL_IMAGE, container.COLOUR_RGB, 8, height=12, width=10),
                           image.pixel_geometry(12, 10), 9, flat=True)
    samples = [Sample("cloud-seeded", seeded, cloud.xyz), Sample("cloud-zeros", zeros, cloud.xyz),
               Sample("cloud-init", artefact, cloud.xyz), Sample("image-rgb", rgb), Sample("image-gray16", gray),
               Sample("cloud-v2", _v2(seeded), cloud.xyz), Sample("golden-v2", GOLDEN_V2, cloud.xyz),
               Sample("raht-v3", raht_data, cloud.xyz), Sample("cloud-latent", latent_data, cloud.xyz),
               Sample("cloud-latent-plain", _plain_latent(latent_data, cloud.xyz), cloud.xyz),
               Sample("image-latent", latent_image)]
    for s in samples:
        s.fields = header_fields(s.data)
    return samples


# --- the header's layout, for field tampering ---------------------------------------------------------------

def header_fields(data: bytes) -> list[tuple[str, int, int, str]]:
    """(name, start, end, type) of each header field of a valid file; types: byte, varint, u32, f16, bf16, f32,
    id."""
    if data[:2] == raht.MAGIC:
        return [("version", 2, 3, "byte"), ("step", 3, 7, "f32"), ("geometry_crc", 7, 11, "u32")]
    read = container.Reader(data, len(data) - 4, pos=3)
    out = []

    def field(name, kind, parse):
        start = read.pos
        parse()
        out.append((name, start, read.pos, kind))

    def latent_config():
        levels = data[read.pos + 1]
        for name in ("first_scale", "levels", "channels", "layers"):
            field(name, "byte", read.byte)
        field("hidden", "varint", read.varint)
        for i in range(levels):
            field(f"count{i}", "varint", read.varint)

    def siren_config():
        field("dims", "byte", read.byte)
        field("width", "varint", read.varint)
        field("depth", "byte", read.byte)
        field("omega0", "f16", lambda: read.take(2))
        field("omega", "f16", lambda: read.take(2))

    field("version", "byte", lambda: None)
    out[-1] = ("version", 2, 3, "byte")
    flags = data[3]
    field("flags", "byte", read.byte)
    reference = flags >> 5 & 3

    def signal():
        if flags & 3 == container.SIGNAL_POINTCLOUD:
            field("geometry_crc", "u32", lambda: read.take(4))
        else:
            field("height", "varint", read.varint)
            field("width_px", "varint", read.varint)

    def ref():
        if reference == container.REFERENCE_SEEDED:
            field("seed", "varint", read.varint)
        elif reference == container.REFERENCE_ARTEFACT:
            field("init_id", "id", lambda: read.take(8))

    if data[2] == 2:
        siren_config()
        ref()
        signal()
    else:
        signal()
        field("representation", "byte", read.byte)
        (latent_config if data[read.pos - 1] == 1 else siren_config)()
        ref()
    header = codec.read_header(data)
    for i in range(len(header.steps)):
        field(f"step{i}", "bf16", lambda: read.take(2))
    return out


def _extremes(kind: str, rng) -> list[bytes]:
    k = int(rng.integers(0, 36))
    if kind == "byte":
        return [bytes([v]) for v in (0, 1, 0x7F, 0x80, 0xFF, 1 << min(k, 7), int(rng.integers(256)))]
    if kind == "varint":
        values = [0, 1, 99, 100, 4096, 4097, 65535, 65536, 1 << k, (1 << k) - 1, (1 << 32) - 1, 1 << 32,
                  (1 << 35) - 1]
        return ([container.varint(v) for v in values]
                + [b"\x80\x00", b"\x81\x80\x00", b"\xff" * 5, b"\xff" * 6, b"\x80" * 5 + b"\x00"])
    if kind == "u32":
        return [struct.pack("<I", v) for v in (0, 0xFFFFFFFF, 1 << min(k, 31))]
    if kind == "f32":
        return [struct.pack("<f", v) for v in (0.0, -0.0, -6.0, float("inf"), float("-inf"), float("nan"), 3.4e38,
                                                1e-45, 2.0 ** (k - 18))] + [struct.pack("<I", 0x7FC00001)]
    if kind in ("f16", "bf16"):
        bits = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7BFF, 0x0001, 0x3C00, 0xBC00, 0x7F80, 0xFF80, 0x7FC0,
                0x7F7F, 0x0080, 0x3F80, 0xBF80, 1 << min(k, 15)]
        return [struct.pack("<H", b) for b in bits]
    if kind == "id":
        return [b"\0" * 8, b"\xff" * 8, rng.bytes(8)]
    raise ValueError(kind)


# --- damage ----------------------------------------------------------------------------------------------------

def with_crc(body: bytes) -> bytes:
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def mutate(sample: Sample, rng) -> tuple[str, bytes]:
    """(what was done, the damaged file with its CRC recomputed)."""
    body = bytearray(sample.data[:-4])
    how = rng.choice(["flip", "overwrite", "truncate", "insert", "field", "field"])
    if how == "flip":
        n = int(rng.integers(1, 4))
        for _ in range(n):
            pos = int(rng.integers(len(body)))
            body[pos] ^= 1 << int(rng.integers(8))
        return f"flip x{n}", with_crc(bytes(body))
    if how == "overwrite":
        pos, n = int(rng.integers(len(body))), int(rng.integers(1, 5))
        body[pos:pos + n] = rng.bytes(min(n, len(body) - pos))
        return f"overwrite {n}@{pos}", with_crc(bytes(body))
    if how == "truncate":
        cut = int(rng.integers(0, len(body)))
        if rng.random() < 0.5:
            cut = max(0, len(body) - int(rng.integers(1, 9)))  # the payload's end
        return f"truncate to {cut}", with_crc(bytes(body[:cut]))
    if how == "insert":
        pos, n = int(rng.integers(len(body) + 1)), int(rng.integers(1, 9))
        return f"insert {n}@{pos}", with_crc(bytes(body[:pos]) + rng.bytes(n) + bytes(body[pos:]))
    name, start, end, kind = sample.fields[int(rng.integers(len(sample.fields)))]
    options = _extremes(kind, rng)
    value = options[int(rng.integers(len(options)))]
    return f"field {name}={value.hex()}", with_crc(bytes(body[:start]) + value + bytes(body[end:]))


# --- decoding and the oracle -----------------------------------------------------------------------------------

def decode(data: bytes, geometry) -> object:
    """The CLI's path: the codec by the file's magic; point clouds get the geometry (images ignore it)."""
    return codecs.for_file(data).decode(data, codec.DecodeContext(geometry=geometry))


def reencodes(data: bytes, geometry) -> bool:
    """Whether a decoded file is exactly what an encoder writes for what it decoded to."""
    if data[:2] == raht.MAGIC:
        version = data[2]
        payload = data[raht._HEADER.size:-4]
        n = len(geometry)
        arrays = raht._DECODERS[version](payload, [n] * 3, [0, 1, 2])
        encode_ints = entropy.encode_ints if version == 3 else entropy_v2.encode_ints
        _, _, step, crc = raht._HEADER.unpack(data[:raht._HEADER.size])
        return with_crc(raht._HEADER.pack(raht.MAGIC, version, step, crc) + encode_ints(arrays, [0, 1, 2])) == data
    if data[2] != container.VERSION:
        return container_v2.encode(*container.decode(data, REGISTRY), REGISTRY) == data
    # the geometry the payload is coded against: the cloud's, or an image's pixel grid from its header
    header, tensors = container.decode(data, REGISTRY, lambda h: codec.header_geometry(h, geometry))
    return container.encode(header, tensors, REGISTRY, codec.header_geometry(header, geometry)) == data


@dataclasses.dataclass
class Outcome:
    kind: str  # one of OUTCOMES
    seconds: float
    detail: str = ""


def run_case(data: bytes, geometry, budget: float = 5.0) -> Outcome:
    t = time.perf_counter()
    try:
        decode(data, geometry)
    except NicError as e:
        seconds = time.perf_counter() - t
        if "\n" in str(e) or not str(e):
            return Outcome("crash", seconds, f"NicError not one line: {str(e)!r}")
        return Outcome("slow" if seconds > budget else "error", seconds, str(e))
    except MemoryError as e:
        return Outcome("memory", time.perf_counter() - t, repr(e))
    except Exception as e:  # noqa: BLE001: what the fuzzer is for
        return Outcome("crash", time.perf_counter() - t, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    seconds = time.perf_counter() - t
    if not reencodes(data, geometry):
        return Outcome("crash", seconds, "decoded, but the file does not re-encode to the same bytes")
    return Outcome("slow" if seconds > budget else "decoded", seconds)


def cases(samples: list[Sample], n: int, seed: int):
    """n (sample, what was done, damaged bytes), cycling through the samples."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sample = samples[i % len(samples)]
        how, data = mutate(sample, rng)
        yield sample, how, data


# --- the long run ----------------------------------------------------------------------------------------------

def _cli_check(items, workdir: str, cloud_xyz) -> list[dict]:
    """Runs `python -m nicjax.decompress` on damaged files; each failure must print one error line, no traceback."""
    ply = os.path.join(workdir, "geometry.ply")
    pointcloud.write_ply(ply, cloud_xyz, np.zeros((len(cloud_xyz), 3), np.uint8))
    out = []
    for i, (sample, how, data) in enumerate(items):
        path = os.path.join(workdir, f"cli{i}.nic")
        with open(path, "wb") as f:
            f.write(data)
        args = [sys.executable, "-m", "nicjax.decompress", path]
        args += ["--geometry", ply, "-o", os.path.join(workdir, f"cli{i}.ply")] if sample.geometry is not None \
            else ["-o", os.path.join(workdir, f"cli{i}.png")]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        ok = (proc.returncode == 0 and not errors) or (proc.returncode != 0 and len(errors) == 1)
        ok = ok and "Traceback" not in proc.stderr
        out.append(dict(sample=sample.name, how=how, rc=proc.returncode, errors=errors, ok=ok))
        print(f"cli {i + 1}/{len(items)} {sample.name} {how}: rc {proc.returncode} "
              f"{errors[0] if errors else '(decoded)'}{'' if ok else '  <-- BAD'}", flush=True)
    return out


def main(argv):
    from absl import flags

    FLAGS = flags.FLAGS
    if FLAGS.rlimit_gb > 0:
        limit = int(FLAGS.rlimit_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    samples = build_samples()
    os.makedirs(FLAGS.reproducers, exist_ok=True)
    counts = {s.name: dict.fromkeys(OUTCOMES, 0) for s in samples}
    crashes, slowest, cli_items = [], [], []
    t0 = time.perf_counter()
    for i, (sample, how, data) in enumerate(cases(samples, FLAGS.cases, FLAGS.seed)):
        outcome = run_case(data, sample.geometry, FLAGS.budget)
        counts[sample.name][outcome.kind] += 1
        slowest = sorted(slowest + [(outcome.seconds, sample.name, how)], reverse=True)[:5]
        if outcome.kind in ("crash", "slow", "memory"):
            path = os.path.join(FLAGS.reproducers, f"{outcome.kind}-{i}-{sample.name}.bin")
            with open(path, "wb") as f:
                f.write(data)
            crashes.append(dict(case=i, sample=sample.name, how=how, outcome=outcome.kind, detail=outcome.detail,
                                seconds=outcome.seconds, reproducer=path))
            print(f"  {outcome.kind}: case {i} {sample.name} {how}: {outcome.detail} ({outcome.seconds:.2f} s)",
                  flush=True)
        if len(cli_items) < FLAGS.cli and i % max(1, FLAGS.cases // max(FLAGS.cli, 1)) == 0:
            cli_items.append((sample, how, data))
        if (i + 1) % 200 == 0:
            # Every new architecture or ω compiles a new executable and JAX keeps them all: in one process over
            # thousands of tampered headers that alone fills a 2 GB address space (LLVM aborts). A CLI decode is
            # one file per process; here the caches are dropped now and then.
            import jax

            jax.clear_caches()
        if (i + 1) % 500 == 0 or i + 1 == FLAGS.cases:
            total = {k: sum(c[k] for c in counts.values()) for k in OUTCOMES}
            print(f"{i + 1}/{FLAGS.cases} cases in {time.perf_counter() - t0:.0f} s: {total}", flush=True)
    cli = []
    if FLAGS.cli:
        with tempfile.TemporaryDirectory() as workdir:
            cli = _cli_check(cli_items, workdir, samples[0].geometry)
    total = {k: sum(c[k] for c in counts.values()) for k in OUTCOMES}
    summary = dict(cases=FLAGS.cases, seed=FLAGS.seed, budget_s=FLAGS.budget, rlimit_gb=FLAGS.rlimit_gb,
                   peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   seconds=time.perf_counter() - t0, total=total, per_sample=counts, failures=crashes,
                   slowest=[dict(seconds=s, sample=n, how=h) for s, n, h in slowest],
                   cli=dict(runs=len(cli), bad=sum(not c["ok"] for c in cli), decoded=sum(c["rc"] == 0 for c in cli),
                            details=cli))
    print(json.dumps({k: summary[k] for k in ("total", "per_sample", "seconds")}, indent=1))
    print(f"cli: {summary['cli']['runs']} runs, {summary['cli']['bad']} bad, {summary['cli']['decoded']} decoded")
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if crashes or summary["cli"]["bad"] else 0


def _define_flags():
    from absl import flags

    flags.DEFINE_integer("cases", 10_000, "Damaged files to decode.")
    flags.DEFINE_integer("seed", 0, "Seed of the damage.")
    flags.DEFINE_string("out", None, "JSON summary (counts per file kind and outcome, failures, CLI sample).")
    flags.DEFINE_float("budget", 5.0, "Seconds a decode may take.")
    flags.DEFINE_float("rlimit_gb", 2.0, "RLIMIT_AS for this process in GiB (0: none).")
    flags.DEFINE_integer("cli", 40, "Damaged files also run through `python -m nicjax.decompress`.")
    flags.DEFINE_string("reproducers", "fuzz_reproducers", "Folder for the files that crashed, ran slow or ran out "
                        "of memory.")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)

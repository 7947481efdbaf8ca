"""The command-line tools as a user runs them: real processes, real files, exit codes and one-line errors."""

import ast
import configparser
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from conftest import smooth_cloud
from nicjax.signals import pointcloud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--width", "16", "--depth", "2", "--steps", "100", "--levels", "64", "--noprogress"]


def run(module, *args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def error_line(proc):
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    cloud = smooth_cloud(n=1500)
    pointcloud.write_ply(str(d / "cloud.ply"), cloud.xyz, cloud.rgb)
    proc = run("nicjax.compress", "cloud.ply", "-o", "cloud.nic", *FAST, cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "bpp" in proc.stdout and "PSNR" in proc.stdout and "encode" in proc.stdout
    return d, proc.stdout


def test_compress_then_decompress(workdir):
    d, out = workdir
    proc = run("nicjax.decompress", "cloud.nic", "--geometry", "cloud.ply", "-o", "decoded.ply", cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "decode" in proc.stdout
    original = pointcloud.read_ply(str(d / "cloud.ply"))
    decoded = pointcloud.read_ply(str(d / "decoded.ply"))
    np.testing.assert_array_equal(decoded.xyz, original.xyz)
    # the PSNR the encoder printed is the PSNR of what the decoder wrote, measured independently
    proc = run("nicjax.metrics", "cloud.ply", "decoded.ply", cwd=d)
    assert proc.returncode == 0, proc.stderr
    y_metric = float(proc.stdout.split("Y-PSNR")[1].split()[0])
    y_encoder = float(out.split("PSNR")[1].split()[1])
    assert abs(y_metric - y_encoder) < 0.01
    assert (d / "cloud.nic").stat().st_size * 8 / 1500 == pytest.approx(float(out.split("bpp")[1].split()[0]),
                                                                          abs=1e-3)


def test_bad_inputs_give_one_line_and_no_output(workdir, tmp_path):
    d, _ = workdir
    u = np.array([1, 2], np.uint8)
    f = np.array([0.0, 1.0], np.float32)
    from test_pointcloud import write_raw_ply

    write_raw_ply(tmp_path / "nocolour.ply", {"x": f, "y": f, "z": f})
    write_raw_ply(tmp_path / "nan.ply", {"x": np.array([np.nan, 1], np.float32), "y": f, "z": f, "red": u,
                                         "green": u, "blue": u})
    data = (d / "cloud.nic").read_bytes()
    (tmp_path / "damaged.nic").write_bytes(data[:40] + bytes([data[40] ^ 0x10]) + data[41:])
    (tmp_path / "truncated.nic").write_bytes(data[:-7])
    (tmp_path / "wrong.nic").write_bytes(b"hello world, not a nic file")
    other = smooth_cloud(n=1500, seed=5)
    pointcloud.write_ply(str(tmp_path / "other.ply"), other.xyz, other.rgb)
    cloud_nic = str(d / "cloud.nic")
    cases = [
        ("nicjax.compress", [str(tmp_path / "missing.ply"), "-o", "out.nic"], "no such file"),
        ("nicjax.compress", [str(tmp_path / "nocolour.ply"), "-o", "out.nic"], "no colour"),
        ("nicjax.compress", [str(tmp_path / "nan.ply"), "-o", "out.nic"], "non-finite"),
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--levels", "3"], "levels"),
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--qat_steps", "-1"], "qat_steps"),
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--omega0", "30.1"], "float16"),
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--depth", "100"], "cannot be stored"),
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--seed", "-1"], "--seed"),
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--seed", str(2 ** 35)], "--seed"),
        # an init artefact defines the architecture: asking for another one with it is an error, not ignored
        ("nicjax.compress", [str(d / "cloud.ply"), "-o", "out.nic", "--init", "mvub_64x5"], "cannot be used"),
        ("nicjax.decompress", [str(tmp_path / "damaged.nic"), "--geometry", str(d / "cloud.ply"), "-o", "out.ply"],
         "corrupted"),
        ("nicjax.decompress", [str(tmp_path / "truncated.nic"), "--geometry", str(d / "cloud.ply"), "-o",
                               "out.ply"], "truncated"),
        ("nicjax.decompress", [str(tmp_path / "wrong.nic"), "--geometry", str(d / "cloud.ply"), "-o", "out.ply"],
         "not a nicjax file"),
        ("nicjax.decompress", [str(tmp_path / "missing.nic"), "--geometry", str(d / "cloud.ply"), "-o", "out.ply"],
         "no such file"),
        ("nicjax.decompress", [cloud_nic, "--geometry", str(tmp_path / "other.ply"), "-o", "out.ply"],
         "does not match"),
        ("nicjax.decompress", [cloud_nic, "--geometry", str(tmp_path / "nan.ply"), "-o", "out.ply"], "non-finite"),
        ("nicjax.decompress", [cloud_nic, "-o", "out.ply"], "--geometry"),
    ]
    for module, args, message in cases:
        proc = run(module, *((FAST if module == "nicjax.compress" else []) + args), cwd=tmp_path)
        assert proc.returncode != 0, (module, args)
        assert message in error_line(proc), (message, proc.stderr)
        assert not (tmp_path / "out.nic").exists() and not (tmp_path / "out.ply").exists()
        assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary file left either


def test_default_run_needs_no_input(tmp_path):
    """The no-input demo: explained, quick, and it writes nothing unless asked to."""
    import time

    t0 = time.perf_counter()
    proc = run("nicjax.compress", "--noprogress", cwd=tmp_path)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "procedural" in proc.stdout and "psnr0" in proc.stdout and "bits per point" in proc.stdout
    assert os.listdir(tmp_path) == []
    assert seconds < 120, seconds  # the README promises under a minute on 2 cores; twice that on a loaded machine
    proc = run("nicjax.compress", *FAST, "-o", "demo.nic", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo.nic").stat().st_size > 100


def test_raht_baseline_through_the_same_cli(workdir):
    d, _ = workdir
    proc = run("nicjax.compress", "cloud.ply", "-o", "raht.nic", "--codec", "raht", "--raht_step", "16", cwd=d)
    assert proc.returncode == 0, proc.stderr
    y_encoder = float(proc.stdout.split("PSNR")[1].split()[1])
    proc = run("nicjax.decompress", "raht.nic", "--geometry", "cloud.ply", "-o", "raht.ply", cwd=d)
    assert proc.returncode == 0, proc.stderr
    proc = run("nicjax.metrics", "cloud.ply", "raht.ply", cwd=d)
    assert abs(float(proc.stdout.split("Y-PSNR")[1].split()[0]) - y_encoder) < 0.01
    other = smooth_cloud(n=1500, seed=7)
    pointcloud.write_ply(str(d / "other.ply"), other.xyz, other.rgb)
    proc = run("nicjax.decompress", "raht.nic", "--geometry", "other.ply", "-o", "bad.ply", cwd=d)
    assert proc.returncode != 0 and "geometry" in error_line(proc)
    assert not (d / "bad.ply").exists()


def test_omega0_and_quantization_aware_steps_reach_the_file(workdir):
    """The CLI's file is byte for byte the library's with the same settings, and not the file without QAT and the
    rate penalty: a CLI that dropped --qat_steps or --delta_l1 would fail here."""
    import dataclasses

    from nicjax import codec, configs
    from nicjax.representations import siren

    d, _ = workdir
    proc = run("nicjax.compress", "cloud.ply", "-o", "qat.nic", *FAST, "--omega0", "60", "--qat_steps", "20",
               "--delta_l1", "0.3", "--levels", "16", cwd=d)
    assert proc.returncode == 0, proc.stderr
    data = (d / "qat.nic").read_bytes()
    cloud = pointcloud.read_ply(str(d / "cloud.ply"))
    config = configs.CodecConfig(model=siren.SirenConfig(width=16, depth=2, omega0=60.0), levels=16,
                                 fit=configs.FitConfig(steps=100, qat_steps=20, delta_l1=0.3))
    assert codec.compress(cloud, config, progress=False) == data
    for dropped in (dict(qat_steps=0), dict(delta_l1=0.0)):
        other = dataclasses.replace(config, fit=dataclasses.replace(config.fit, **dropped))
        assert codec.compress(cloud, other, progress=False) != data, dropped
    assert codec.read(data)[0].model.omega0 == 60.0
    proc = run("nicjax.decompress", "qat.nic", "--geometry", "cloud.ply", "-o", "qat.ply", cwd=d)
    assert proc.returncode == 0, proc.stderr


def test_latent_representation_through_the_cli(workdir):
    """--representation latent --lambda: the CLI's file is the library's with the latent preset and that λ (and
    not the one with another λ); it decodes through the same decompress; a SIREN flag with it is one error line."""
    import dataclasses

    from nicjax import codec, configs

    d, _ = workdir
    proc = run("nicjax.compress", "cloud.ply", "-o", "latent.nic", "--representation", "latent", "--lambda", "0.0001",
               "--steps", "200", "--latent_noise", "noise", cwd=d)
    assert proc.returncode == 0, proc.stderr
    data = (d / "latent.nic").read_bytes()
    cloud = pointcloud.read_ply(str(d / "cloud.ply"))
    config = dataclasses.replace(configs.LATENT, fit=dataclasses.replace(configs.LATENT.fit, steps=200,
                                                                          rate_lambda=0.0001, latent_noise="noise"))
    assert codec.compress(cloud, config, progress=False) == data
    other = dataclasses.replace(config, fit=dataclasses.replace(config.fit, rate_lambda=0.05))
    assert codec.compress(cloud, other, progress=False) != data
    proc = run("nicjax.decompress", "latent.nic", "--geometry", "cloud.ply", "-o", "latent.ply", cwd=d)
    assert proc.returncode == 0, proc.stderr
    # --levels: the network at that many levels, not the least-cost choice among configs.LATENT_LEVEL_CHOICES
    proc = run("nicjax.compress", "cloud.ply", "-o", "levels.nic", "--representation", "latent", "--lambda", "0.0001",
               "--steps", "200", "--latent_noise", "noise", "--levels", "16", cwd=d)
    assert proc.returncode == 0, proc.stderr
    fixed = dataclasses.replace(config, levels=16, level_choices=())
    assert codec.compress(cloud, fixed, progress=False) == (d / "levels.nic").read_bytes() != data
    proc = run("nicjax.compress", "cloud.ply", "-o", "x.nic", "--representation", "latent", "--width", "32", cwd=d)
    assert proc.returncode != 0 and "--width" in error_line(proc) and not (d / "x.nic").exists()
    # --latent_init zeros: training from zero latents (FitConfig.latent_init), not the default pyramid start
    proc = run("nicjax.compress", "cloud.ply", "-o", "zeros.nic", "--representation", "latent", "--lambda", "0.0001",
               "--steps", "60", "--latent_init", "zeros", cwd=d)
    assert proc.returncode == 0, proc.stderr
    zeros = dataclasses.replace(config, fit=dataclasses.replace(config.fit, steps=60, latent_init="zeros"))
    assert codec.compress(cloud, zeros, progress=False) == (d / "zeros.nic").read_bytes()
    assert codec.compress(cloud, dataclasses.replace(zeros, fit=dataclasses.replace(
        zeros.fit, latent_init="pyramid")), progress=False) != (d / "zeros.nic").read_bytes()
    proc = run("nicjax.compress", "cloud.ply", "-o", "x.nic", "--latent_init", "zeros", cwd=d)
    assert proc.returncode != 0 and "--latent_init" in error_line(proc) and not (d / "x.nic").exists()


def test_rd_sweep_writes_rows_resumes_and_summarises(tmp_path):
    cloud = smooth_cloud(n=800)
    pointcloud.write_ply(str(tmp_path / "tiny.ply"), cloud.xyz, cloud.rgb)
    args = ["--clouds=tiny.ply", "--out=rd", "--networks=8x1", "--omega0s=30,60", "--iterations=20,40",
            "--levels=8,64", "--raht_steps=16,64", "--qat_steps=0,5", "--batch=256", "--reference_dir=none"]
    proc = run("experiments.rd_sweep", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import csv

    with open(tmp_path / "rd" / "rd.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 * 2 + 2  # ω0 × QAT × iterations × levels NIC rows, and the RAHT rows
    for r in rows:  # rates come from the real bytes
        assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / 800, abs=1e-4)
    assert {r["omega0"] for r in rows if r["codec"] == "nic"} == {"30", "60"}
    assert {r["qat_steps"] for r in rows if r["codec"] == "nic"} == {"0", "5"}
    proc = run("experiments.rd_sweep", *args, cwd=tmp_path)  # resumed: nothing left to compute
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "rd" / "rd.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert "fit" not in proc.stderr
    summary = (tmp_path / "rd" / "summary.md").read_text()
    assert "tiny" in summary and (tmp_path / "rd" / "rd_tiny.png").exists()


def test_an_output_that_is_an_input_is_refused_before_any_work(workdir, tmp_path):
    d, _ = workdir
    cloud, nic = str(d / "cloud.ply"), str(d / "cloud.nic")
    before = {p: (d / p).read_bytes() for p in ("cloud.ply", "cloud.nic")}
    os.symlink(cloud, tmp_path / "link.ply")
    os.link(cloud, tmp_path / "hard.ply")
    link, hard = str(tmp_path / "link.ply"), str(tmp_path / "hard.ply")
    cases = [
        ("nicjax.compress", [cloud, "-o", cloud, *FAST], d),
        ("nicjax.compress", ["cloud.ply", "-o", "./cloud.ply", *FAST], d),
        ("nicjax.compress", [cloud, "-o", link, *FAST], d),  # the output is a symlink to the input
        ("nicjax.compress", [link, "-o", cloud, *FAST], d),  # the input is a symlink to the output
        ("nicjax.compress", [cloud, "-o", hard, *FAST], d),  # a hard link: the same inode
        ("nicjax.decompress", [nic, "--geometry", cloud, "-o", cloud], d),
        ("nicjax.decompress", [nic, "--geometry", cloud, "-o", hard], d),
        ("nicjax.decompress", [nic, "--geometry", cloud, "-o", nic], d),
        ("nicjax.decompress", ["cloud.nic", "--geometry", "cloud.ply"], d),  # the default output, cloud.ply
        ("nicjax.decompress", [nic, "--geometry", link, "-o", cloud], d),
    ]
    for module, args, cwd in cases:
        proc = run(module, *args, cwd=cwd)
        assert proc.returncode != 0, (module, args, proc.stdout)
        assert "is the input" in error_line(proc), (args, proc.stderr)
        assert proc.stdout == "", (args, proc.stdout)  # refused before anything was read, trained or decoded
        assert {p: (d / p).read_bytes() for p in before} == before, args
    assert os.path.islink(link) and os.path.samefile(hard, cloud)


def _folder_we_cannot_write(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    candidates = [folder, pathlib.Path("/sys"), pathlib.Path("/proc")]  # root ignores permissions: /sys is a
    for candidate in candidates:                                         # pseudo-filesystem even root cannot
        try:                                                             # create files in
            tempfile.TemporaryFile(dir=candidate).close()
        except OSError:
            return candidate
    pytest.skip("no folder here that this process cannot write in")


def test_an_output_folder_that_is_missing_or_unwritable_is_refused_before_training(workdir, tmp_path):
    d, _ = workdir
    cloud, nic = str(d / "cloud.ply"), str(d / "cloud.nic")
    locked = _folder_we_cannot_write(tmp_path)
    cases = [
        ("nicjax.compress", [cloud, *FAST], "missing/out.nic", "folder missing does not exist"),
        ("nicjax.compress", [cloud, *FAST], str(locked / "out.nic"), f"cannot write in folder {locked}"),
        ("nicjax.decompress", [nic, "--geometry", cloud], "missing/out.ply", "folder missing does not exist"),
        ("nicjax.decompress", [nic, "--geometry", cloud], str(locked / "out.ply"), f"cannot write in folder {locked}"),
    ]
    try:
        for module, args, output, message in cases:
            proc = run(module, *args, "-o", output, cwd=tmp_path)
            assert proc.returncode != 0, (args, output)
            line = error_line(proc)
            assert line.startswith(f"error: {output}: ") and message in line, (message, line)  # the user's path
            assert proc.stdout == "", proc.stdout  # before training
        assert not os.path.exists(tmp_path / "missing")
    finally:
        if locked.is_relative_to(tmp_path):
            locked.chmod(0o700)


def test_an_input_that_is_a_directory_says_so(workdir, tmp_path):
    d, _ = workdir
    (tmp_path / "folder.ply").mkdir()
    (tmp_path / "photos").mkdir()
    cases = [
        ("nicjax.compress", ["folder.ply", "-o", "out.nic", *FAST]),
        ("nicjax.compress", ["photos", "-o", "out.nic", *FAST]),
        ("nicjax.decompress", [str(d / "cloud.nic"), "--geometry", "folder.ply", "-o", "out.ply"]),
        ("nicjax.decompress", ["photos", "-o", "out.png"]),
        ("nicjax.metrics", ["folder.ply", str(d / "cloud.ply")]),
    ]
    for module, args in cases:
        proc = run(module, *args, cwd=tmp_path)
        assert proc.returncode != 0, args
        assert "is a directory" in error_line(proc), (args, proc.stderr)


def run_bytes(module, *args, cwd):
    """`run` without text mode: text mode would turn the progress bar's carriage returns into newlines."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          timeout=300)


def test_no_progress_bar_unless_stderr_is_a_terminal(workdir):
    d, _ = workdir
    tiny = ["--width", "8", "--depth", "1", "--steps", "20", "--levels", "16", "--batch", "256"]
    proc = run_bytes("nicjax.compress", "cloud.ply", "-o", "quiet.nic", *tiny, cwd=d)  # stderr is a pipe here
    assert proc.returncode == 0, proc.stderr
    assert b"\r" not in proc.stderr and b"step" not in proc.stderr, proc.stderr
    proc = run_bytes("nicjax.compress", "cloud.ply", "-o", "loud.nic", *tiny, "--progress", cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert b"\r" in proc.stderr  # asked for: the bar is drawn (so the check above can see one)


def _requirement_names(lines):
    return {re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for line in lines if line.strip() and not line.strip().startswith("#")}


def test_one_list_of_dependencies_that_covers_every_import():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    core = _requirement_names(config["options"]["install_requires"].splitlines())
    extras = {name: _requirement_names(value.splitlines()) for name, value in config["options.extras_require"].items()}
    distribution = {"PIL": "pillow", "absl": "absl-py", "range_coder": "range-coder"}
    imported = set()
    for path in pathlib.Path(ROOT, "nicjax").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "nicjax":
                    imported.add(distribution.get(top, top).lower())
    assert "pillow" in core  # images are a core input of `compress`, not an extra
    assert imported - core <= extras["eval"], imported - core  # nicjax.rd's bjontegaard: the eval extra
    assert not core & set().union(*extras.values())
    with open(os.path.join(ROOT, "requirements.txt")) as f:  # requirements.txt names no package of its own
        lines = [line.strip() for line in f if line.strip() and not line.strip().startswith("#")]
    assert lines and all(re.fullmatch(r"(-e )?\.(\[[a-z,]+\])?", line) for line in lines), lines


def test_console_scripts_run_the_tools():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    scripts = dict(line.split("=") for line in config["options.entry_points"]["console_scripts"].split("\n")
                   if line.strip())
    scripts = {name.strip(): target.strip() for name, target in scripts.items()}
    assert set(scripts) == {"nicjax-compress", "nicjax-decompress", "nicjax-metrics"}
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name, target in scripts.items():
        module, function = target.split(":")
        # what the generated `nicjax-…` script does: import the module and call the function, argv as given
        argv = [name, "missing-file"] + (["missing-file"] if name == "nicjax-metrics" else [])
        code = f"import sys; sys.argv = {argv!r}; from {module} import {function}; {function}()"
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0 and "missing-file" in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr

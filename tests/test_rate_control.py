"""Rate control (nicjax.rate_control): a target in bits per point gives a file within ±5% of it, from real bytes."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import smooth_cloud
from nicjax import codec, configs, rate_control
from nicjax.representations import siren
from nicjax.signals import pointcloud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = configs.CodecConfig(model=siren.SirenConfig(omega0=60.0), fit=configs.FitConfig(steps=60, batch_size=2048))


@pytest.fixture(scope="module")
def cloud():
    return smooth_cloud(n=3000)


@pytest.mark.parametrize("target", [0.5, 2.0])
def test_reached_bpp_is_within_five_percent_of_the_target(cloud, target):
    result, rate = rate_control.compress_cloud_to_bpp(cloud, FAST, target, progress=False)
    assert rate.reached and rate.note == ""
    assert abs(rate.bpp / target - 1) <= 0.05, rate.trials
    assert rate.bpp == result.bits_per_point == 8 * len(result.data) / cloud.num_points
    # the file is what the rate says: its header holds the network the rule chose, and it decodes
    header, _ = codec.read(result.data)
    assert (header.model.width, header.model.depth) == (rate.model.width, rate.model.depth)
    assert (rate.model.width, rate.model.depth) in rate_control.LADDER
    assert header.model.omega0 == 60.0
    assert (codec.decompress(result.data, cloud.xyz) == result.decoded_rgb).all()
    assert rate.trials[rate.levels] == len(result.data)


def test_a_larger_target_gives_a_larger_network_and_file(cloud):
    signal = pointcloud.to_signal(cloud)
    low = rate_control.compress_to_bpp(signal, FAST, 0.5, progress=False)
    high = rate_control.compress_to_bpp(signal, FAST, 2.0, progress=False)
    assert low.model.num_params() < high.model.num_params()
    assert len(low.data) < len(high.data)


def test_an_unreachable_target_is_coded_at_the_nearest_end_and_reported(cloud):
    signal = pointcloud.to_signal(cloud)
    # 0.01 bpp of 3000 points is 30 bits: less than any file's header
    low = rate_control.compress_to_bpp(signal, FAST, 0.01, progress=False)
    assert not low.reached and "below" in low.note
    assert low.levels == rate_control.MIN_LEVELS
    assert (low.model.width, low.model.depth) == rate_control.LADDER[0]
    assert low.bpp > 0.01 * 1.05
    # a fixed 12x2 network cannot spend 50 bits per point at 4096 levels
    fixed = configs.CodecConfig(model=siren.SirenConfig(width=12, depth=2), fit=FAST.fit)
    high = rate_control.compress_to_bpp(signal, fixed, 50.0, choose_network=False, progress=False)
    assert not high.reached and "above" in high.note and "fixed" in high.note
    assert high.levels == rate_control.MAX_LEVELS and (high.model.width, high.model.depth) == (12, 2)
    assert high.bpp < 50 * 0.95


def test_the_levels_search_agrees_with_real_bytes(cloud):
    signal = pointcloud.to_signal(cloud)
    config = configs.CodecConfig(model=siren.SirenConfig(width=20, depth=3), fit=FAST.fit)
    p = codec.plan(signal, config)
    params, _ = codec.train(signal, p, progress=False)

    def size(levels):
        return len(codec.write(p.header, params, p.reference, levels))

    for target_bytes in (300.0, 700.0, 1100.0):
        levels, nbytes, trials = rate_control.search_levels(size, target_bytes)
        assert nbytes == size(levels) and all(trials[n] == size(n) for n in (levels, 4, 4096))
        assert nbytes <= 1.05 * target_bytes
        # the neighbours bracket the target: no other level count gives a file closer to it within +5%
        below, above = size(levels - 1), size(levels + 1)
        assert below <= target_bytes
        assert above > target_bytes or levels == 4096
        if nbytes <= target_bytes:
            assert above > 1.05 * target_bytes or above - target_bytes >= target_bytes - nbytes
        else:
            assert below <= target_bytes < nbytes and nbytes - target_bytes < target_bytes - below


def test_search_levels_finds_the_closest_file_on_a_known_curve():
    def size(levels):  # what bytes look like: ~P·log2(levels) bits
        return int(400 * math.log2(levels))

    for target in (900.0, 2345.0, 3000.0, 4700.0):
        levels, nbytes, trials = rate_control.search_levels(size, target)
        allowed = [n for n in range(4, 4097) if size(n) <= 1.05 * target]
        best = min(allowed, key=lambda n: (abs(size(n) - target), n))
        assert nbytes == size(best) and nbytes == size(levels)
        assert len(trials) <= 16  # bisection, not a scan
    assert rate_control.search_levels(size, 10.0)[0] == 4
    assert rate_control.search_levels(size, 1e6)[0] == 4096


def test_the_network_rule_follows_the_rd_envelope():
    m = siren.SirenConfig(omega0=60.0)
    # rd.csv's envelope: 24x3 at 0.476 bpp on l1 (16,772 points), 48x5 at 0.91 on l2 (66,525), 64x5 at 0.42 on
    # l3 (254,328)
    for points, bpp, net in ((16772, 0.5, (24, 3)), (66525, 0.9, (48, 5)), (254328, 0.42, (64, 5))):
        chosen = rate_control.network_for(bpp * points, m)
        assert (chosen.width, chosen.depth) == net and chosen.omega0 == 60.0
    # monotone in the budget, and every pick spends 4-10 bits per parameter inside the ladder's range
    picks = [rate_control.network_for(bits, m) for bits in np.geomspace(3000, 300000, 40)]
    sizes = [c.num_params() for c in picks]
    assert sizes == sorted(sizes)
    for bits, c in zip(np.geomspace(3000, 300000, 40), picks):
        assert 4 <= bits / rate_control.num_params(c, 3, 3) <= 10
    with pytest.raises(ValueError):
        rate_control.network_for(0, m)


def test_quantization_aware_steps_are_rechecked_against_the_target(cloud):
    signal = pointcloud.to_signal(cloud)
    config = configs.CodecConfig(model=FAST.model, fit=configs.FitConfig(steps=60, batch_size=2048, qat_steps=20))
    rate = rate_control.compress_to_bpp(signal, config, 1.0, progress=False)
    assert rate.qat in ("kept", "not better", "over target")
    assert rate.reached and abs(rate.bpp - 1.0) <= 0.05
    plain = rate.trials[rate.levels]
    if rate.qat == "kept":
        assert len(rate.data) <= 1.05 * rate.target_bytes
    else:
        assert len(rate.data) == plain


def _run(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "nicjax.compress", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_cli_prints_the_reached_rate_and_refuses_bad_targets(tmp_path):
    c = smooth_cloud(n=1500)
    pointcloud.write_ply(str(tmp_path / "c.ply"), c.xyz, c.rgb)
    proc = _run("c.ply", "-o", "c.nic", "--bpp", "1.5", "--steps", "40", "--noprogress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("rate"))
    reached = float(line.split()[1])
    assert abs(reached / 1.5 - 1) <= 0.05 and "target of 1.5" in line and "levels" in line
    assert reached == pytest.approx(8 * (tmp_path / "c.nic").stat().st_size / 1500, abs=1e-4)
    for bad, says in ((["--bpp", "0"], "positive"), (["--bpp", "-2"], "positive"),
                      (["--bpp", "1", "--codec", "raht"], "raht"), (["--bpp", "1", "--levels", "64"], "levels")):
        proc = _run("c.ply", "-o", "x.nic", *bad, "--steps", "10", cwd=tmp_path)
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and says in errors[0], proc.stderr
        assert not (tmp_path / "x.nic").exists()
    proc = _run("c.ply", "-o", "u.nic", "--bpp", "0.01", "--steps", "10", "--noprogress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(l.startswith("note") and "below" in l for l in proc.stdout.splitlines())


SMALL = configs.CodecConfig(model=siren.SirenConfig(width=16, depth=2, omega0=60.0),
                            fit=configs.FitConfig(steps=150, batch_size=2048))


def test_a_psnr_target_is_reached_with_the_fewest_levels(cloud):
    """--psnr: the decoded file reaches the target, and one level fewer would not (every trial decoded from its
    bytes); the PSNR reported is the decoder's."""
    signal = codec.cloud_signal(cloud)
    p = codec.plan(signal, SMALL)
    params, _ = codec.train(signal, p, progress=False)
    at = {n: rate_control.decoded_psnr(signal, codec.write(p.header, params, p.reference, n)) for n in (4, 4096)}
    target = 0.5 * (at[4] + at[4096])
    result, q = rate_control.compress_cloud_to_psnr(cloud, SMALL, target, progress=False)
    assert q.reached and q.note == "" and 4 < q.levels < 4096
    assert result.psnr["y"] == pytest.approx(q.psnr_db) and q.psnr_db >= target
    below = rate_control.decoded_psnr(signal, codec.write(p.header, params, p.reference, q.levels - 1))
    assert below < target
    assert q.trials[q.levels] == pytest.approx(q.psnr_db)


def test_an_unreachable_psnr_is_coded_at_the_most_levels_and_reported(cloud):
    result, q = rate_control.compress_cloud_to_psnr(cloud, SMALL, 90.0, progress=False)
    assert not q.reached and q.levels == 4096 and "above what" in q.note
    assert (codec.decompress(result.data, cloud.xyz) == result.decoded_rgb).all()
    with pytest.raises(ValueError, match="--psnr"):
        rate_control.check_psnr_target(-3)

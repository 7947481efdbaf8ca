import os
import signal
import subprocess
import sys

import numpy as np
import plyfile
import pytest

from nicjax.errors import NicError
from nicjax.signals import pointcloud


def write_raw_ply(path, columns, text=False):
    dtype = [(name, arr.dtype.str) for name, arr in columns.items()]
    n = len(next(iter(columns.values())))
    v = np.empty(n, dtype=dtype)
    for name, arr in columns.items():
        v[name] = arr
    plyfile.PlyData([plyfile.PlyElement.describe(v, "vertex")], text=text).write(str(path))


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, small_cloud, binary):
    path = tmp_path / "c.ply"
    pointcloud.write_ply(str(path), small_cloud.xyz, small_cloud.rgb, binary=binary)
    back = pointcloud.read_ply(str(path))
    np.testing.assert_array_equal(back.xyz, small_cloud.xyz)
    np.testing.assert_array_equal(back.rgb, small_cloud.rgb)
    assert back.rgb.dtype == np.uint8


def test_integer_coordinates_and_ushort_colours(tmp_path):
    xyz = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    rgb = np.array([[0, 1000, 65535], [7, 8, 9]], np.uint16)
    write_raw_ply(tmp_path / "c.ply", {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
                                       "red": rgb[:, 0], "green": rgb[:, 1], "blue": rgb[:, 2]}, text=True)
    cloud = pointcloud.read_ply(str(tmp_path / "c.ply"))
    assert cloud.colour_bits == 16
    np.testing.assert_array_equal(cloud.rgb, rgb)
    np.testing.assert_array_equal(cloud.xyz, xyz)


def test_invalid_inputs_fail_with_one_line(tmp_path):
    f = np.array([0.0, 1.0], np.float32)
    u = np.array([1, 2], np.uint8)
    write_raw_ply(tmp_path / "nocolour.ply", {"x": f, "y": f, "z": f})
    write_raw_ply(tmp_path / "nan.ply", {"x": np.array([0.0, np.nan], np.float32), "y": f, "z": f,
                                         "red": u, "green": u, "blue": u})
    write_raw_ply(tmp_path / "empty.ply", {"x": f[:0], "y": f[:0], "z": f[:0], "red": u[:0], "green": u[:0],
                                           "blue": u[:0]})
    (tmp_path / "junk.ply").write_bytes(b"this is not a ply file\n")
    cases = {"nocolour.ply": "no colour", "nan.ply": "non-finite", "empty.ply": "empty", "junk.ply": "PLY",
             "missing.ply": "no such file"}
    for name, message in cases.items():
        with pytest.raises(NicError, match=message) as e:
            pointcloud.read_ply(str(tmp_path / name))
        assert "\n" not in str(e.value)


def test_voxelize_merges_duplicates_by_averaging():
    cloud = pointcloud.PointCloud(xyz=np.array([[0.2, 0, 0], [-0.3, 0.1, 0], [5, 5, 5.4]]),
                                  rgb=np.array([[10, 20, 30], [20, 40, 61], [1, 2, 3]], np.uint8))
    vox = pointcloud.voxelize(cloud)
    np.testing.assert_array_equal(vox.xyz, [[0, 0, 0], [5, 5, 5]])
    np.testing.assert_array_equal(vox.rgb, [[15, 30, 46], [1, 2, 3]])
    np.testing.assert_array_equal(pointcloud.voxelize_geometry(cloud.xyz), vox.xyz)


def test_normalisation_maps_into_unit_cube(small_cloud):
    offset, scale = pointcloud.normalisation(small_cloud.xyz * 7.3 + 1e5)
    coords = pointcloud.normalise(small_cloud.xyz * 7.3 + 1e5, offset, scale)
    assert np.abs(coords).max() <= 1.0 and np.abs(coords).max() > 0.99


def test_geometry_hash_ignores_order_but_not_coordinates(small_cloud):
    xyz = small_cloud.xyz
    assert pointcloud.geometry_hash(xyz) == pointcloud.geometry_hash(xyz[::-1])
    moved = xyz.copy()
    moved[7, 2] += 1
    assert pointcloud.geometry_hash(xyz) != pointcloud.geometry_hash(moved)
    assert pointcloud.geometry_hash(xyz) != pointcloud.geometry_hash(xyz[1:])
    signed = xyz.copy()
    signed[0] = 0.0
    negative = signed.copy()
    negative[0] = -0.0
    assert pointcloud.geometry_hash(signed) == pointcloud.geometry_hash(negative)  # the same point


def test_geometry_id_ignores_order_but_not_coordinates(small_cloud):
    xyz = small_cloud.xyz
    assert pointcloud.geometry_id(xyz) == pointcloud.geometry_id(xyz[::-1])
    moved = xyz.copy()
    moved[0, 0] += 1
    assert pointcloud.geometry_id(xyz) != pointcloud.geometry_id(moved)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A process that writes half of a file through atomic_write, says so, then hangs until it is killed.
_HALF_WRITE = """
import os, sys, time
if sys.argv[2] == "named":
    del os.O_TMPFILE  # as on a system or filesystem without O_TMPFILE: the named fallback
from nicjax.signals import pointcloud
def write(f):
    f.write(b"half of the new file")
    f.flush()
    print("writing", flush=True)
    time.sleep(300)
pointcloud.atomic_write(sys.argv[1], write)
"""


def _kill_while_writing(target, mode):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _HALF_WRITE, str(target), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="no O_TMPFILE on this system")
def test_killed_while_writing_leaves_nothing_behind(tmp_path):
    _kill_while_writing(tmp_path / "new.ply", "unnamed")
    assert os.listdir(tmp_path) == []  # no output, no temporary file
    (tmp_path / "old.ply").write_bytes(b"the user's file")
    _kill_while_writing(tmp_path / "old.ply", "unnamed")
    assert os.listdir(tmp_path) == ["old.ply"]
    assert (tmp_path / "old.ply").read_bytes() == b"the user's file"  # untouched


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    (tmp_path / "old.ply").write_bytes(b"the user's file")
    _kill_while_writing(tmp_path / "old.ply", "named")  # without O_TMPFILE the kill leaves a named file ...
    left = [p for p in os.listdir(tmp_path) if p != "old.ply"]
    assert len(left) == 1 and left[0].startswith(".nicjax-tmp-"), left
    assert (tmp_path / "old.ply").read_bytes() == b"the user's file"
    pointcloud.atomic_write(str(tmp_path / "other.ply"), lambda f: f.write(b"new"))  # ... the next write removes it
    assert sorted(os.listdir(tmp_path)) == ["old.ply", "other.ply"]


@pytest.mark.parametrize("unnamed", [True, False])
def test_atomic_write_replaces_whole_files_or_nothing(tmp_path, monkeypatch, unnamed):
    if not unnamed:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    target = tmp_path / "out.ply"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)

    def fails(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        pointcloud.atomic_write(str(target), fails)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.ply"]
    pointcloud.atomic_write(str(target), lambda f: f.write(b"new contents"))
    assert target.read_bytes() == b"new contents" and os.listdir(tmp_path) == ["out.ply"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # the permissions `open` would give a new file


def test_reading_a_directory_says_so(tmp_path):
    with pytest.raises(NicError, match="is a directory"):
        pointcloud.read_ply(str(tmp_path))
    with pytest.raises(NicError, match="is a directory"):
        pointcloud.read_geometry(str(tmp_path))

import numpy as np
import pytest

from nicjax.signals.pointcloud import PointCloud


def smooth_cloud(n=3000, seed=0, grid=48):
    """A small voxelized patch of a sphere-ish surface with smooth colours: learnable in seconds."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, grid, size=(n * 3, 3))
    pts = np.unique(pts, axis=0)[:n]
    t = pts / grid
    rgb = np.stack([128 + 80 * np.sin(3 * t[:, 0] + t[:, 1]),
                    128 + 70 * np.cos(2 * t[:, 1] - t[:, 2]),
                    128 + 60 * np.sin(2 * t[:, 2] + 2 * t[:, 0])], axis=1)
    return PointCloud(xyz=pts.astype(np.float64), rgb=np.rint(rgb).astype(np.uint8))


@pytest.fixture
def small_cloud():
    return smooth_cloud()

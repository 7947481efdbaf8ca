import jax
import numpy as np

from nicjax import configs, fit
from nicjax.representations import base, siren


def _fit(monkeypatch, rows):
    monkeypatch.setattr(base, "rows_per_piece", lambda width: rows)
    model = siren.model(siren.SirenConfig(width=32, depth=2))
    rng = np.random.default_rng(0)
    coords = rng.uniform(-1, 1, (5000, 3)).astype(np.float32)
    targets = (0.3 * np.sin(3 * coords)).astype(np.float32)
    # a fresh config object per call so the jit cache cannot hand back the other variant's compilation
    config = configs.FitConfig(steps=40, batch_size=2048, learning_rate=1e-3, steps_per_call=20 if rows else 40)
    params, history = fit.fit(model, model.init(jax.random.key(0)), coords, targets, config,
                              progress=False)
    return params, history["per_channel_mse"]


def test_cache_sized_pieces_give_the_same_training(monkeypatch):
    whole, h_whole = _fit(monkeypatch, None)
    pieces, h_pieces = _fit(monkeypatch, 512)
    np.testing.assert_allclose(h_whole, h_pieces, rtol=1e-4)
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(pieces)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)
    assert h_whole[-1].sum() < 0.5 * h_whole[0].sum()  # and it trains


def test_micro_batches_divide_the_batch(monkeypatch):
    model = siren.model(siren.SirenConfig(width=64))
    monkeypatch.setattr(base, "rows_per_piece", lambda width: 1024)
    assert fit.micro_batches(16384, model) == 16
    assert fit.micro_batches(3000, model) in (2, 3)
    assert 3000 % fit.micro_batches(3000, model) == 0
    assert fit.micro_batches(500, model) == 1
    monkeypatch.setattr(base, "rows_per_piece", lambda width: None)
    assert fit.micro_batches(16384, model) == 1

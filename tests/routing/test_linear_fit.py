"""The router's logistic fit converges in its iteration budget, its least-squares fit
(answer lengths) reaches the ridge solution, and the vocabulary drops
words seen in too few training prompts (at fit and decision time alike)."""

from __future__ import annotations

import numpy as np

from thrifty.routing.features import MIN_DF, Featurizer, text_features, to_csr
from thrifty.routing.linear import SparseRows, _sigmoid, fit_least_squares, fit_logistic


def _problem(n: int = 400, k: int = 60, seed: int = 0) -> tuple[SparseRows, np.ndarray]:
    """Sparse rows (8 of ``k`` columns each, plus a bias) and noisy labels of a known
    linear rule."""
    rng = np.random.default_rng(seed)
    cols = [np.r_[np.sort(rng.choice(k, 8, replace=False)), k] for _ in range(n)]
    vals = [np.r_[rng.random(8) / 3, 1.0] for _ in range(n)]
    x = SparseRows(*to_csr(list(zip(cols, vals, strict=True))))
    truth = rng.normal(size=(x.width, 1)).astype(np.float32) * 3
    labels = (rng.random((n, 1)) < _sigmoid(x.dot(truth))).astype(np.float64)
    return x, labels


def _gradient_norm(x: SparseRows, w: np.ndarray, y: np.ndarray, l2: float) -> float:
    scaled = np.full_like(y, 1.0 / len(y), dtype=np.float32)
    return float(np.linalg.norm(x.tdot(scaled * (_sigmoid(x.dot(w)) - y)) + l2 * w))


def _dense(x: SparseRows) -> np.ndarray:
    out = np.zeros((x.n, x.width))
    for i in range(x.n):
        span = slice(x.indptr[i], x.indptr[i + 1])
        out[i, x.col[span]] = x.values[span]
    return out


def test_the_fit_reaches_a_stationary_point() -> None:
    x, y = _problem()
    start = _gradient_norm(x, np.zeros((x.width, 1), np.float32), y, 1e-4)
    w = fit_logistic(x, y, np.ones_like(y))
    assert _gradient_norm(x, w, y, 1e-4) < 0.005 * start  # 60 steps: 0.008


def test_the_products_match_dense_algebra() -> None:
    x, _ = _problem(n=50, k=20, seed=1)
    dense = _dense(x)
    w = np.random.default_rng(2).normal(size=(x.width, 3))
    r = np.random.default_rng(3).normal(size=(x.n, 3))
    np.testing.assert_allclose(x.dot(w), dense @ w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(x.tdot(r), dense.T @ r, rtol=1e-4, atol=1e-5)


def test_rare_words_are_dropped_from_every_row() -> None:
    texts = ["alpha beta", "alpha gamma", "alpha delta", "beta zeta"]
    parts = [text_features(t) for t in texts]
    shapes = np.array([s for _, s in parts])
    featurizer = Featurizer.fit([c for c, _ in parts], shapes, use_tags=False, min_df=MIN_DF)
    (alpha,), _ = text_features("alpha")[0]
    (beta,), _ = text_features("beta")[0]
    assert alpha in featurizer.idf_slots and beta not in featurizer.idf_slots  # 3 vs 2 prompts
    slots, _ = featurizer.row(*text_features("alpha beta unseen"), {})
    assert alpha in slots and beta not in slots
    reloaded = Featurizer.from_arrays(featurizer.arrays())
    assert reloaded.min_df == MIN_DF
    again, _ = reloaded.row(*text_features("alpha beta unseen"), {})
    np.testing.assert_array_equal(again, slots)


def test_a_file_saved_before_pruning_keeps_unseen_words() -> None:
    parts = [text_features(t) for t in ("alpha beta", "alpha")]
    featurizer = Featurizer.fit(
        [c for c, _ in parts], np.array([s for _, s in parts]), use_tags=False
    )
    old = {k: v for k, v in featurizer.arrays().items() if k != "min_df"}
    (unseen,), _ = text_features("unseen")[0]
    slots, _ = Featurizer.from_arrays(old).row(*text_features("alpha unseen"), {})
    assert unseen in slots


def test_the_least_squares_fit_reaches_the_ridge_solution() -> None:
    x, _ = _problem(n=300, k=30, seed=4)
    dense = _dense(x)
    rng = np.random.default_rng(5)
    y = dense @ rng.normal(size=(x.width, 1)) + 0.1 * rng.normal(size=(x.n, 1))
    l2 = 1e-2
    exact = np.linalg.solve(dense.T @ dense / x.n + l2 * np.eye(x.width), dense.T @ y / x.n)
    w = fit_least_squares(x, y, np.ones_like(y), l2=l2)  # the length model's 100 steps
    fitted, best = dense @ w, dense @ exact
    assert np.mean((fitted - y) ** 2) < 1.02 * np.mean((best - y) ** 2) + 1e-6


def test_a_fit_on_some_rows_widens_back_to_every_column() -> None:
    x, y = _problem(n=200, k=40, seed=6)
    rows = np.arange(0, 200, 3)
    part = x.take(rows)
    assert part.n == len(rows) and part.k <= x.k
    w = fit_logistic(part, y[rows], np.ones_like(y[rows]))
    np.testing.assert_allclose(x.dot(x.widen(part, w))[rows], part.dot(w), rtol=1e-5, atol=1e-5)

"""Many L2-regularised logistic (or least-squares) regressions at once, on sparse rows, in
plain numpy.

Each *head* h has its own targets (soft labels in [0, 1]) and its own row weights
(0 leaves a row out: that is how the cross-fitting folds are trained together), and
minimises its weighted mean cross-entropy + ``l2``/2 · ‖w_h‖². Nesterov's accelerated
gradient with the step 1/L, L = ¼ · the largest eigenvalue over heads of the weighted
Xᵀ X (power iteration, with a safety factor; never above the row-norm bound) + l2: no
learning rate to tune, deterministic. The row-norm bound alone is ~2.6× loose on
prompts, i.e. a step that small leaves the fit far from converged (issue #19).

Why not scikit-learn: it is not installed in the core (it would add scipy, ~100 MB);
this is the one estimator the router needs and it costs ~130 lines.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class SparseRows:
    """CSR rows with their columns renumbered 0..k-1 (``columns`` = the original slots),
    plus an optional dense block (an embedding) whose weights follow the sparse ones."""

    def __init__(
        self,
        indptr: np.ndarray,
        slots: np.ndarray,
        values: np.ndarray,
        dense: np.ndarray | None = None,
    ) -> None:
        self.columns, col = np.unique(slots, return_inverse=True)
        self.col = col.astype(np.int32)  # int32 indices: half the memory of the defaults
        self.indptr = indptr
        self.values = values.astype(np.float32)
        self.n = len(indptr) - 1
        self.row_of = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(indptr))
        order = np.argsort(self.col, kind="stable").astype(np.int32)
        self.t_values = self.values[order, None]  # the same entries, by column (CSC)
        self.t_rows = self.row_of[order]
        sorted_col = self.col[order]
        self.col_starts = np.flatnonzero(np.r_[True, sorted_col[1:] != sorted_col[:-1]])
        del order, sorted_col
        self.sq_norms = np.bincount(self.row_of, weights=self.values**2, minlength=self.n)
        self.dense = None if dense is None else dense.astype(np.float32)
        self.k = len(self.columns)
        self._buffer: np.ndarray | None = None  # (nnz, heads) scratch for the products
        if self.dense is not None:
            self.sq_norms = self.sq_norms + (self.dense.astype(np.float64) ** 2).sum(axis=1)

    def take(self, rows: np.ndarray) -> SparseRows:
        """These ``rows`` alone (columns renumbered to theirs; :meth:`widen` maps a fit on
        them back to this matrix's columns)."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        entries = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        indptr = np.r_[0, np.cumsum(ends - starts)]
        dense = None if self.dense is None else self.dense[rows]
        return SparseRows(indptr, self.columns[self.col[entries]], self.values[entries], dense)

    def widen(self, part: SparseRows, weights: np.ndarray) -> np.ndarray:
        """Weights fitted on ``part`` (from :meth:`take`) in this matrix's columns (0 for a
        column ``part`` never saw)."""
        out = np.zeros((self.width, *weights.shape[1:]), dtype=weights.dtype)
        out[np.searchsorted(self.columns, part.columns)] = weights[: part.k]
        if self.dense is not None:
            out[self.k :] = weights[part.k :]
        return out

    @property
    def width(self) -> int:
        return self.k + (0 if self.dense is None else self.dense.shape[1])

    def _products(
        self, source: np.ndarray, index: np.ndarray, scale: np.ndarray, starts: np.ndarray
    ) -> np.ndarray:
        """Σ over each segment of ``scale · source[index]``, gathered into one reused
        float32 buffer (no temporaries: the solver calls this twice per iteration)."""
        source = np.asarray(source, dtype=np.float32)
        heads = source.shape[1]
        if self._buffer is None or self._buffer.shape[1] != heads:
            self._buffer = np.empty((len(index), heads), dtype=np.float32)
        buffer = self._buffer
        np.take(source, index, axis=0, out=buffer, mode="clip")  # "raise" copies `out` again
        np.multiply(buffer, scale, out=buffer)
        return np.add.reduceat(buffer, starts, axis=0)

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """(n, heads) = X @ W."""
        out = self._products(weights[: self.k], self.col, self.values[:, None], self.indptr[:-1])
        if self.dense is not None:
            out += self.dense @ weights[self.k :]
        return out

    def tdot(self, residual: np.ndarray) -> np.ndarray:
        """(width, heads) = Xᵀ @ R."""
        out = self._products(residual, self.t_rows, self.t_values, self.col_starts)
        if self.dense is not None:
            out = np.vstack([out, self.dense.T @ residual])
        return out


SAFETY = 1.5  # the power iteration approaches the top eigenvalue from below
POWER_STEPS = 4


def _top_eigenvalue(x: SparseRows, scaled: np.ndarray) -> float:
    """The largest eigenvalue over heads of Xᵀ diag(scaled_h) X, by power iteration
    (``POWER_STEPS`` products, started from the weighted mean row: close to the top
    eigenvector already, since every row has a positive bias entry)."""
    v = x.tdot(scaled)
    top = 0.0
    for _ in range(POWER_STEPS):
        u = x.tdot(scaled * x.dot(v))
        norms = np.linalg.norm(u, axis=0)
        top = float((norms / np.maximum(np.linalg.norm(v, axis=0), 1e-12)).max())
        v = u / np.maximum(norms, 1e-12)
    return top


def fit_logistic(
    x: SparseRows,
    targets: np.ndarray,
    row_weights: np.ndarray,
    l2: float | np.ndarray = 1e-4,
    iterations: int = 100,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """Weights (width, heads): ``x.columns`` then the dense block; ``targets``,
    ``row_weights``: (n, heads). ``offset`` (n, heads), added to every logit, is a prior's
    prediction: the L2 penalty then shrinks the fit towards the prior, not towards 0.5."""
    return _fit(x, targets, row_weights, l2, iterations, offset, logistic=True)


def fit_least_squares(
    x: SparseRows,
    targets: np.ndarray,
    row_weights: np.ndarray,
    l2: float | np.ndarray = 1e-4,
    iterations: int = 100,
) -> np.ndarray:
    """Ridge regression by the same solver: weighted mean squared error / 2 + ``l2``/2 ·
    ‖w_h‖² per head (the router's answer-length model, ``lengths.py``)."""
    return _fit(x, targets, row_weights, l2, iterations, None, logistic=False)


def _fit(
    x: SparseRows,
    targets: np.ndarray,
    row_weights: np.ndarray,
    l2: float | np.ndarray,
    iterations: int,
    offset: np.ndarray | None,
    logistic: bool,
) -> np.ndarray:
    heads = targets.shape[1]
    totals = np.maximum(row_weights.sum(axis=0), 1e-12)
    scaled = (row_weights / totals).astype(np.float32)  # each head: a weighted mean
    curvature = 0.25 if logistic else 1.0  # the loss's largest second derivative
    bound = curvature * float((scaled * x.sq_norms[:, None]).sum(axis=0).max())
    penalty = np.asarray(l2, dtype=np.float32)  # a number, or one per head
    top = SAFETY * curvature * _top_eigenvalue(x, scaled)
    step = 1.0 / (min(bound, top) + float(penalty.max()))
    w = np.zeros((x.width, heads), dtype=np.float32)
    previous = w
    y = targets.astype(np.float32)
    base = np.zeros((1, heads), np.float32) if offset is None else offset.astype(np.float32)
    link = _sigmoid if logistic else (lambda z: z)
    for t in range(1, iterations + 1):
        look = w + ((t - 1) / (t + 2)) * (w - previous)
        gradient = x.tdot(scaled * (link(x.dot(look) + base) - y)) + penalty * look
        previous, w = w, look - step * gradient
    return w

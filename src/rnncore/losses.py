"""Losses with explicit forward and backward."""

from __future__ import annotations

import numpy as np

from . import _checks, _core


class SoftmaxCrossEntropy:
    """Softmax cross-entropy over the last axis of logits (..., V) against integer targets
    (...). Stable (max subtracted, log-sum-exp), computed natively in one pass.

    Positions whose target equals ``ignore_index`` count for nothing. ``reduction`` is
    "mean" (over counted positions) or "sum". ``forward`` returns the loss as a Python
    float; ``backward()`` returns d(loss)/d(logits)."""

    def __init__(self, ignore_index=-100, reduction="mean"):
        self.ignore_index = int(ignore_index)
        self.reduction = _checks.one_of("reduction", reduction, ("mean", "sum"))
        self._saved = None

    def __call__(self, logits, targets):
        return self.forward(logits, targets)

    def forward(self, logits, targets):
        if not isinstance(logits, np.ndarray) or logits.ndim < 1:
            raise TypeError("logits: expected a numpy.ndarray (..., V) of float32 or float64")
        if logits.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError(f"logits: expected float32 or float64 array, got {logits.dtype}")
        if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
            raise TypeError("targets: expected an integer numpy.ndarray")
        if targets.shape != logits.shape[:-1]:
            raise ValueError(f"targets: expected shape {logits.shape[:-1]} (logits without its last "
                             f"axis), got {targets.shape}")
        V = logits.shape[-1]
        z = np.ascontiguousarray(logits).reshape(-1, V)
        t = np.ascontiguousarray(targets, dtype=np.int64).reshape(-1)
        loss_rows, probs = _core.softmax_xent_forward(z, t, self.ignore_index)
        count = int(np.count_nonzero(t != self.ignore_index))
        self._saved = (probs, t, count, logits.shape)
        total = float(loss_rows.sum(dtype=np.float64))
        if self.reduction == "sum":
            return total
        return total / count if count else 0.0

    @property
    def probs(self):
        """Softmax probabilities of the last forward, shaped like its logits."""
        probs, _, _, shape = self._saved
        return probs.reshape(shape)

    def backward(self, scale=1.0):
        """d(scale * loss)/d(logits), shaped like the logits."""
        if self._saved is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        probs, t, count, shape = self._saved
        if self.reduction == "mean":
            scale = scale / count if count else 0.0
        return _core.softmax_xent_backward(probs, t, self.ignore_index, scale).reshape(shape)

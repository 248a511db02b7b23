"""Losses with explicit forward and backward: forward returns the loss as a Python float
and saves what backward needs; backward returns d(loss)/d(prediction)."""

from __future__ import annotations

import numpy as np

from . import _checks, backends


class SoftmaxCrossEntropy:
    """Softmax cross-entropy over the last axis of logits (..., V) against integer targets
    (...), computed natively in one pass (max subtracted, log-sum-exp: no overflow).

    Positions whose target equals ``ignore_index``, or where ``mask`` (same shape as
    targets, boolean) is False, count for nothing and get a zero gradient. ``reduction``
    is "mean" (over counted positions; 0 when there are none) or "sum". ``backend``:
    "native" (default) or "reference" (NumPy)."""

    def __init__(self, ignore_index=-100, reduction="mean", *, backend=None):
        self.ignore_index = int(ignore_index)
        self.reduction = _checks.one_of("reduction", reduction, ("mean", "sum"))
        self.backend, self._ops = backends.resolve_ops(backend)
        self._saved = None

    def __call__(self, logits, targets, mask=None):
        return self.forward(logits, targets, mask)

    def forward(self, logits, targets, mask=None):
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
        if V == 0:
            raise ValueError("logits: the class axis is empty")
        t = np.array(targets, dtype=np.int64).reshape(-1)
        if mask is not None:
            if not isinstance(mask, np.ndarray) or mask.shape != targets.shape:
                raise ValueError(f"mask: expected a boolean array of shape {targets.shape}")
            if mask.dtype != np.bool_:
                raise TypeError(f"mask: expected a boolean array, got {mask.dtype}")
            t[~mask.reshape(-1)] = self.ignore_index
        z = np.ascontiguousarray(logits).reshape(-1, V)
        loss_rows, probs = self._ops.softmax_xent_forward(z, t, self.ignore_index)
        count = int(np.count_nonzero(t != self.ignore_index))
        self._saved = (probs, t, count, logits.shape)
        total = float(loss_rows.sum(dtype=np.float64))
        if self.reduction == "sum":
            return total
        return total / count if count else 0.0

    @property
    def probs(self):
        """Softmax probabilities of the last forward, shaped like its logits."""
        if self._saved is None:
            raise RuntimeError("probs: no forward pass yet")
        probs, _, _, shape = self._saved
        return probs.reshape(shape)

    def backward(self, scale=1.0):
        """d(scale * loss)/d(logits), shaped like the logits."""
        if self._saved is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        probs, t, count, shape = self._saved
        if self.reduction == "mean":
            scale = scale / count if count else 0.0
        return self._ops.softmax_xent_backward(probs, t, self.ignore_index, scale).reshape(shape)


class MSELoss:
    """Mean squared error between predictions and targets of the same shape.

    reduction "mean" averages over every element, "sum" adds them; ``half=True`` is the
    notes' 1/2 * sum of squares variant (its gradient is just the error)."""

    def __init__(self, reduction="mean", half=False):
        self.reduction = _checks.one_of("reduction", reduction, ("mean", "sum"))
        self.half = bool(half)
        self._saved = None

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        if not isinstance(pred, np.ndarray) or pred.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError("pred: expected a float32 or float64 numpy.ndarray")
        target = _checks.array("target", target, pred.dtype, pred.shape)
        err = pred - target
        self._saved = err
        total = float(np.sum(err.astype(np.float64) ** 2))
        if self.half:
            total *= 0.5
        return total / err.size if self.reduction == "mean" and err.size else total

    def backward(self, scale=1.0):
        if self._saved is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        err = self._saved
        factor = scale * (1.0 if self.half else 2.0)
        if self.reduction == "mean" and err.size:
            factor /= err.size
        return (err * factor).astype(err.dtype, copy=False)

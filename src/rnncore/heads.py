"""Output layers that sit on top of a recurrent layer."""

from __future__ import annotations

import math

import numpy as np

from . import _checks
from ._module import Module, is_grad_enabled


class Linear(Module):
    """Dense layer ``y = x @ weight.T + bias`` over the last axis of (..., in_features),
    e.g. (T,B,H) or (B,H). PyTorch's names, shapes and initialisation bound
    1/sqrt(in_features)."""

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, seed=None):
        super().__init__(dtype)
        self.in_features = _checks.positive_int("in_features", in_features)
        self.out_features = _checks.positive_int("out_features", out_features)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self._add_param("weight", rng.uniform(-bound, bound, (self.out_features, self.in_features)))
        if bias:
            self._add_param("bias", rng.uniform(-bound, bound, (self.out_features,)))
        self._x = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 1:
            raise TypeError(f"x: expected a numpy.ndarray of {self.dtype} with last axis {self.in_features}")
        x = _checks.array("x", x, self.dtype, (None,) * (x.ndim - 1) + (self.in_features,))
        x2 = x.reshape(-1, self.in_features)
        y = x2 @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        self._x = x2.copy() if is_grad_enabled() else None
        self._lead = x.shape[:-1]
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy):
        """dy (..., out_features) -> dx; adds into grads['weight'] and grads['bias']."""
        if self._x is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        dy = _checks.array("dy", dy, self.dtype, self._lead + (self.out_features,))
        dy2 = dy.reshape(-1, self.out_features)
        self.grads["weight"] += dy2.T @ self._x
        if "bias" in self.grads:
            self.grads["bias"] += dy2.sum(0)
        return (dy2 @ self.params["weight"]).reshape(self._lead + (self.in_features,))

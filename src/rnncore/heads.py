"""Layers that sit around a recurrent layer: a dense output layer and an embedding."""

from __future__ import annotations

import math

import numpy as np

from . import _checks
from ._module import Module, exclusive, is_grad_enabled


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
        _checks.fits_in_memory(2 * (self.in_features + 1) * self.out_features * self.dtype.itemsize,
                               "Linear's parameters and gradients")
        self._add_param("weight", _checks.uniform(rng, bound, (self.out_features, self.in_features), self.dtype))
        if bias:
            self._add_param("bias", _checks.uniform(rng, bound, (self.out_features,), self.dtype))
        self._x = None

    def __call__(self, x):
        return self.forward(x)

    @exclusive
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

    @exclusive
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


class Embedding(Module):
    """Lookup table ``weight[ids]``: integer ids (...) -> vectors (..., embedding_dim).
    PyTorch's name and shape (``weight`` [num_embeddings, embedding_dim]) and
    initialisation N(0, 1). ``backward`` adds into grads['weight'] (rows of repeated ids
    sum) and returns None: ids have no gradient."""

    def __init__(self, num_embeddings, embedding_dim, *, dtype=np.float32, seed=None):
        super().__init__(dtype)
        self.num_embeddings = _checks.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = _checks.positive_int("embedding_dim", embedding_dim)
        rng = np.random.default_rng(seed)
        _checks.fits_in_memory(2 * self.num_embeddings * self.embedding_dim * self.dtype.itemsize,
                               "Embedding's parameters and gradients")
        self._add_param("weight", rng.standard_normal((self.num_embeddings, self.embedding_dim), dtype=self.dtype))
        self._ids = None

    def __call__(self, ids):
        return self.forward(ids)

    @exclusive
    def forward(self, ids):
        ids = _checks.ids("ids", ids, self.num_embeddings)
        self._ids = ids if is_grad_enabled() else None
        return self.params["weight"][ids]

    @exclusive
    def backward(self, dy):
        if self._ids is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        dy = _checks.array("dy", dy, self.dtype, self._ids.shape + (self.embedding_dim,))
        np.add.at(self.grads["weight"], self._ids.reshape(-1), dy.reshape(-1, self.embedding_dim))
        return None


class Activation:
    """Elementwise tanh, sigmoid or relu with forward/backward (no parameters), for
    composing feed-forward pieces such as the hidden layer of a Jordan network."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, kind="tanh"):
        from .reference.common import NONLINEARITIES
        self.kind = _checks.one_of("kind", kind, NONLINEARITIES)
        self._y = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        from .reference.common import activate
        y = activate(np.asarray(x), self.kind)
        self._y = y if is_grad_enabled() else None
        return y

    def backward(self, dy):
        from .reference.common import activate_grad
        if self._y is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        return dy * activate_grad(self._y, self.kind)

    def zero_grad(self):
        pass

    def train(self, mode=True):
        return self

    def __repr__(self):
        return f"Activation({self.kind!r})"

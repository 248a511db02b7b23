"""Layers that sit around a recurrent layer: a dense output layer and an embedding.

Both run on rnncore's kernels and thread pool (``cpp/ops/``; ``backend="reference"``:
NumPy), so a training step never wakes another library's BLAS threads.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, backends
from ._module import Module, exclusive, is_grad_enabled

NONLINEARITIES = ("tanh", "relu", "sigmoid")


class Linear(Module):
    """Dense layer ``y = x @ weight.T + bias`` over the last axis of (..., in_features),
    e.g. (T,B,H) or (B,H). PyTorch's names, shapes and initialisation bound
    1/sqrt(in_features)."""

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, seed=None, backend=None):
        super().__init__(dtype)
        self.backend, self._ops = backends.resolve_ops(backend)
        self.in_features = _checks.positive_int("in_features", in_features)
        self.out_features = _checks.positive_int("out_features", out_features)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        _checks.fits_in_memory(2 * (self.in_features + 1) * self.out_features * self.dtype.itemsize,
                               "Linear's parameters and gradients")
        self._add_param("weight", _checks.uniform(rng, bound, (self.out_features, self.in_features), self.dtype))
        if bias:
            self._add_param("bias", _checks.uniform(rng, bound, (self.out_features,), self.dtype))
        self._x = self._xbuf = None

    def __call__(self, x):
        return self.forward(x)

    @exclusive
    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 1:
            raise TypeError(f"x: expected a numpy.ndarray of {self.dtype} with last axis {self.in_features}")
        x = _checks.array("x", x, self.dtype, (None,) * (x.ndim - 1) + (self.in_features,))
        x2 = x.reshape(-1, self.in_features)
        y = self._ops.linear_forward(x2, self.params["weight"], self.params.get("bias"))
        self._x = None
        if is_grad_enabled():  # backward reads x: keep a copy, the caller may reuse its buffer
            if self._xbuf is None or self._xbuf.shape != x2.shape:
                self._xbuf = np.empty_like(x2)
            np.copyto(self._xbuf, x2)
            self._x = self._xbuf
        self._lead = x.shape[:-1]
        return y.reshape(x.shape[:-1] + (self.out_features,))

    @exclusive
    def backward(self, dy):
        """dy (..., out_features) -> dx; adds into grads['weight'] and grads['bias']."""
        if self._x is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        dy = _checks.array("dy", dy, self.dtype, self._lead + (self.out_features,))
        dy2 = dy.reshape(-1, self.out_features)
        dx = self._ops.linear_backward(dy2, self._x, self.params["weight"], self.grads["weight"],
                                       self.grads.get("bias"))
        return dx.reshape(self._lead + (self.in_features,))


def _flat_ids(ids, n):
    """Integer ids of any shape as a C-contiguous 1-D int32 or int64 array (other integer
    types are converted; the range is checked by the kernel)."""
    if not isinstance(ids, np.ndarray):
        raise TypeError(f"ids: expected an integer numpy.ndarray, got {type(ids).__name__}")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids: expected an integer array, got {ids.dtype}")
    if ids.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        if ids.dtype == np.uint64 and ids.size and ids.max() > np.iinfo(np.int64).max:
            raise ValueError(f"ids: every id must be in [0, {n}), got {ids.max()}")
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids.reshape(-1))


class Embedding(Module):
    """Lookup table ``weight[ids]``: integer ids (...) -> vectors (..., embedding_dim).
    PyTorch's name and shape (``weight`` [num_embeddings, embedding_dim]) and
    initialisation N(0, 1). ``backward`` adds into grads['weight'] (rows of repeated ids
    sum) and returns None: ids have no gradient."""

    def __init__(self, num_embeddings, embedding_dim, *, dtype=np.float32, seed=None, backend=None):
        super().__init__(dtype)
        self.backend, self._ops = backends.resolve_ops(backend)
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
        flat = _flat_ids(ids, self.num_embeddings)
        y = self._ops.embedding_forward(flat, self.params["weight"])  # checks the range of the ids
        if is_grad_enabled():  # the caller may reuse its array before backward
            self._ids = (flat.copy() if np.may_share_memory(flat, ids) else flat, ids.shape)
        else:
            self._ids = None
        return y.reshape(ids.shape + (self.embedding_dim,))

    @exclusive
    def backward(self, dy):
        if self._ids is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        ids, shape = self._ids
        dy = _checks.array("dy", dy, self.dtype, shape + (self.embedding_dim,))
        self._ops.embedding_backward(dy.reshape(-1, self.embedding_dim), ids, self.grads["weight"])
        return None


class Activation:
    """Elementwise tanh, sigmoid or relu with forward/backward (no parameters), for
    composing feed-forward pieces such as the hidden layer of a Jordan network."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, kind="tanh"):
        self.kind = _checks.one_of("kind", kind, NONLINEARITIES)
        self._y = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        a = np.asarray(x)
        if self.kind == "tanh":
            y = np.tanh(a)
        elif self.kind == "relu":
            y = np.maximum(a, 0)
        else:
            with np.errstate(over="ignore"):
                y = 1 / (1 + np.exp(-a))
        self._y = y if is_grad_enabled() else None
        return y

    def backward(self, dy):
        """dy * phi'(a), from the saved output y: tanh 1 - y^2, sigmoid y (1 - y), relu [y > 0]."""
        if self._y is None:
            raise RuntimeError("backward: no saved forward pass (call forward first)")
        y = self._y
        if self.kind == "tanh":
            return dy * (1 - y * y)
        if self.kind == "relu":
            return dy * (y > 0).astype(y.dtype)
        return dy * (y * (1 - y))

    def zero_grad(self):
        pass

    def train(self, mode=True):
        return self

    def __repr__(self):
        return f"Activation({self.kind!r})"

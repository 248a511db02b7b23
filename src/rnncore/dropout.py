"""Dropout as a layer of its own, for ``Sequential`` and hand-written models.

The notes' second remedy for overfitting (000: "use Dropout to randomly throw away some
results"), in its inverted form: while training, each element is zeroed with probability
p and the survivors are scaled by 1/(1-p), so the expected output equals the input and
evaluation needs no rescaling; under ``eval()`` the layer is the identity.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _checks
from ._module import Module, exclusive, is_grad_enabled


class Dropout:
    """Inverted dropout: ``y = x * mask / (1 - p)`` with ``mask`` ~ Bernoulli(1 - p) per
    element while ``training``, ``y = x`` after ``eval()``.

    p: the probability of zeroing an element, in [0, 1] (1 zeroes everything). seed: the
    masks are drawn from ``numpy.random.default_rng(seed)``, so a seeded layer gives the
    same masks run after run; its generator is ``self.rng`` (save
    ``rng.bit_generator.state`` to resume a run exactly). Works on float32 and float64
    arrays of any shape; the output has the input's dtype. ``backward(dy)`` multiplies by
    the same mask (and scale) the last ``forward`` used; it has no parameters, so
    ``params`` and ``grads`` are empty and ``Sequential`` treats it as a feed-forward
    layer (``Sequential.train()``/``eval()`` reach it)."""

    _exclusive = Module._exclusive

    def __init__(self, p=0.5, *, seed=None):
        self.p = _checks.probability("p", p)
        self.rng = np.random.default_rng(seed)
        self.training = True
        self.params: dict = {}
        self.grads: dict = {}
        self._busy = threading.Lock()
        self._saved = None  # None, or ("identity" | "mask", an array shaped like x: the scaled mask)

    def __call__(self, x):
        return self.forward(x)

    @exclusive
    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError(f"x: expected a float32 or float64 numpy.ndarray, got "
                            f"{x.dtype if isinstance(x, np.ndarray) else type(x).__name__}")
        if not self.training or self.p == 0.0:
            like = np.broadcast_to(np.zeros((), x.dtype), x.shape)  # the shape and dtype, no memory
            self._saved = ("identity", like) if is_grad_enabled() else None
            return x.copy()
        mask = self.rng.random(x.shape) >= self.p
        scaled = mask.astype(x.dtype)
        scaled *= 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        self._saved = ("mask", scaled) if is_grad_enabled() else None
        return x * scaled

    @exclusive
    def backward(self, dy):
        """dy (shaped like the last forward's x) -> dx = dy * mask / (1 - p)."""
        if self._saved is None:
            raise RuntimeError("backward: no saved forward pass (call forward first, outside rnncore.no_grad())")
        kind, like = self._saved
        dy = _checks.array("dy", dy, like.dtype, like.shape)
        return dy.copy() if kind == "identity" else dy * like

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        pass

    def __repr__(self):
        return f"Dropout(p={self.p})"

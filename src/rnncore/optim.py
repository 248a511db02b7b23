"""Optimizers over (params, grads) dicts of NumPy arrays; they update params in place."""

from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, params, grads):
        if set(params) != set(grads):
            raise KeyError(f"params and grads: different names {sorted(set(params) ^ set(grads))}")
        for name in params:
            if params[name].shape != grads[name].shape:
                raise ValueError(f"grads[{name!r}]: shape {grads[name].shape} != parameter's {params[name].shape}")
        self.params, self.grads = params, grads
        self.steps = 0

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction and optional L2 weight decay."""

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, grads)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self):
        self.steps += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for k, p in self.params.items():
            g = self.grads[k]
            if self.weight_decay:
                g = g + self.weight_decay * p
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)

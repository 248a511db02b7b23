"""Optimizers over (params, grads) dicts of NumPy arrays, updating params in place, and
gradient clipping over all gradient arrays of a model in one native call.

    opt = Adam(model.params, model.grads, lr=1e-3)
    model.zero_grad(); ...forward, backward...
    clip_grad_norm(model.grads, 5.0)
    opt.step()
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _core


def _positive(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not (value >= 0 if allow_zero else value > 0) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a {'non-negative' if allow_zero else 'positive'} number, got {value}")
    return value


def _arrays(grads):
    return list(grads.values()) if hasattr(grads, "values") else list(grads)


def clip_grad_norm(grads, max_norm):
    """Pascanu et al.'s clipping (algorithm 1): if the global L2 norm of all gradients
    exceeds max_norm, scale them all by max_norm / norm, in place, in one native pass.

    grads: a dict of arrays (e.g. model.grads) or a list. Returns the norm before
    clipping. A non-finite norm (NaN or Inf in a gradient) leaves the gradients as
    they are and is returned, so the caller can skip the step."""
    return _core.clip_grad_norm(_arrays(grads), _positive("max_norm", max_norm))


def clip_grad_value(grads, clip):
    """Clip every gradient element to [-clip, clip] in place (NaN stays NaN)."""
    _core.clip_grad_value(_arrays(grads), _positive("clip", clip))


class Optimizer:
    """Base: holds params and grads (dicts with the same names and shapes)."""

    def __init__(self, params, grads, lr):
        if not hasattr(params, "keys") or not hasattr(grads, "keys"):
            raise TypeError("params, grads: expected dicts of arrays (e.g. model.params, model.grads)")
        if set(params) != set(grads):
            raise KeyError(f"params and grads: different names {sorted(set(params) ^ set(grads))}")
        for name in params:
            p, g = params[name], grads[name]
            if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
                raise TypeError(f"params[{name!r}], grads[{name!r}]: expected numpy arrays")
            if p.shape != g.shape or p.dtype != g.dtype:
                raise ValueError(f"grads[{name!r}]: {g.dtype}{g.shape} does not match the parameter's "
                                 f"{p.dtype}{p.shape}")
        self.params, self.grads = params, grads
        self.lr = _positive("lr", lr)
        self.steps = 0

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def state_dict(self):
        """The optimizer's own state (moments and step count) as arrays, for checkpoints."""
        return {"steps": np.array(self.steps)}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay,
    in PyTorch's formulation: v = momentum * v + g; p -= lr * v (or g + momentum * v)."""

    def __init__(self, params, grads, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, grads, lr)
        self.momentum = _positive("momentum", momentum, allow_zero=True)
        self.weight_decay = _positive("weight_decay", weight_decay, allow_zero=True)
        self.nesterov = bool(nesterov)
        self.velocity = {k: np.zeros_like(p) for k, p in params.items()} if self.momentum else {}

    def step(self):
        self.steps += 1
        for k, p in self.params.items():
            g = self.grads[k]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                v = self.velocity[k]
                v *= self.momentum
                v += g
                g = g + self.momentum * v if self.nesterov else v
            p -= self.lr * g

    def state_dict(self):
        return {**super().state_dict(), **{f"velocity.{k}": v for k, v in self.velocity.items()}}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for k in self.velocity:
            self.velocity[k][...] = state[f"velocity.{k}"]


class Adagrad(Optimizer):
    """Adagrad as in min-char-rnn: mem += g*g; p -= lr * g / sqrt(mem + eps)."""

    def __init__(self, params, grads, lr=0.1, eps=1e-8):
        super().__init__(params, grads, lr)
        self.eps = _positive("eps", eps)
        self.mem = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self):
        self.steps += 1
        for k, p in self.params.items():
            g, m = self.grads[k], self.mem[k]
            m += g * g
            p -= self.lr * g / np.sqrt(m + self.eps)

    def state_dict(self):
        return {**super().state_dict(), **{f"mem.{k}": v for k, v in self.mem.items()}}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for k in self.mem:
            self.mem[k][...] = state[f"mem.{k}"]


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction and optional L2 weight decay."""

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, grads, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas}")
        self.betas = (float(b1), float(b2))
        self.eps = _positive("eps", eps)
        self.weight_decay = _positive("weight_decay", weight_decay, allow_zero=True)
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

    def state_dict(self):
        return {**super().state_dict(), **{f"m.{k}": v for k, v in self.m.items()},
                **{f"v.{k}": v for k, v in self.v.items()}}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for k in self.m:
            self.m[k][...] = state[f"m.{k}"]
            self.v[k][...] = state[f"v.{k}"]

"""Optimizers over (params, grads) dicts of NumPy arrays, updating params in place, and
gradient clipping over all gradient arrays of a model in one call.

    opt = Adam(model.params, model.grads, lr=1e-3)
    model.zero_grad(); ...forward, backward...
    clip_grad_norm(model.grads, 5.0)
    opt.step()

Each step is one pass over every parameter of the model on rnncore's thread pool
(``cpp/ops/optim.h``), not a loop of NumPy operations per array. The optimizer state
(velocity, squared sums, moments) lives in one flat buffer per kind, with per-name views
(``opt.m["0.weight"]``) for inspection and checkpoints.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import backends


def _positive(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    if not (value >= 0 if allow_zero else value > 0) or not np.isfinite(value):
        raise ValueError(f"{name}: expected a {'non-negative' if allow_zero else 'positive'} number, got {value}")
    return value


def _arrays(grads):
    return list(grads.values()) if hasattr(grads, "values") else list(grads)


def clip_grad_norm(grads, max_norm, *, backend=None):
    """Pascanu et al.'s clipping (algorithm 1): if the global L2 norm of all gradients
    exceeds max_norm, scale them all by max_norm / norm, in place, in one native pass.

    grads: a dict of arrays (e.g. model.grads) or a list. Returns the norm before
    clipping. A non-finite norm (NaN or Inf in a gradient) leaves the gradients as
    they are and is returned, so the caller can skip the step."""
    return backends.resolve_ops(backend)[1].clip_grad_norm(_arrays(grads), _positive("max_norm", max_norm))


def clip_grad_value(grads, clip, *, backend=None):
    """Clip every gradient element to [-clip, clip] in place (NaN stays NaN)."""
    backends.resolve_ops(backend)[1].clip_grad_value(_arrays(grads), _positive("clip", clip))


class Optimizer:
    """Base: holds params and grads (dicts with the same names and shapes).

    The optimizer works on the arrays the dicts hold when it is made (as PyTorch's
    optimizers hold their parameters); ``load_state_dict`` on a model copies into those
    arrays, so they stay valid. If an array in the dicts is replaced by another, the next
    step binds the new arrays (of the same shapes) and keeps the optimizer state."""

    _state_names: tuple = ()  # kinds of flat per-element state, e.g. ("m", "v")

    def __init__(self, params, grads, lr, backend=None):
        if not hasattr(params, "keys") or not hasattr(grads, "keys"):
            raise TypeError("params, grads: expected dicts of arrays (e.g. model.params, model.grads)")
        if set(params) != set(grads):
            raise KeyError(f"params and grads: different names {sorted(set(params) ^ set(grads))}")
        dtypes = set()
        for name in params:
            p, g = params[name], grads[name]
            if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
                raise TypeError(f"params[{name!r}], grads[{name!r}]: expected numpy arrays")
            if p.dtype not in (np.float32, np.float64):
                raise TypeError(f"params[{name!r}]: expected a float32 or float64 array, got {p.dtype}")
            if p.shape != g.shape or p.dtype != g.dtype:
                raise ValueError(f"grads[{name!r}]: {g.dtype}{g.shape} does not match the parameter's "
                                 f"{p.dtype}{p.shape}")
            dtypes.add(p.dtype)
        if len(dtypes) > 1:
            raise TypeError(f"params: mixed dtypes {sorted(map(str, dtypes))}; use one optimizer per dtype")
        self.params, self.grads = params, grads
        self.lr = _positive("lr", lr)
        self.steps = 0
        self.backend, self._ops = backends.resolve_ops(backend)
        self._names = list(params)
        self._dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        self._bound = None
        self._bind()
        total = self._param_group.size
        self._flat = {kind: np.zeros(total, self._dtype) for kind in self._active_state()}
        for kind, flat in self._flat.items():
            views, at = {}, 0
            for name in self._names:
                n = params[name].size
                views[name] = flat[at:at + n].reshape(params[name].shape)
                at += n
            setattr(self, kind, views)

    def _active_state(self):
        return self._state_names

    def _bind(self):
        """Hold the current arrays of params and grads for the native steps."""
        missing = [n for n in self._names if n not in self.params or n not in self.grads]
        if missing:
            raise KeyError(f"params, grads: {missing} removed since the optimizer was made")
        ps = [self.params[n] for n in self._names]
        gs = [self.grads[n] for n in self._names]
        if self._bound is not None:
            for name, p, g in zip(self._names, ps, gs):
                if p.shape != self._shapes[name] or g.shape != p.shape or p.dtype != self._dtype \
                        or g.dtype != self._dtype:
                    raise ValueError(f"params[{name!r}]: replaced by an array of another shape or dtype")
        self._param_group = self._ops.TensorGroup(ps)
        self._grad_group = self._ops.TensorGroup(gs)
        self._shapes = {n: p.shape for n, p in zip(self._names, ps)}
        self._bound = (ps, gs)

    def _groups(self):
        ps, gs = self._bound
        for name, p, g in zip(self._names, ps, gs):
            if self.params.get(name) is not p or self.grads.get(name) is not g:
                self._bind()
                break
        return self._param_group, self._grad_group

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def step(self):
        """One update of every parameter from its gradient."""
        params, grads = self._groups()
        self.steps += 1
        self._step(params, grads)

    def _step(self, params, grads):
        raise NotImplementedError

    def state_dict(self):
        """The optimizer's own state (moments and step count) as arrays, for checkpoints."""
        state = {"steps": np.array(self.steps)}
        for kind in self._flat:
            state.update({f"{kind}.{k}": v for k, v in getattr(self, kind).items()})
        return state

    def load_state_dict(self, state):
        staged = {}
        for kind in self._flat:
            for k, v in getattr(self, kind).items():
                key = f"{kind}.{k}"
                if key not in state:
                    raise KeyError(f"state: missing {key!r}")
                value = np.asarray(state[key])
                if value.shape != v.shape:
                    raise ValueError(f"state[{key!r}]: expected shape {v.shape}, got {value.shape}")
                staged[key] = (v, value)
        self.steps = int(state["steps"])
        for v, value in staged.values():
            v[...] = value


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay,
    in PyTorch's formulation: v = momentum * v + g; p -= lr * v (or g + momentum * v)."""

    def __init__(self, params, grads, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0, *, backend=None):
        self.momentum = _positive("momentum", momentum, allow_zero=True)
        self.weight_decay = _positive("weight_decay", weight_decay, allow_zero=True)
        self.nesterov = bool(nesterov)
        self.velocity = {}
        super().__init__(params, grads, lr, backend)

    def _active_state(self):
        return ("velocity",) if self.momentum else ()

    def _step(self, params, grads):
        self._ops.sgd_step(params, grads, self._flat.get("velocity"), self.lr, self.momentum, self.weight_decay,
                           self.nesterov)


class Adagrad(Optimizer):
    """Adagrad as in min-char-rnn: mem += g*g; p -= lr * g / sqrt(mem + eps)."""

    _state_names = ("mem",)

    def __init__(self, params, grads, lr=0.1, eps=1e-8, *, backend=None):
        self.eps = _positive("eps", eps)
        super().__init__(params, grads, lr, backend)

    def _step(self, params, grads):
        self._ops.adagrad_step(params, grads, self._flat["mem"], self.lr, self.eps)


class Adam(Optimizer):
    """Adam (Kingma and Ba) with bias correction and optional L2 weight decay, in
    PyTorch's order of operations."""

    _state_names = ("m", "v")

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, backend=None):
        try:
            b1, b2 = betas
            ok = 0 <= b1 < 1 and 0 <= b2 < 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        self.betas = (float(b1), float(b2))
        self.eps = _positive("eps", eps)
        self.weight_decay = _positive("weight_decay", weight_decay, allow_zero=True)
        super().__init__(params, grads, lr, backend)

    def _step(self, params, grads):
        b1, b2 = self.betas
        self._ops.adam_step(params, grads, self._flat["m"], self._flat["v"], self.lr, b1, b2, self.eps,
                            self.weight_decay, self.steps)

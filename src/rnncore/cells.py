"""One-step cells with PyTorch's names and shapes (torch.nn.RNNCell/LSTMCell/GRUCell).

``forward(x_t, state)`` computes one step and pushes what its backward needs onto a
stack; ``backward(dstate)`` pops the most recent step, so a Python loop that runs
T forwards and then T backwards (last in, first out) backpropagates through time.
The gradient passed to ``backward`` is the total reaching the state that forward
returned: the loss's gradient at that step plus what the later step sent back.
``clear_saved()`` drops saved steps (for a loop that does not backpropagate, run it
inside ``rnncore.no_grad()`` so nothing is saved at all).

``zoneout`` and ``recurrent_dropout`` are the layers' (``rnncore.layers``), applied to the
one step: in training each forward draws one seed from ``rng`` for that step's masks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _checks, _spec, backends
from ._module import Module, is_grad_enabled


class _Step(NamedTuple):
    """What one forward step leaves for its backward (copies of the caller's arrays)."""

    x: np.ndarray
    prev: tuple          # the states the step read
    new: tuple           # the new states its backward reads (spec.step_reads_next; with
                         # zoneout, before mixing)
    saved: tuple         # the cell's per-step buffers
    reg: dict            # zoneout and recurrent dropout as the kernels ran them ({}: off)


class _Cell(Module):
    spec: _spec.CellSpec  # set by each cell's class
    proj_size = 0         # LSTMCell's projection of h (0: none)

    def __init__(self, input_size, hidden_size, bias, dtype, backend, seed, zoneout=0.0, recurrent_dropout=0.0):
        super().__init__(dtype)
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.zoneout = _checks.probability("zoneout", zoneout)
        self.recurrent_dropout = _checks.probability("recurrent_dropout", recurrent_dropout)
        self.backend, ops = backends.resolve(backend)
        self._forward_kernel, self._backward_kernel = _spec.kernels(ops, self.spec)[2:]
        self.rng = np.random.default_rng(seed)
        self._stack = []
        H, P, G, spec = self.hidden_size, self.proj_size or self.hidden_size, self.spec.G, self.spec
        shapes = {"weight_ih": (G * H, self.input_size), "weight_hh": spec.weight_hh_shape(H, P)}
        if self.bias:
            shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
        if spec.extra and self._has_extra():
            shapes[spec.extra[0]] = (spec.extra[1] * H,)
        if spec.proj:
            shapes[spec.proj] = (P, H)
        for name, width in spec.norm:
            shapes[name] = (width * H,)
        bound = 1.0 / math.sqrt(H)
        _checks.fits_in_memory(2 * sum(math.prod(s) for s in shapes.values()) * self.dtype.itemsize,
                               f"{type(self).__name__}'s parameters and gradients")
        norm = {name for name, _ in spec.norm}
        for name, shape in shapes.items():
            self._add_param(name, _spec.norm_init(name, shape, self.dtype) if name in norm
                            else _checks.uniform(self.rng, bound, shape, self.dtype))
        self._w, self._g = _spec.Weights.of(self.params), _spec.Weights.of(self.grads)

    def _has_extra(self):
        return False

    def _cell_args(self):
        spec = self.spec
        if spec.norm:  # the gains and biases packed as the kernels take them
            return (_spec.pack_norm(spec, self.params),)
        return ((self._w.extra,) if spec.extra else ()) + ((getattr(self, spec.option),) if spec.option else ())

    @property
    def num_saved(self):
        """Steps saved by forward and not yet consumed by backward."""
        return len(self._stack)

    def clear_saved(self):
        self._stack.clear()

    def _check_state(self, state, B, names):
        """A state (or state gradient): an array, or (LSTM) a tuple; None entries are zeros."""
        if len(names) == 1:
            state = (state,)
        elif state is None:
            state = (None,) * len(names)
        elif not isinstance(state, (tuple, list)) or len(state) != len(names):
            raise TypeError(f"{'/'.join(names)}: expected a tuple ({', '.join(names)}) or None")
        shapes = [self._state_shape(B, k) for k in range(len(names))]
        return tuple(np.zeros(shape, self.dtype) if s is None else _checks.array(n, s, self.dtype, shape)
                     for n, s, shape in zip(names, state, shapes))

    def _state_shape(self, B, k):
        """Of state k: h (B,P), c (B,H); P is H without a projection."""
        return (B, (self.proj_size or self.hidden_size) if k == 0 else self.hidden_size)

    def _pack(self, states):
        return states[0] if len(states) == 1 else tuple(states)

    def __call__(self, x, state=None):
        return self.forward(x, state)

    def forward(self, x, state=None):
        with self._exclusive("forward"):
            return self._forward(x, state)

    def backward(self, dstate):
        with self._exclusive("backward"):
            return self._backward(dstate)

    def _forward(self, x, state=None):
        """x (B,I), state (B,H) or None (LSTM: a tuple (h, c), either may be None) -> the
        new state (LSTM: (h', c'))."""
        spec = self.spec
        x = _checks.array("x", x, self.dtype, (None, self.input_size))
        prev = self._check_state(state, x.shape[0], spec.states)
        w = self._w
        reg, unmixed = self._regularise(x.shape[0])
        out = self._forward_kernel(x, *prev, w.w_ih, w.w_hh, *w.proj(), w.b_ih, w.b_hh, *self._cell_args(), **reg,
                                   unmixed=unmixed)
        out = out if isinstance(out, tuple) else (out,)
        S = len(spec.states)
        new, saved = out[:S], out[S:]
        if is_grad_enabled():
            # copies: a caller that reuses its input buffer must not change what backward reads
            reads = (tuple(unmixed) if unmixed is not None
                     else tuple(n.copy() for n, name in zip(new, spec.states) if name in spec.step_reads_next))
            self._stack.append(_Step(x.copy(), tuple(p.copy() for p in prev), reads, tuple(a.copy() for a in saved),
                                     reg))
        return self._pack(new)

    def _regularise(self, B):
        """This step's zoneout and recurrent dropout as the kernels' keyword arguments ({}
        when off; in training one seed from ``rng``, in evaluation zoneout's expectation and
        no dropout), and a buffer for the unmixed states when zoneout needs one."""
        z, p = self.zoneout, self.recurrent_dropout if self.training else 0.0
        if not (z > 0 or p > 0):
            return {}, None
        seed = int(self.rng.integers(0, 2 ** 64, dtype=np.uint64)) if self.training else 0
        R = len(self.spec.step_reads_next)
        unmixed = np.empty((R, B, self.hidden_size), self.dtype) if z > 0 and R else None
        return {"zoneout": z, "recurrent_dropout": p, "seed": seed, "training": self.training}, unmixed

    def _backward(self, dstate):
        """dstate: the whole gradient reaching the state of the latest unconsumed step (LSTM:
        (dh, dc), either may be None) -> (dx, dstate_prev)."""
        if not self._stack:
            raise RuntimeError("backward: no saved step left (each backward consumes one forward, "
                               "last in first out; forwards under rnncore.no_grad() save nothing)")
        step = self._stack[-1]  # popped only once the arguments check out
        spec = self.spec
        names = tuple(f"d{s}" for s in spec.states)
        B = step.x.shape[0]
        if len(names) == 1:
            dstates = (_checks.array(names[0], dstate, self.dtype, self._state_shape(B, 0)),)
        elif not isinstance(dstate, (tuple, list)) or len(dstate) != len(names):
            raise TypeError(f"dstate: expected a tuple ({', '.join(names)})")
        else:
            dstates = self._check_state(dstate, B, names)
        self._stack.pop()
        w, g = self._w, self._g
        dln = np.zeros(sum(width for _, width in spec.norm) * self.hidden_size, self.dtype) if spec.norm else None
        grads = (g.w_ih, g.w_hh, *g.proj(), g.b_ih, g.b_hh) + ((g.extra if dln is None else dln,) if spec.extra else ())
        dx, *dprev = self._backward_kernel(*dstates, step.x, *step.prev, *step.new, *step.saved, w.w_ih, w.w_hh,
                                           *w.proj(), *self._cell_args(), *grads, **step.reg)
        if dln is not None:
            _spec.add_norm_grad(spec, self.grads, dln)
        return dx, self._pack(dprev)

    def __repr__(self):
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, dtype={self.dtype}, backend={self.backend!r})"


class RNNCell(_Cell):
    """One Elman step ``h' = phi(W_ih x + b_ih + W_hh h + b_hh)``."""

    spec = _spec.ELMAN

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *,
                 zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None, seed=None):
        self.nonlinearity = _checks.one_of("nonlinearity", nonlinearity, _spec.NONLINEARITIES)
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed, zoneout, recurrent_dropout)


class IndRNNCell(_Cell):
    """One IndRNN step ``h' = phi(W_ih x + b_ih + w_hh * h + b_hh)``, ``weight_hh`` of shape
    (H,); phi relu (the default), tanh or sigmoid."""

    spec = _spec.INDRNN

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="relu", *,
                 zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None, seed=None):
        self.nonlinearity = _checks.one_of("nonlinearity", nonlinearity, _spec.NONLINEARITIES)
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed, zoneout, recurrent_dropout)


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o; optional peepholes ``weight_ch`` [3H]).

    ``proj_size=P`` (0 < P < hidden_size; rnncore's own, torch.nn.LSTMCell has none) is
    torch.nn.LSTM's projection for one step: h' = W_hr (o * tanh(c')) with ``weight_hr``
    [P,H]; h is then (B,P), ``weight_hh`` [4H,P], c stays (B,H).

    ``layer_norm=True`` is one step of ``rnncore.LSTM(layer_norm=True)`` (haste's
    LayerNormLSTM; Ba et al. 2016), with its gains and biases ``ln_weight_ih``,
    ``ln_weight_hh`` [4H], ``ln_weight_c``, ``ln_bias_c`` [H]."""

    spec = _spec.LSTM

    def __init__(self, input_size, hidden_size, bias=True, *, proj_size=0, peephole=False, layer_norm=False,
                 zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None, seed=None):
        self.peephole = bool(peephole)
        self.proj_size = _checks.proj_size(proj_size, _checks.positive_int("hidden_size", hidden_size))
        self.layer_norm = _checks.layer_norm(layer_norm, proj_size=self.proj_size, peephole=self.peephole)
        if self.proj_size:
            self.spec = _spec.LSTMP
        if self.layer_norm:
            self.spec = _spec.LSTM_LN
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed, zoneout, recurrent_dropout)

    def _has_extra(self):
        return self.peephole

    def __repr__(self):
        s = super().__repr__()[:-1]
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.layer_norm:
            s += ", layer_norm=True"
        return s + (", peephole=True)" if self.peephole else ")")


class GRUCell(_Cell):
    """One GRU step (gates r, z, n); ``reset_after=False`` is Cho et al.'s original form.
    ``layer_norm=True`` is one step of ``rnncore.GRU(layer_norm=True)`` (haste's
    LayerNormGRU; Ba et al. 2016), with its gains ``ln_weight_ih``, ``ln_weight_hh`` [3H]."""

    spec = _spec.GRU

    def __init__(self, input_size, hidden_size, bias=True, *, reset_after=True, layer_norm=False, zoneout=0.0,
                 recurrent_dropout=0.0, dtype=np.float32, backend=None, seed=None):
        self.reset_after = bool(reset_after)
        self.layer_norm = _checks.layer_norm(layer_norm, reset_after=self.reset_after)
        if self.layer_norm:
            self.spec = _spec.GRU_LN
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed, zoneout, recurrent_dropout)

    def __repr__(self):
        s = super().__repr__()[:-1] + (", layer_norm=True" if self.layer_norm else "")
        return s + (", reset_after=False)" if not self.reset_after else ")")

"""One-step cells with PyTorch's names and shapes (torch.nn.RNNCell/LSTMCell/GRUCell).

``forward(x_t, state)`` computes one step and pushes what its backward needs onto a
stack; ``backward(dstate)`` pops the most recent step, so a Python loop that runs
T forwards and then T backwards (last in, first out) backpropagates through time.
The gradient passed to ``backward`` is the total reaching the state that forward
returned: the loss's gradient at that step plus what the later step sent back.
``clear_saved()`` drops saved steps (for a loop that does not backpropagate, run it
inside ``rnncore.no_grad()`` so nothing is saved at all).
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, backends
from ._module import Module, is_grad_enabled
from .reference.common import NONLINEARITIES


class _Cell(Module):
    G = 1
    n_states = 1

    def __init__(self, input_size, hidden_size, bias, dtype, backend, seed):
        super().__init__(dtype)
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.backend, self._ops = backends.resolve(backend)
        self.rng = np.random.default_rng(seed)
        self._stack = []
        H, G = self.hidden_size, self.G
        shapes = {"weight_ih": (G * H, self.input_size), "weight_hh": (G * H, H)}
        if self.bias:
            shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
        shapes.update(self._extra_params())
        bound = 1.0 / math.sqrt(H)
        _checks.fits_in_memory(2 * sum(math.prod(s) for s in shapes.values()) * self.dtype.itemsize,
                               f"{type(self).__name__}'s parameters and gradients")
        for name, shape in shapes.items():
            self._add_param(name, _checks.uniform(self.rng, bound, shape, self.dtype))

    def _extra_params(self):
        return {}

    def _w(self, table, *names):
        return tuple(table.get(n) for n in names)

    @property
    def num_saved(self):
        """Steps saved by forward and not yet consumed by backward."""
        return len(self._stack)

    def clear_saved(self):
        self._stack.clear()

    def _check_x(self, x):
        x = _checks.array("x", x, self.dtype, (None, self.input_size))
        return x

    def _check_state(self, state, B, names):
        if self.n_states == 1:
            state = (state,)
        elif state is None:
            state = (None,) * self.n_states
        elif not isinstance(state, (tuple, list)) or len(state) != self.n_states:
            raise TypeError(f"{'/'.join(names)}: expected a tuple ({', '.join(names)}) or None")
        shape = (B, self.hidden_size)
        return tuple(np.zeros(shape, self.dtype) if s is None else _checks.array(n, s, self.dtype, shape)
                     for n, s in zip(names, state))

    def _top(self):
        """The latest unconsumed step; backward pops it only once its arguments check out."""
        if not self._stack:
            raise RuntimeError("backward: no saved step left (each backward consumes one forward, "
                               "last in first out; forwards under rnncore.no_grad() save nothing)")
        return self._stack[-1]

    def __call__(self, x, state=None):
        return self.forward(x, state)

    def forward(self, x, state=None):
        with self._exclusive("forward"):
            return self._forward(x, state)

    def backward(self, dstate):
        with self._exclusive("backward"):
            return self._backward(dstate)

    def _push(self, record):
        if is_grad_enabled():
            # copies: a caller that reuses its input buffer must not change what backward reads
            self._stack.append(tuple(a.copy() if isinstance(a, np.ndarray) else a for a in record))

    def __repr__(self):
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, dtype={self.dtype}, backend={self.backend!r})"


class RNNCell(_Cell):
    """One Elman step ``h' = phi(W_ih x + b_ih + W_hh h + b_hh)``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *,
                 dtype=np.float32, backend=None, seed=None):
        self.nonlinearity = _checks.one_of("nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed)

    def _forward(self, x, h=None):
        """x (B,I), h (B,H) or None -> h' (B,H)."""
        x = self._check_x(x)
        (h,) = self._check_state(h, x.shape[0], ("h",))
        w = self._w(self.params, "weight_ih", "weight_hh", "bias_ih", "bias_hh")
        h_new = self._ops.elman_step_forward(x, h, *w, self.nonlinearity)
        self._push((x, h, h_new))
        return h_new

    def _backward(self, dh):
        """dh (B,H) reaching the state of the latest unconsumed step -> (dx, dh_prev)."""
        x, h_prev, h = self._top()
        dh = _checks.array("dh", dh, self.dtype, h.shape)
        self._stack.pop()
        return self._ops.elman_step_backward(
            dh, x, h_prev, h, self.params["weight_ih"], self.params["weight_hh"], self.nonlinearity,
            *self._w(self.grads, "weight_ih", "weight_hh", "bias_ih", "bias_hh"))


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o; optional peepholes ``weight_ch`` [3H])."""

    G = 4
    n_states = 2

    def __init__(self, input_size, hidden_size, bias=True, *, peephole=False, dtype=np.float32,
                 backend=None, seed=None):
        self.peephole = bool(peephole)
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed)

    def _extra_params(self):
        return {"weight_ch": (3 * self.hidden_size,)} if self.peephole else {}

    def _forward(self, x, state=None):
        """x (B,I), state (h, c) or None -> (h', c')."""
        x = self._check_x(x)
        h, c = self._check_state(state, x.shape[0], ("h", "c"))
        w = self._w(self.params, "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch")
        h_new, c_new, gates = self._ops.lstm_step_forward(x, h, c, *w)
        self._push((x, h, c, c_new, gates))
        return h_new, c_new

    def _backward(self, dstate):
        """dstate (dh, dc), either may be None -> (dx, (dh_prev, dc_prev))."""
        x, h_prev, c_prev, c, gates = self._top()
        if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
            raise TypeError("dstate: expected a tuple (dh, dc)")
        dh, dc = (np.zeros_like(c) if d is None else _checks.array(n, d, self.dtype, c.shape)
                  for n, d in zip(("dh", "dc"), dstate))
        self._stack.pop()
        p = self.params
        dx, dh_prev, dc_prev = self._ops.lstm_step_backward(
            dh, dc, x, h_prev, c_prev, c, gates, p["weight_ih"], p["weight_hh"], p.get("weight_ch"),
            *self._w(self.grads, "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch"))
        return dx, (dh_prev, dc_prev)

    def __repr__(self):
        return super().__repr__()[:-1] + (", peephole=True)" if self.peephole else ")")


class GRUCell(_Cell):
    """One GRU step (gates r, z, n); ``reset_after=False`` is Cho et al.'s original form."""

    G = 3

    def __init__(self, input_size, hidden_size, bias=True, *, reset_after=True, dtype=np.float32,
                 backend=None, seed=None):
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, bias, dtype, backend, seed)

    def _forward(self, x, h=None):
        """x (B,I), h (B,H) or None -> h' (B,H)."""
        x = self._check_x(x)
        (h,) = self._check_state(h, x.shape[0], ("h",))
        w = self._w(self.params, "weight_ih", "weight_hh", "bias_ih", "bias_hh")
        h_new, gates, hn = self._ops.gru_step_forward(x, h, *w, self.reset_after)
        self._push((x, h, gates, hn))
        return h_new

    def _backward(self, dh):
        """dh (B,H) reaching the state of the latest unconsumed step -> (dx, dh_prev)."""
        x, h_prev, gates, hn = self._top()
        dh = _checks.array("dh", dh, self.dtype, h_prev.shape)
        self._stack.pop()
        return self._ops.gru_step_backward(
            dh, x, h_prev, gates, hn, self.params["weight_ih"], self.params["weight_hh"],
            self.reset_after, *self._w(self.grads, "weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def __repr__(self):
        return super().__repr__()[:-1] + (", reset_after=False)" if not self.reset_after else ")")

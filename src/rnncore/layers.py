"""Multi-layer recurrent layers with PyTorch's parameters and semantics.

``RNN``, ``LSTM`` and ``GRU`` take the arguments of ``torch.nn.RNN/LSTM/GRU`` (plus
a few options of their own), hold their parameters under PyTorch's names and
shapes, and compute the same results with the same weights. Forward and backward
are explicit: ``forward`` saves what ``backward`` needs, ``backward`` returns the
gradients with respect to the input and the initial state and *adds* the
parameter gradients into ``grads``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, backends
from ._module import Module, is_grad_enabled
from .reference.common import NONLINEARITIES


def aligned_empty(shape, dtype, align=64):
    """An uninitialised C-contiguous array starting on a cache-line boundary (threads
    write neighbouring column slices of the arrays the kernels fill)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip:skip + nbytes].view(dtype).reshape(shape)


class _Saved:
    """What one forward leaves for backward."""

    __slots__ = ("T", "B", "lengths", "caches", "masks")

    def __init__(self, T, B, lengths, caches, masks):
        self.T, self.B, self.lengths, self.caches, self.masks = T, B, lengths, caches, masks


class _Recurrent(Module):
    G = 1             # gates per cell
    n_states = 1      # 1 (h) or 2 (h, c)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, dtype=np.float32, backend=None, seed=None):
        super().__init__(dtype)
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = _checks.probability("dropout", dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.backend, self._ops = backends.resolve(backend)
        self.rng = np.random.default_rng(seed)
        self._saved = None
        self._buffers = {}
        H, G = self.hidden_size, self.G
        bound = 1.0 / math.sqrt(H)
        shapes = {}
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else H * self.num_directions
            for d in range(self.num_directions):
                sfx = self._suffix(layer, d)
                shapes[f"weight_ih{sfx}"] = (G * H, layer_in)
                shapes[f"weight_hh{sfx}"] = (G * H, H)
                if self.bias:
                    shapes[f"bias_ih{sfx}"] = (G * H,)
                    shapes[f"bias_hh{sfx}"] = (G * H,)
                shapes.update(self._extra_params(sfx))
        count = sum(math.prod(s) for s in shapes.values())
        _checks.fits_in_memory(2 * count * self.dtype.itemsize, f"{type(self).__name__}'s parameters and gradients")
        for name, shape in shapes.items():
            self._add_param(name, _checks.uniform(self.rng, bound, shape, self.dtype))

    # ---- per-cell hooks -------------------------------------------------------------
    def _extra_params(self, sfx):
        return {}

    def _direction_forward(self, x, state0, lengths, reverse, w, k, y_buf):
        """Run one (layer, direction) k, writing y into y_buf (None: a new array).
        Returns (y [T,B,H], final states tuple, cache)."""
        raise NotImplementedError

    def _direction_backward(self, dy, dstate_n, cache, lengths, w, g, dx_buf):
        """Backward of one (layer, direction), dx into dx_buf (None: a new array).
        Returns (dx, initial-state gradients tuple)."""
        raise NotImplementedError

    # ---- helpers ---------------------------------------------------------------------
    @staticmethod
    def _suffix(layer, direction):
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _weights(self, table, layer, direction):
        """(weight_ih, weight_hh, bias_ih, bias_hh[, weight_ch]) of one (layer, direction)
        from params or grads (None where absent). The arrays are updated in place by
        optimizers and load_state_dict, so the tuples are built once."""
        cache = self.__dict__.setdefault("_weight_tuples", {})
        key = (id(table), layer, direction)
        if key not in cache:
            sfx = self._suffix(layer, direction)
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + self._extra_names()
            cache[key] = (table, tuple(table.get(n + sfx) for n in names))
        return cache[key][1]

    def _extra_names(self):
        return ()

    def _state_shape(self, B):
        return (self.num_layers * self.num_directions, B, self.hidden_size)

    def _check_states(self, states, B, names):
        """Initial states (or final-state gradients): None, an array, or (LSTM) a tuple."""
        if self.n_states == 1:
            states = (states,)
        elif states is None:
            states = (None,) * self.n_states
        elif not isinstance(states, (tuple, list)) or len(states) != self.n_states:
            raise TypeError(f"{'/'.join(names)}: expected a tuple ({', '.join(names)}) or None")
        return tuple(None if s is None else _checks.array(n, s, self.dtype, self._state_shape(B))
                     for n, s in zip(names, states))

    def _pack_states(self, states):
        return states[0] if self.n_states == 1 else tuple(states)

    def _time_major(self, name, a, shape):
        """Check a (T,B,.) or, with batch_first, (B,T,.) array; return it time-major."""
        a = _checks.array(name, a, self.dtype, shape)
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.batch_first else a

    def _buffer(self, key, shape):
        """An internal array reused across calls (never one handed to the caller):
        fresh multi-megabyte arrays each call cost more in page faults than the
        arithmetic of a mid-sized step."""
        a = self._buffers.get(key)
        if a is None or a.shape != shape:
            a = aligned_empty(shape, self.dtype)
            self._buffers[key] = a
        return a

    # ---- public API ------------------------------------------------------------------
    def __call__(self, x, h0=None, lengths=None):
        return self.forward(x, h0, lengths)

    def forward(self, x, h0=None, lengths=None):
        with self._exclusive("forward"):
            return self._forward(x, h0, lengths)

    def backward(self, dy=None, dh_n=None):
        """Backpropagate through the last forward.

        dy: gradient of the loss with respect to y (same shape as y), or None.
        dh_n: gradient with respect to the final state (LSTM: a tuple (dh_n, dc_n),
        either may be None), or None. Adds every parameter gradient into ``grads``
        and returns (dx, dh0) (LSTM: (dx, (dh0, dc0)))."""
        with self._exclusive("backward"):
            return self._backward(dy, dh_n)

    def _forward(self, x, h0=None, lengths=None):
        """x: (T,B,I), or (B,T,I) with batch_first. h0: (L*D,B,H) or None for zeros
        (LSTM: a tuple (h0, c0), either may be None). lengths: B integers in [0,T].

        Returns (y, h_n), y of shape (T,B,D*H) (batch_first: (B,T,D*H)) with zeros at
        padded steps, h_n (L*D,B,H) the state after each sequence's last valid step
        (LSTM: (h_n, c_n))."""
        x_in = x
        x = self._time_major("x", x, (None, None, self.input_size))
        T, B = x.shape[0], x.shape[1]
        _checks.fits_in_memory(self.num_layers * self.num_directions * (T + 1) * B * self.hidden_size
                               * (self.G + 3) * self.dtype.itemsize, f"{type(self).__name__}.forward's activations")
        states0 = self._check_states(h0, B, ("h0", "c0")[:self.n_states])
        lengths = _checks.lengths(lengths, T, B)
        self._saved = None  # its buffers are about to be reused
        grad = is_grad_enabled()
        if grad and np.may_share_memory(x, x_in):
            # backward reads x: a caller reusing its buffer must not change it
            buf = self._buffer("x", x.shape)
            np.copyto(buf, x)
            x = buf
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        if L == 1 and D == 1:  # the common case, without the bookkeeping of a stack
            s0 = tuple(None if s is None else s[0] for s in states0)
            y, fin, cache = self._direction_forward(x, s0, lengths, False, self._weights(self.params, 0, 0), 0,
                                                    None)
            if grad:
                self._saved = _Saved(T, B, lengths, [cache], [None])
            y = y.transpose(1, 0, 2) if self.batch_first else y
            return y, self._pack_states([f[None].copy() for f in fin])
        finals = [np.empty(self._state_shape(B), self.dtype) for _ in range(self.n_states)]
        caches, masks = [], []
        inp = x
        for layer in range(L):
            last = layer == L - 1
            ys = []
            for d in range(D):
                k = layer * D + d
                s0 = tuple(None if s is None else s[k] for s in states0)  # None: zeros
                if D == 2:
                    y_buf = self._buffer(("y", k), (T, B, H))
                else:
                    y_buf = None if last else self._buffer(("out", layer), (T, B, H))
                y, fin, cache = self._direction_forward(inp, s0, lengths, bool(d),
                                                        self._weights(self.params, layer, d), k, y_buf)
                ys.append(y)
                caches.append(cache)
                for i in range(self.n_states):
                    finals[i][k] = fin[i]
            if D == 1:
                out = ys[0]
            else:
                out = np.empty((T, B, D * H), self.dtype) if last else self._buffer(("out", layer), (T, B, D * H))
                np.concatenate(ys, axis=2, out=out)
            mask = None
            if not last and self.training and self.dropout > 0:
                p = self.dropout
                mask = (self.rng.random(out.shape) >= p).astype(self.dtype)
                mask *= 0.0 if p == 1 else 1.0 / (1.0 - p)
                out = np.multiply(out, mask, out=self._buffer(("dropped", layer), out.shape))
            masks.append(mask)
            inp = out
        if grad:
            self._saved = _Saved(T, B, lengths, caches, masks)
        y = inp.transpose(1, 0, 2) if self.batch_first else inp
        return y, self._pack_states(finals)

    def _backward(self, dy=None, dh_n=None):
        saved = self._saved
        if saved is None:
            raise RuntimeError("backward: no saved forward pass (call forward first, "
                               "outside rnncore.no_grad())")
        T, B, H = saved.T, saved.B, self.hidden_size
        L, D = self.num_layers, self.num_directions
        if dy is not None:
            shape = (B, T, D * H) if self.batch_first else (T, B, D * H)
            dy = self._time_major("dy", dy, shape)
        names = ("dh_n", "dc_n")[:self.n_states]
        dstates_n = self._check_states(dh_n, B, names)
        if L == 1 and D == 1:  # the common case, as in forward
            dx, ds0 = self._direction_backward(dy, tuple(None if s is None else s[0] for s in dstates_n),
                                               saved.caches[0], saved.lengths, self._weights(self.params, 0, 0),
                                               self._weights(self.grads, 0, 0), None)
            dx = dx.transpose(1, 0, 2) if self.batch_first else dx
            return dx, self._pack_states([d[None] for d in ds0])
        dstates0 = [np.empty(self._state_shape(B), self.dtype) for _ in range(self.n_states)]
        grad = dy
        for layer in reversed(range(L)):
            if grad is not None and saved.masks[layer] is not None:
                grad = np.multiply(grad, saved.masks[layer], out=self._buffer(("dmask", layer), grad.shape))
            dx = None
            for d in range(D):
                k = layer * D + d
                dy_d = grad
                if grad is not None and D == 2:
                    dy_d = self._buffer(("dy", k), (T, B, H))
                    np.copyto(dy_d, grad[:, :, d * H:(d + 1) * H])
                first = layer == 0 and D == 1  # its dx goes to the caller: a fresh array
                dx_buf = None if first else self._buffer(("dx", k), (T, B, saved.caches[k][0].shape[2]))
                ds_n = tuple(None if s is None else s[k] for s in dstates_n)
                dx_d, ds0 = self._direction_backward(dy_d, ds_n, saved.caches[k], saved.lengths,
                                                     self._weights(self.params, layer, d),
                                                     self._weights(self.grads, layer, d), dx_buf)
                if dx is None:
                    dx = dx_d
                else:
                    dx = np.add(dx, dx_d, out=None if layer == 0 else self._buffer(("dxsum", layer), dx.shape))
                for i in range(self.n_states):
                    dstates0[i][k] = ds0[i]
            grad = dx
        dx = grad.transpose(1, 0, 2) if self.batch_first else grad
        return dx, self._pack_states(dstates0)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s + f", dtype={self.dtype}, backend={self.backend!r}"

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class RNN(_Recurrent):
    """Elman RNN, ``h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, phi in
    tanh, relu or sigmoid (torch.nn.RNN has the first two)."""

    G = 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, dtype=np.float32,
                 backend=None, seed=None):
        self.nonlinearity = _checks.one_of("nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, backend=backend, seed=seed)

    def _direction_forward(self, x, state0, lengths, reverse, w, k, y_buf):
        T, B = x.shape[:2]
        out = (y_buf, self._buffer(("h", k), (T + 1, B, self.hidden_size)))
        y, h = self._ops.elman_forward(x, state0[0], *w, self.nonlinearity, lengths, reverse, out=out)
        return y, (h[0] if reverse else h[-1],), (x, h, reverse)

    def _direction_backward(self, dy, dstate_n, cache, lengths, w, g, dx_buf):
        x, h, reverse = cache
        dx, dh0 = self._ops.elman_backward(dy, dstate_n[0], x, h, w[0], w[1], self.nonlinearity,
                                           lengths, reverse, *g, out=(dx_buf, None))
        return dx, (dh0,)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_Recurrent):
    """LSTM with PyTorch's gate order i, f, g, o; ``peephole=True`` adds Gers et al.'s
    diagonal peephole weights ``weight_ch_l{k}`` [3H] (i, f, o) from the cell state."""

    G = 4
    n_states = 2

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, peephole=False, dtype=np.float32,
                 backend=None, seed=None):
        self.peephole = bool(peephole)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, backend=backend, seed=seed)

    def _extra_params(self, sfx):
        return {f"weight_ch{sfx}": (3 * self.hidden_size,)} if self.peephole else {}

    def _extra_names(self):
        return ("weight_ch",)

    def _direction_forward(self, x, state0, lengths, reverse, w, k, y_buf):
        T, B = x.shape[:2]
        H = self.hidden_size
        out = (y_buf, self._buffer(("h", k), (T + 1, B, H)), self._buffer(("c", k), (T + 1, B, H)),
               self._buffer(("gates", k), (T, B, 4 * H)))
        y, h, c, gates = self._ops.lstm_forward(x, state0[0], state0[1], *w, lengths, reverse, out=out)
        fin = (h[0], c[0]) if reverse else (h[-1], c[-1])
        return y, fin, (x, h, c, gates, reverse)

    def _direction_backward(self, dy, dstate_n, cache, lengths, w, g, dx_buf):
        x, h, c, gates, reverse = cache
        dx, dh0, dc0 = self._ops.lstm_backward(dy, dstate_n[0], dstate_n[1], x, h, c, gates,
                                               w[0], w[1], w[4], lengths, reverse, *g,
                                               out=(dx_buf, None, None))
        return dx, (dh0, dc0)

    def extra_repr(self):
        s = super().extra_repr()
        return s + ", peephole=True" if self.peephole else s


class GRU(_Recurrent):
    """GRU with PyTorch's gate order r, z, n. ``reset_after=True`` is torch.nn.GRU
    (reset applied to ``W_hn h + b_hn``); ``reset_after=False`` is the original GRU
    of Cho et al. (reset applied to h before the product), same parameters."""

    G = 3

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, reset_after=True, dtype=np.float32,
                 backend=None, seed=None):
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, backend=backend, seed=seed)

    def _direction_forward(self, x, state0, lengths, reverse, w, k, y_buf):
        T, B = x.shape[:2]
        H = self.hidden_size
        out = (y_buf, self._buffer(("h", k), (T + 1, B, H)), self._buffer(("gates", k), (T, B, 3 * H)),
               self._buffer(("hn", k), (T, B, H)))
        y, h, gates, hn = self._ops.gru_forward(x, state0[0], *w, self.reset_after, lengths, reverse,
                                                out=out)
        return y, (h[0] if reverse else h[-1],), (x, h, gates, hn, reverse)

    def _direction_backward(self, dy, dstate_n, cache, lengths, w, g, dx_buf):
        x, h, gates, hn, reverse = cache
        dx, dh0 = self._ops.gru_backward(dy, dstate_n[0], x, h, gates, hn, w[0], w[1],
                                         self.reset_after, lengths, reverse, *g, out=(dx_buf, None))
        return dx, (dh0,)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.reset_after else s + ", reset_after=False"

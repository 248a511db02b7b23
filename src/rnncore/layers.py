"""Multi-layer recurrent layers with PyTorch's parameters and semantics.

``RNN``, ``LSTM``, ``GRU`` and ``IndRNN`` take the arguments of ``torch.nn.RNN/LSTM/GRU``
(plus a few options of their own), hold their parameters under PyTorch's names and
shapes, and compute the same results with the same weights. Forward and backward
are explicit: ``forward`` saves what ``backward`` needs, ``backward`` returns the
gradients with respect to the input and the initial state and *adds* the
parameter gradients into ``grads``.

Keyword options every layer has beyond PyTorch's:

- ``weight_drop=p``: DropConnect on the recurrent weights (Merity et al. 2017, "Regularizing
  and Optimizing LSTM Language Models"): in training, each forward pass draws one mask
  from the layer's ``rng`` and runs with ``weight_hh * mask / (1 - p)`` for every step and
  sequence; backward masks that gradient the same way. Off under ``eval()`` (``weight_hh``
  as it is, the mask's expectation). Reseeding ``rng`` reproduces the masks.
- ``checkpoint_every=k``: memory-efficient BPTT (Chen et al. 2016, "Training Deep Nets with
  Sublinear Memory Cost"; Gruslys et al. 2016). Forward runs the sequence in segments of k
  steps and keeps only the states each segment starts from; backward recomputes one
  segment's forward at a time, last first, and runs that segment's backward, which adds
  its weight gradients before the next. Activation memory is that of T/k states plus k
  steps instead of T steps (k near sqrt(T) is the smallest); the cost is a second forward
  pass. Results and gradients equal the full path's up to the order of the weight
  gradients' sums. Sequences of at most k steps take the full path.
- ``zoneout=z``: zoneout (Krueger et al. 2017, "Zoneout: Regularizing RNNs by Randomly
  Preserving Hidden Activations", with haste's semantics): in training each unit of the
  new state keeps its previous value with probability z, ``h_t = m * h_{t-1} + (1 - m) *
  h~_t`` with ``m ~ Bernoulli(z)`` per (step, sequence, unit), for the LSTM also ``c_t``
  with its own mask (with ``proj_size=P``, ``h_t`` is the projected one, P units);
  ``y_t`` is the zoned-out ``h_t``. Under ``eval()`` the expectation,
  ``h_t = z * h_{t-1} + (1 - z) * h~_t``. Padded steps keep the state as always.
- ``recurrent_dropout=p``: variational dropout on the recurrent connection (Gal &
  Ghahramani 2016, "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks"; Keras's ``recurrent_dropout``): one mask ``M = Bernoulli(1 - p) / (1 - p)`` per
  (sequence, unit), the same at every step, on the state entering the recurrent product:
  the product is ``(h_{t-1} * M) @ weight_hh.T`` (IndRNN ``weight_hh * (h_{t-1} * M)``; with
  ``proj_size=P``, M covers the P units of h);
  the GRU's ``z * h_{t-1}`` keeps the unmasked state, and with ``reset_after=False`` the
  reset applies to the masked state, ``(r * (h_{t-1} * M)) @ weight_hn.T``. Off under
  ``eval()``.

Both run inside the kernels (``cpp/driver/regularise.h``, mirrored by the reference): the
masks are a counter-based hash of one 64-bit seed per forward pass and (layer, direction),
drawn from the layer's ``rng``, and of the absolute step, so reseeding ``rng`` reproduces
them and ``checkpoint_every`` draws the whole sequence's (each segment, and its
recomputation in backward, runs from its absolute first step). ``weight_drop`` combines
with both: it masks ``weight_hh`` before the kernels run.

One path for every cell and every stack: a layer is its ``CellSpec`` (``_spec.py``)
and runs each (layer, direction) through the backend's kernels for that cell.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from . import _checks, _spec, backends
from ._module import Module, is_grad_enabled


def aligned_empty(shape, dtype, align=64):
    """An uninitialised C-contiguous array starting on a cache-line boundary (threads
    write neighbouring column slices of the arrays the kernels fill, and BLAS reads
    aligned inputs faster)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip:skip + nbytes].view(dtype).reshape(shape)


class _Direction(NamedTuple):
    """What one (layer, direction)'s forward leaves for its backward."""

    x: np.ndarray                     # [T,B,I] its input
    histories: tuple                  # [T+1,B,width] per state (h: P wide; with checkpoints
                                      # the last segment's)
    saved: tuple                      # the cell's per-step buffers (likewise)
    reverse: bool
    w: _spec.Weights                  # the weights forward ran with (weight drop: w_hh masked)
    drop: Optional[np.ndarray]        # weight drop's scaled mask on w_hh, or None
    segments: Optional[list]          # with checkpoint_every: a _Segment per segment, in
                                      # processing order; None: histories hold every step
    reg: dict                         # zoneout and recurrent dropout as the kernels ran them ({}: off)
    unmixed: Optional[np.ndarray]     # zoneout: the kernels' unmixed states (likewise)


class _Segment(NamedTuple):
    """One stretch of a checkpointed sequence: steps [t0, t1) and the states it starts from."""

    t0: int
    t1: int
    states0: tuple                    # [B,H] per state, or None (zeros)


class _Saved(NamedTuple):
    """What one forward leaves for backward."""

    T: int
    B: int
    lengths: Optional[np.ndarray]
    directions: list                  # a _Direction per (layer, direction), k = layer * D + d
    masks: list                       # the dropout mask after each layer, or None


class _Recurrent(Module):
    spec: _spec.CellSpec  # set by each cell's class
    proj_size = 0         # LSTM's projection of h (0: none)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, weight_drop=0.0, checkpoint_every=None,
                 zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None, seed=None):
        super().__init__(dtype)
        self.input_size = _checks.positive_int("input_size", input_size)
        self.hidden_size = _checks.positive_int("hidden_size", hidden_size)
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = _checks.probability("dropout", dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.weight_drop = _checks.probability("weight_drop", weight_drop)
        self.checkpoint_every = (None if checkpoint_every is None
                                 else _checks.positive_int("checkpoint_every", checkpoint_every))
        self.zoneout = _checks.probability("zoneout", zoneout)
        self.recurrent_dropout = _checks.probability("recurrent_dropout", recurrent_dropout)
        self.backend, ops = backends.resolve(backend)
        self._forward_kernel, self._backward_kernel = _spec.kernels(ops, self.spec)[:2]
        self.rng = np.random.default_rng(seed)
        self._saved = None
        self._buffers = {}
        H, P, G, spec = self.hidden_size, self._out_size, self.spec.G, self.spec
        bound = 1.0 / math.sqrt(H)
        shapes = {}
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else P * self.num_directions
            for d in range(self.num_directions):
                sfx = self._suffix(layer, d)
                shapes[f"weight_ih{sfx}"] = (G * H, layer_in)
                shapes[f"weight_hh{sfx}"] = spec.weight_hh_shape(H, P)
                if self.bias:
                    shapes[f"bias_ih{sfx}"] = (G * H,)
                    shapes[f"bias_hh{sfx}"] = (G * H,)
                if spec.extra and self._has_extra():
                    shapes[spec.extra[0] + sfx] = (spec.extra[1] * H,)
                if spec.proj:
                    shapes[spec.proj + sfx] = (P, H)
                for name, width in spec.norm:
                    shapes[name + sfx] = (width * H,)
        count = sum(math.prod(s) for s in shapes.values())
        _checks.fits_in_memory(2 * count * self.dtype.itemsize, f"{type(self).__name__}'s parameters and gradients")
        norm = {name for name, _ in spec.norm}
        for name, shape in shapes.items():
            if name.rsplit("_l", 1)[0] in norm:
                self._add_param(name, _spec.norm_init(name, shape, self.dtype))
            else:
                self._add_param(name, _checks.uniform(self.rng, bound, shape, self.dtype))
        # (params, grads) of each (layer, direction): the arrays are updated in place by
        # optimizers and load_state_dict, so the records are built once
        self._weights = [(_spec.Weights.of(self.params, self._suffix(layer, d)),
                          _spec.Weights.of(self.grads, self._suffix(layer, d)))
                         for layer in range(self.num_layers) for d in range(self.num_directions)]

    def _has_extra(self):
        """Whether the cell's extra parameter is on (LSTM: peephole)."""
        return False

    @property
    def _out_size(self):
        """P: the width of h and of each direction's output (H without a projection)."""
        return self.proj_size or self.hidden_size

    @staticmethod
    def _suffix(layer, direction):
        return f"_l{layer}" + ("_reverse" if direction else "")

    def _cell_args(self, w):
        """The extra parameter and the option, as the kernels take them after w_ih, w_hh."""
        spec = self.spec
        return ((w.extra,) if spec.extra else ()) + ((getattr(self, spec.option),) if spec.option else ())

    def _state_width(self, k):
        """The width of state k: h is P wide with a projection, every other state H."""
        return self._out_size if k == 0 else self.hidden_size

    def _state_shape(self, B, k=0):
        """Of state k over all layers and directions: h (L*D,B,P), c (L*D,B,H)."""
        return (self.num_layers * self.num_directions, B, self._state_width(k))

    def _check_states(self, states, B, names):
        """Initial states (or final-state gradients): None, an array, or (LSTM) a tuple."""
        count = len(self.spec.states)
        if count == 1:
            states = (states,)
        elif states is None:
            states = (None,) * count
        elif not isinstance(states, (tuple, list)) or len(states) != count:
            raise TypeError(f"{'/'.join(names)}: expected a tuple ({', '.join(names)}) or None")
        return tuple(None if s is None else _checks.array(n, s, self.dtype, self._state_shape(B, k))
                     for k, (n, s) in enumerate(zip(names, states)))

    def _pack_states(self, states):
        return states[0] if len(states) == 1 else tuple(states)

    def _time_major(self, name, a, shape):
        """Check a (T,B,.) or, with batch_first, (B,T,.) array; return it time-major."""
        a = _checks.array(name, a, self.dtype, shape)
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.batch_first else a

    def _buffer(self, key, shape):
        """An internal array reused across calls (never one handed to the caller):
        fresh multi-megabyte arrays each call cost more in page faults than the
        arithmetic of a mid-sized step. None for key None (a fresh array from the kernel)."""
        if key is None:
            return None
        a = self._buffers.get(key)
        if a is None or a.shape != shape:
            a = self._buffers[key] = aligned_empty(shape, self.dtype)
        return a

    # ---- one (layer, direction) -------------------------------------------------------
    def _run_weights(self, k):
        """The weights (layer, direction) k runs with, and weight drop's scaled mask on
        w_hh (None when off): DropConnect (Merity et al. 2017), one mask per forward pass,
        drawn in training only; in evaluation w_hh as it is, the mask's expectation."""
        w = self._weights[k][0]
        if self.spec.norm:  # the gains and biases packed as the kernels take them
            w = w._replace(extra=_spec.pack_norm(self.spec, self.params, self._suffix(*divmod(k, self.num_directions))))
        p = self.weight_drop
        if not (self.training and p > 0):
            return w, None
        mask = self._buffer(("drop", k), w.w_hh.shape)
        np.greater_equal(self.rng.random(w.w_hh.shape), p, out=mask, casting="unsafe")
        mask *= 0.0 if p == 1 else 1.0 / (1.0 - p)
        return w._replace(w_hh=np.multiply(w.w_hh, mask, out=self._buffer(("dropped_hh", k), mask.shape))), mask

    def _regularise(self):
        """Zoneout and recurrent dropout for one (layer, direction)'s forward pass, as the
        kernels' keyword arguments ({} when both are off): in training one 64-bit seed from
        ``rng`` for all the masks of the pass; in evaluation zoneout's expectation and no
        recurrent dropout."""
        z, p = self.zoneout, self.recurrent_dropout if self.training else 0.0
        if not (z > 0 or p > 0):
            return {}
        seed = int(self.rng.integers(0, 2 ** 64, dtype=np.uint64)) if self.training else 0
        return {"zoneout": z, "recurrent_dropout": p, "seed": seed, "training": self.training}

    def _unmixed(self, key, reg, steps, B, n=None):
        """A buffer for the kernels' unmixed states [R, n, B, H] (n of ``steps``) when zoneout
        is on and the cell's backward reads new states, else None."""
        R = len(self.spec.step_reads_next)
        if not (reg and reg["zoneout"] > 0 and R):
            return None
        n = steps if n is None else n
        return self._buffer(key, (R * steps * B * self.hidden_size,))[:R * n * B * self.hidden_size].reshape(
            R, n, B, self.hidden_size)

    @staticmethod
    def _reg_args(reg, t0, unmixed):
        """The kernels' keyword arguments for reg from absolute step t0 (none when off)."""
        return dict(reg, t0=t0, unmixed=unmixed) if reg else {}

    def _segment_run(self, k, w, reg, x, states0, lengths, reverse, y, t0, t1):
        """Forward of steps [t0, t1) into the segment buffers of (layer, direction) k
        (sized for checkpoint_every steps and reused), y into y (its rows [t0, t1)).
        Returns (histories, saved, unmixed), views of the buffers."""
        n, c, B, H, spec = t1 - t0, self.checkpoint_every, x.shape[1], self.hidden_size, self.spec
        out = ((y,) + tuple(self._buffer(("seg", name, k), (c + 1, B, self._state_width(i)))[:n + 1]
                            for i, name in enumerate(spec.states))
               + tuple(self._buffer(("seg", name, k), (c, B, m * H))[:n] for name, m in spec.saved))
        seg_lengths = None if lengths is None else np.clip(lengths - t0, 0, n)
        unmixed = self._unmixed(("seg", "unmixed", k), reg, c, B, n)
        out = self._forward_kernel(x[t0:t1], *states0, w.w_ih, w.w_hh, *w.proj(), w.b_ih, w.b_hh,
                                   *self._cell_args(w), seg_lengths, reverse, out=out,
                                   **self._reg_args(reg, t0, unmixed))
        return tuple(out[1:1 + len(spec.states)]), tuple(out[1 + len(spec.states):]), unmixed

    def _segment_bounds(self, T, reverse):
        """The checkpointed segments' [t0, t1), in the direction's processing order."""
        c = self.checkpoint_every
        bounds = [(t0, min(t0 + c, T)) for t0 in range(0, T, c)]
        return bounds[::-1] if reverse else bounds

    def _direction_forward(self, k, x, states0, lengths, reverse, y_key):
        """Run (layer, direction) k on x, y into the buffer y_key (None: a new array for
        the caller). Returns (y [T,B,P], its final states, what its backward needs)."""
        T, B = x.shape[:2]
        H, P, spec = self.hidden_size, self._out_size, self.spec
        w, drop = self._run_weights(k)
        reg = self._regularise()
        if self.checkpoint_every is not None and T > self.checkpoint_every:
            return self._checkpointed_forward(k, w, drop, reg, x, states0, lengths, reverse, y_key)
        out = ((self._buffer(y_key, (T, B, P)),)
               + tuple(self._buffer((name, k), (T + 1, B, self._state_width(i))) for i, name in enumerate(spec.states))
               + tuple(self._buffer((name, k), (T, B, n * H)) for name, n in spec.saved))
        unmixed = self._unmixed(("unmixed", k), reg, T, B)
        out = self._forward_kernel(x, *states0, w.w_ih, w.w_hh, *w.proj(), w.b_ih, w.b_hh, *self._cell_args(w),
                                   lengths, reverse, out=out, **self._reg_args(reg, 0, unmixed))
        y, histories, saved = out[0], tuple(out[1:1 + len(spec.states)]), tuple(out[1 + len(spec.states):])
        return (y, [_spec.final_state(h, reverse) for h in histories],
                _Direction(x, histories, saved, reverse, w, drop, None, reg, unmixed))

    def _checkpointed_forward(self, k, w, drop, reg, x, states0, lengths, reverse, y_key):
        """Forward in segments of checkpoint_every steps, keeping only the states each
        segment starts from (Chen et al. 2016): memory O(T/k + k) steps instead of O(T)."""
        T, B = x.shape[:2]
        P, spec = self._out_size, self.spec
        y = self._buffer(y_key, (T, B, P)) if y_key is not None else aligned_empty((T, B, P), self.dtype)
        bounds = self._segment_bounds(T, reverse)
        keep = is_grad_enabled()
        # the states each segment starts from (all of them for backward, else the next
        # one only), copies: the kernels write a segment's states over the previous one's
        starts = [self._buffer(("start" if keep else "next", name, k),
                               (len(bounds) if keep else 1, B, self._state_width(i)))
                  for i, name in enumerate(spec.states)]
        segments, states = [], states0
        for i, (t0, t1) in enumerate(bounds):
            slot = i if keep else 0
            if i > 0 or keep:
                for a, s in zip(starts, states):
                    if s is not None:
                        a[slot] = s
                states = tuple(None if s is None else a[slot] for a, s in zip(starts, states))
            segments.append(_Segment(t0, t1, states))
            histories, saved, unmixed = self._segment_run(k, w, reg, x, states, lengths, reverse, y[t0:t1], t0, t1)
            states = tuple(_spec.final_state(h, reverse) for h in histories)
        finals = list(states)
        # the last segment's buffers stay as it left them: backward starts there
        return y, finals, _Direction(x, histories, saved, reverse, w, drop, segments, reg, unmixed)

    def _direction_backward(self, k, dy, dstates_n, saved: _Direction, lengths, dx_key):
        """Backward of (layer, direction) k, dx into the buffer dx_key (None: a new array
        for the caller). Returns (dx, the initial states' gradients)."""
        g = self._weights[k][1]
        if saved.drop is not None:  # the kernels' gradient is the masked weights'; the chain rule masks it
            dw_hh = self._buffer(("ddropped_hh", k), g.w_hh.shape)
            dw_hh.fill(0)
            g = g._replace(w_hh=dw_hh)
        if self.spec.norm:  # the kernels add into one packed dln, split by name below
            g = g._replace(extra=np.zeros(saved.w.extra.shape, self.dtype))
        if saved.segments is None:
            dx, ds0 = self._backward_run(g, dy, dstates_n, saved.x, saved.histories, saved.saved, saved.w, lengths,
                                         saved.reverse, self._buffer(dx_key, saved.x.shape),
                                         self._reg_args(saved.reg, 0, saved.unmixed))
        else:
            dx, ds0 = self._checkpointed_backward(k, g, dy, dstates_n, saved, lengths, dx_key)
        if saved.drop is not None:
            w_grad = self._weights[k][1].w_hh
            w_grad += g.w_hh * saved.drop
        if self.spec.norm:
            _spec.add_norm_grad(self.spec, self.grads, g.extra, self._suffix(*divmod(k, self.num_directions)))
        return dx, ds0

    def _backward_run(self, g, dy, dstates_n, x, histories, saved, w, lengths, reverse, dx_out, reg_args):
        grads = (g.w_ih, g.w_hh, *g.proj(), g.b_ih, g.b_hh) + ((g.extra,) if self.spec.extra else ())
        dx, *ds0 = self._backward_kernel(dy, *dstates_n, x, *histories, *saved, w.w_ih, w.w_hh, *w.proj(),
                                         *self._cell_args(w), lengths, reverse, *grads,
                                         out=(dx_out,) + (None,) * len(self.spec.states), **reg_args)
        return dx, ds0

    def _checkpointed_backward(self, k, g, dy, dstates_n, saved: _Direction, lengths, dx_key):
        """Backward segment by segment, last first: recompute a segment's forward from its
        starting states, then its backward, which adds that segment's weight gradients
        before the next (Gruslys et al. 2016). The state gradients carry across."""
        x, T, B = saved.x, saved.x.shape[0], saved.x.shape[1]
        dx = self._buffer(dx_key, x.shape) if dx_key is not None else aligned_empty(x.shape, self.dtype)
        scratch_y = self._buffer(("seg", "y", k), (self.checkpoint_every, B, self._out_size))
        carry = dstates_n
        for i, seg in enumerate(reversed(saved.segments)):
            t0, t1 = seg.t0, seg.t1
            if i == 0:  # the forward's last segment, still in the buffers
                histories, seg_saved, unmixed = saved.histories, saved.saved, saved.unmixed
            else:
                histories, seg_saved, unmixed = self._segment_run(k, saved.w, saved.reg, x, seg.states0, lengths,
                                                                  saved.reverse, scratch_y[:t1 - t0], t0, t1)
            seg_lengths = None if lengths is None else np.clip(lengths - t0, 0, t1 - t0)
            _, carry = self._backward_run(g, None if dy is None else dy[t0:t1], carry, x[t0:t1], histories, seg_saved,
                                          saved.w, seg_lengths, saved.reverse, dx[t0:t1],
                                          self._reg_args(saved.reg, t0, unmixed))
        return dx, carry

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
        (LSTM: (h_n, c_n)). With LSTM's proj_size P, h0, h_n and each direction's part
        of y are P wide (c0, c_n stay H)."""
        x_in = x
        x = self._time_major("x", x, (None, None, self.input_size))
        T, B = x.shape[0], x.shape[1]
        spec = self.spec
        c = self.checkpoint_every
        steps = T + 1 if c is None or T <= c else c + 1 + -(-T // c)  # the steps whose activations are kept
        _checks.fits_in_memory(self.num_layers * self.num_directions * (steps * (spec.G + 2) + T) * B
                               * self.hidden_size * self.dtype.itemsize, f"{type(self).__name__}.forward's activations")
        states0 = self._check_states(h0, B, tuple(f"{s}0" for s in spec.states))
        lengths = _checks.lengths(lengths, T, B)
        self._saved = None  # its buffers are about to be reused
        grad = is_grad_enabled()
        if grad and np.may_share_memory(x, x_in):
            # backward reads x: a caller reusing its buffer must not change it
            buf = self._buffer("x", x.shape)
            np.copyto(buf, x)
            x = buf
        L, D, P = self.num_layers, self.num_directions, self._out_size
        finals = [np.empty(self._state_shape(B, k), self.dtype) for k in range(len(spec.states))]
        directions, masks = [], []
        inp = x
        for layer in range(L):
            last = layer == L - 1
            ys = []
            for d in range(D):
                k = layer * D + d
                if D == 2:
                    y_key = ("y", k)
                else:  # the last layer's y goes to the caller: a fresh array
                    y_key = None if last else ("out", layer)
                y, fin, direction = self._direction_forward(k, inp, tuple(None if s is None else s[k] for s in states0),
                                                            lengths, bool(d), y_key)
                ys.append(y)
                directions.append(direction)
                for f, final in zip(finals, fin):
                    f[k] = final
            if D == 1:
                out = ys[0]
            else:
                out = np.empty((T, B, D * P), self.dtype) if last else self._buffer(("out", layer), (T, B, D * P))
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
            self._saved = _Saved(T, B, lengths, directions, masks)
        y = inp.transpose(1, 0, 2) if self.batch_first else inp
        return y, self._pack_states(finals)

    def _backward(self, dy=None, dh_n=None):
        saved = self._saved
        if saved is None:
            raise RuntimeError("backward: no saved forward pass (call forward first, "
                               "outside rnncore.no_grad())")
        T, B, P = saved.T, saved.B, self._out_size
        L, D = self.num_layers, self.num_directions
        if dy is not None:
            shape = (B, T, D * P) if self.batch_first else (T, B, D * P)
            dy = self._time_major("dy", dy, shape)
        dstates_n = self._check_states(dh_n, B, tuple(f"d{s}_n" for s in self.spec.states))
        dstates0 = [np.empty(self._state_shape(B, k), self.dtype) for k in range(len(self.spec.states))]
        grad = dy
        for layer in reversed(range(L)):
            if grad is not None and saved.masks[layer] is not None:
                grad = np.multiply(grad, saved.masks[layer], out=self._buffer(("dmask", layer), grad.shape))
            dx = None
            for d in range(D):
                k = layer * D + d
                dy_d = grad
                if grad is not None and D == 2:
                    dy_d = self._buffer(("dy", k), (T, B, P))
                    np.copyto(dy_d, grad[:, :, d * P:(d + 1) * P])
                first = layer == 0 and D == 1  # its dx goes to the caller: a fresh array
                dx_d, ds0 = self._direction_backward(k, dy_d, tuple(None if s is None else s[k] for s in dstates_n),
                                                     saved.directions[k], saved.lengths, None if first else ("dx", k))
                if dx is None:
                    dx = dx_d
                else:
                    dx = np.add(dx, dx_d, out=None if layer == 0 else self._buffer(("dxsum", layer), dx.shape))
                for ds, d0 in zip(dstates0, ds0):
                    ds[k] = d0
            grad = dx
        dx = grad.transpose(1, 0, 2) if self.batch_first else grad
        return dx, self._pack_states(dstates0)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("weight_drop", 0.0), ("checkpoint_every", None),
                              ("zoneout", 0.0), ("recurrent_dropout", 0.0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s + f", dtype={self.dtype}, backend={self.backend!r}"

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class RNN(_Recurrent):
    """Elman RNN, ``h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``, phi in
    tanh, relu or sigmoid (torch.nn.RNN has the first two)."""

    spec = _spec.ELMAN

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, weight_drop=0.0,
                 checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None,
                 seed=None):
        self.nonlinearity = _checks.one_of("nonlinearity", nonlinearity, _spec.NONLINEARITIES)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, weight_drop=weight_drop,
                         checkpoint_every=checkpoint_every, zoneout=zoneout,
                         recurrent_dropout=recurrent_dropout, dtype=dtype, backend=backend, seed=seed)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"


class IndRNN(_Recurrent):
    """Independently recurrent network (Li et al. 2018), ``h_t = phi(W_ih x_t + b_ih +
    w_hh * h_{t-1} + b_hh)`` with ``weight_hh_l{k}`` a vector of shape (H,): each unit sees
    only its own past. phi is relu (the default), tanh or sigmoid; the constructor,
    options, parameter names and API are those of ``RNN``."""

    spec = _spec.INDRNN

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="relu", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, weight_drop=0.0,
                 checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None,
                 seed=None):
        self.nonlinearity = _checks.one_of("nonlinearity", nonlinearity, _spec.NONLINEARITIES)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, weight_drop=weight_drop,
                         checkpoint_every=checkpoint_every, zoneout=zoneout,
                         recurrent_dropout=recurrent_dropout, dtype=dtype, backend=backend, seed=seed)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "relu" else s + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_Recurrent):
    """LSTM with PyTorch's gate order i, f, g, o; ``peephole=True`` adds Gers et al.'s
    diagonal peephole weights ``weight_ch_l{k}`` [3H] (i, f, o) from the cell state.

    ``proj_size=P`` (0 < P < hidden_size; 0, the default, is none) is torch.nn.LSTM's
    projection: h_t = W_hr (o_t * tanh(c_t)) with ``weight_hr_l{k}`` [P,H], so h0/h_n
    are (L*D,B,P), the output has D*P features, ``weight_hh_l{k}`` is [4H,P] and layer
    k>0 reads D*P inputs; c stays H wide (the peepholes, which read c, combine with it).

    ``layer_norm=True`` is haste's LayerNormLSTM (layer normalisation, Ba et al. 2016,
    "Layer Normalization"; lmnt-com/haste's ``layer_norm_lstm.py``)::

        a_t = LN(W_ih x_t) * ln_weight_ih + LN(W_hh h_{t-1}) * ln_weight_hh + b_ih + b_hh
        i, f, o = sigmoid(a_i, a_f, a_o)    g = tanh(a_g)    c_t = f * c_{t-1} + i * g
        h_t = o * tanh(LN(c_t) * ln_weight_c + ln_bias_c)

    with ``LN(v) = (v - mean(v)) / sqrt(var(v) + 1e-5)`` over all 4H pre-activations of a
    row (over the H units of c), the biased variance; gains ``ln_weight_ih_l{k}``,
    ``ln_weight_hh_l{k}`` [4H] and ``ln_weight_c_l{k}`` [H] start at 1, ``ln_bias_c_l{k}``
    [H] at 0 (haste's gamma[0], gamma[1], gamma_h, beta_h; its single bias is b_ih + b_hh;
    the G*H vectors in PyTorch's gate order i, f, g, o, haste's is i, g, f, o). It does
    not combine with ``proj_size`` or ``peephole``."""

    spec = _spec.LSTM

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, proj_size=0, peephole=False, layer_norm=False,
                 weight_drop=0.0, checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32,
                 backend=None, seed=None):
        self.peephole = bool(peephole)
        self.proj_size = _checks.proj_size(proj_size, _checks.positive_int("hidden_size", hidden_size))
        self.layer_norm = _checks.layer_norm(layer_norm, proj_size=self.proj_size, peephole=self.peephole)
        if self.proj_size:
            self.spec = _spec.LSTMP
        if self.layer_norm:
            self.spec = _spec.LSTM_LN
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, weight_drop=weight_drop,
                         checkpoint_every=checkpoint_every, zoneout=zoneout,
                         recurrent_dropout=recurrent_dropout, dtype=dtype, backend=backend, seed=seed)

    def _has_extra(self):
        return self.peephole

    def extra_repr(self):
        s = super().extra_repr()
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.layer_norm:
            s += ", layer_norm=True"
        return s + ", peephole=True" if self.peephole else s


class GRU(_Recurrent):
    """GRU with PyTorch's gate order r, z, n. ``reset_after=True`` is torch.nn.GRU
    (reset applied to ``W_hn h + b_hn``); ``reset_after=False`` is the original GRU
    of Cho et al. (reset applied to h before the product), same parameters.

    ``layer_norm=True`` is haste's LayerNormGRU (layer normalisation, Ba et al. 2016;
    lmnt-com/haste's ``layer_norm_gru.py``), in the reset-after form only::

        ax = LN(W_ih x_t) * ln_weight_ih + b_ih      ah = LN(W_hh h_{t-1}) * ln_weight_hh + b_hh
        r = sigmoid(ax_r + ah_r)   z = sigmoid(ax_z + ah_z)   n = tanh(ax_n + r * ah_n)
        h_t = (1 - z) * n + z * h_{t-1}

    with ``LN(v) = (v - mean(v)) / sqrt(var(v) + 1e-5)`` over all 3H pre-activations of a
    row, the biased variance; gains ``ln_weight_ih_l{k}``, ``ln_weight_hh_l{k}`` [3H]
    start at 1 (haste's gamma[0], gamma[1]; its bias and recurrent_bias are b_ih, b_hh;
    the 3H vectors in PyTorch's gate order r, z, n, haste's is z, r, n)."""

    spec = _spec.GRU

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, reset_after=True, layer_norm=False, weight_drop=0.0,
                 checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, dtype=np.float32, backend=None,
                 seed=None):
        self.reset_after = bool(reset_after)
        self.layer_norm = _checks.layer_norm(layer_norm, reset_after=self.reset_after)
        if self.layer_norm:
            self.spec = _spec.GRU_LN
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, weight_drop=weight_drop,
                         checkpoint_every=checkpoint_every, zoneout=zoneout,
                         recurrent_dropout=recurrent_dropout, dtype=dtype, backend=backend, seed=seed)

    def extra_repr(self):
        s = super().extra_repr()
        if self.layer_norm:
            s += ", layer_norm=True"
        return s if self.reset_after else s + ", reset_after=False"

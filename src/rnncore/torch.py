"""rnncore's kernels inside PyTorch: drop-in ``torch.nn`` modules.

``rnncore.torch.RNN``, ``LSTM``, ``GRU`` and ``RNNCell``, ``LSTMCell``, ``GRUCell`` are
``torch.nn.Module`` subclasses with the constructor arguments, forward signature,
parameter names, shapes and initialisation of ``torch.nn.RNN`` (and friends): a script
that swaps its import trains the same model, and ``state_dict()`` loads both ways
between them. Forward and backward run rnncore's kernels through
``torch.autograd.Function``: tensors and NumPy arrays share memory (``Tensor.numpy()``,
``torch.from_numpy``), weight gradients come back through autograd and accumulate in
``.grad`` like any parameter's (LSTM's ``proj_size`` included). What rnncore adds is
keyword-only: ``peephole=True`` (LSTM), ``reset_after=False`` (GRU), ``layer_norm=True``
(LSTM, GRU and their cells: haste's LayerNormLSTM and LayerNormGRU, as ``rnncore.LSTM``'s),
``nonlinearity="sigmoid"`` (RNN), ``lengths=`` (variable lengths without packing),
``weight_drop=p`` (DropConnect on ``weight_hh``, one mask per forward pass in training,
drawn from torch's generator: ``torch.manual_seed`` reproduces it), ``checkpoint_every=k``
(memory-efficient BPTT, as ``rnncore.LSTM``'s), ``backend="reference"``, and on ``RNN``,
``LSTM`` and ``GRU`` (not the cells) ``zoneout=`` and ``recurrent_dropout=`` (as in
``rnncore.layers``; the masks' seeds come from torch's generator, one per forward pass
and (layer, direction), so ``torch.manual_seed`` reproduces them). All of them combine:
weight drop masks ``weight_hh`` before the kernels, the regularisers act inside them, and
``checkpoint_every`` recomputes each segment with the same seeds and absolute steps.

CPU tensors of float32 or float64 only: a CUDA tensor, another dtype, a sparse tensor
or a forward-mode (dual) tensor raises ``TypeError``/``ValueError`` naming the argument.
The backward is first-order: differentiating it again (``create_graph=True``, then
backward through the result) raises ``RuntimeError``.

Importing this module imports PyTorch (``pip install rnncore[torch]``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import _checks, _threads, backends
from .reference.common import NONLINEARITIES

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

DTYPES = (torch.float32, torch.float64)


# ---- the kernels of one cell: the only place that calls them ---------------------------------
class _Kernels:
    """One cell's sequence and step kernels on NumPy arrays (``rnncore.backends``).

    ``forward`` returns (y, final states, saved arrays), ``backward`` adds into the
    weight-gradient arrays and returns (dx, initial-state gradients); the step
    functions likewise for one step. Weights are (w_ih, w_hh, b_ih, b_hh, w_ch, w_hr), None
    where absent; with proj (LSTM's proj_size) the LSTM runs the lstmp kernels, which take
    w_hr and save m as well; with norm (layer_norm) the lstm_ln and gru_ln kernels, w_ch's
    place holding their packed gains and biases ``ln``."""

    def __init__(self, kind, backend, option, proj=False, norm=False):
        self.kind, self.option, self.proj, self.norm = kind, option, proj, norm
        self.backend, self.ops = backends.resolve(backend)
        self.n_states = 2 if kind == "lstm" else 1

    def __getstate__(self):  # pickling a module (torch.save, copy.deepcopy): the backend by name
        return self.kind, self.backend, self.option, self.proj, self.norm

    def __setstate__(self, state):
        self.__init__(*state)

    def forward(self, x, s0, w, lengths, reverse, reg):
        """reg: zoneout and recurrent dropout as the kernels' keyword arguments ({}: off;
        t0 the absolute step of x[0]). With zoneout the last saved array is the kernels'
        unmixed states (the RNN's h, the LSTM's c: H wide, even with a projection)."""
        if self.backend == "native":
            _threads.claim_cores()
        ops, o = self.ops, self.option
        H = w[0].shape[0] // (4 if self.kind == "lstm" else 1)
        unmixed = (np.empty((1, *x.shape[:2], H), x.dtype)
                   if reg.get("zoneout", 0) > 0 and self.kind != "gru" and not self.norm else None)
        kw = dict(reg, unmixed=unmixed) if reg else {}
        if self.kind == "rnn":
            y, h = ops.elman_forward(x, s0[0], *w[:4], o, lengths, reverse, **kw)
            fin, saved = (h[0] if reverse else h[-1],), (h,)
        elif self.kind == "lstm" and self.norm:
            y, h, c, *saved = ops.lstm_ln_forward(x, s0[0], s0[1], *w[:5], lengths, reverse, **kw)
            fin, saved = ((h[0], c[0]) if reverse else (h[-1], c[-1])), (h, c, *saved)
        elif self.norm:
            y, h, *saved = ops.gru_ln_forward(x, s0[0], *w[:5], lengths, reverse, **kw)
            fin, saved = (h[0] if reverse else h[-1],), (h, *saved)
        elif self.kind == "lstm" and self.proj:
            y, h, c, *saved = ops.lstmp_forward(x, s0[0], s0[1], w[0], w[1], w[5], *w[2:5], lengths, reverse, **kw)
            fin, saved = ((h[0], c[0]) if reverse else (h[-1], c[-1])), (h, c, *saved)
        elif self.kind == "lstm":
            y, h, c, gates = ops.lstm_forward(x, s0[0], s0[1], *w[:5], lengths, reverse, **kw)
            fin, saved = ((h[0], c[0]) if reverse else (h[-1], c[-1])), (h, c, gates)
        else:
            y, h, gates, hn = ops.gru_forward(x, s0[0], *w[:4], o, lengths, reverse, **kw)
            fin, saved = (h[0] if reverse else h[-1],), (h, gates, hn)
        return y, fin, saved + (() if unmixed is None else (unmixed,))

    def backward(self, dy, ds_n, x, saved, w, lengths, reverse, g, reg):
        if self.backend == "native":
            _threads.claim_cores()
        ops, o = self.ops, self.option
        kw = {}
        if reg:
            has_unmixed = reg["zoneout"] > 0 and self.kind != "gru" and not self.norm
            kw = dict(reg, unmixed=saved[-1] if has_unmixed else None)
            saved = saved[:-1] if has_unmixed else saved
        if self.kind == "rnn":
            dx, dh0 = ops.elman_backward(dy, ds_n[0], x, *saved, w[0], w[1], o, lengths, reverse, *g[:4], **kw)
            return dx, (dh0,)
        if self.kind == "lstm" and self.norm:
            dx, dh0, dc0 = ops.lstm_ln_backward(dy, ds_n[0], ds_n[1], x, *saved, w[0], w[1], w[4], lengths, reverse,
                                                *g[:5], **kw)
            return dx, (dh0, dc0)
        if self.norm:
            dx, dh0 = ops.gru_ln_backward(dy, ds_n[0], x, *saved, w[0], w[1], w[4], lengths, reverse, *g[:5], **kw)
            return dx, (dh0,)
        if self.kind == "lstm" and self.proj:
            dx, dh0, dc0 = ops.lstmp_backward(dy, ds_n[0], ds_n[1], x, *saved, w[0], w[1], w[5], w[4], lengths,
                                              reverse, g[0], g[1], g[5], *g[2:5], **kw)
            return dx, (dh0, dc0)
        if self.kind == "lstm":
            dx, dh0, dc0 = ops.lstm_backward(dy, ds_n[0], ds_n[1], x, *saved, w[0], w[1], w[4], lengths, reverse,
                                             *g[:5], **kw)
            return dx, (dh0, dc0)
        dx, dh0 = ops.gru_backward(dy, ds_n[0], x, *saved, w[0], w[1], o, lengths, reverse, *g[:4], **kw)
        return dx, (dh0,)

    def step_forward(self, x, s, w):
        """-> (new states, saved arrays)."""
        ops, o = self.ops, self.option
        if self.kind == "rnn":
            return (ops.elman_step_forward(x, s[0], *w[:4], o),), ()
        if self.kind == "lstm" and self.norm:
            h, c, *saved = ops.lstm_ln_step_forward(x, s[0], s[1], *w[:5])
            return (h, c), tuple(saved)
        if self.norm:
            h, *saved = ops.gru_ln_step_forward(x, s[0], *w[:5])
            return (h,), tuple(saved)
        if self.kind == "lstm":
            h, c, gates = ops.lstm_step_forward(x, s[0], s[1], *w[:5])
            return (h, c), (gates,)
        h, gates, hn = ops.gru_step_forward(x, s[0], *w[:4], o)
        return (h,), (gates, hn)

    def step_backward(self, ds, x, s, new, saved, w, g):
        """ds: gradients reaching the new states (LSTM: dc may be None) -> (dx, state gradients)."""
        ops, o = self.ops, self.option
        if self.kind == "rnn":
            dx, dh = ops.elman_step_backward(ds[0], x, s[0], new[0], w[0], w[1], o, *g[:4])
            return dx, (dh,)
        if self.kind == "lstm" and self.norm:
            dx, dh, dc = ops.lstm_ln_step_backward(ds[0], ds[1], x, s[0], s[1], *saved, w[0], w[1], w[4], *g[:5])
            return dx, (dh, dc)
        if self.norm:
            dx, dh = ops.gru_ln_step_backward(ds[0], x, s[0], *saved, w[0], w[1], w[4], *g[:5])
            return dx, (dh,)
        if self.kind == "lstm":
            dx, dh, dc = ops.lstm_step_backward(ds[0], ds[1], x, s[0], s[1], new[1], saved[0], w[0], w[1], w[4],
                                                *g[:5])
            return dx, (dh, dc)
        dx, dh = ops.gru_step_backward(ds[0], x, s[0], *saved, w[0], w[1], o, *g[:4])
        return dx, (dh,)


def _np(t):
    """A NumPy view of a CPU tensor (no copy), or None."""
    return None if t is None else t.detach().numpy()


def _np_contiguous(t):
    """An incoming gradient as a C-contiguous array (a copy only when it is not one,
    e.g. the expanded ones of ``y.sum()``'s backward), or None."""
    return None if t is None else np.ascontiguousarray(t.detach().numpy())


def _grad_buffers(w):
    """Zeroed gradient tensors for the weights that exist (the kernels add into them)."""
    return [None if p is None else torch.zeros(p.shape, dtype=p.dtype) for p in w]


class _Sequence(torch.autograd.Function):
    """One (layer, direction) over a whole sequence.

    Inputs: kernels, lengths (int64 array or None), reverse, reg (zoneout and recurrent
    dropout, a dict), x [T,B,I] (contiguous), h0 [B,P], c0 [B,H] or None, w_ih, w_hh, b_ih,
    b_hh, w_ch, w_hr (None where absent). Outputs: y [T,B,P] and the final states (one or
    two); P is H without a projection."""

    @staticmethod
    def forward(ctx, kernels, lengths, reverse, reg, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, w_hr):
        w = (w_ih, w_hh, b_ih, b_hh, w_ch, w_hr)
        y, fin, saved = kernels.forward(_np(x), (_np(h0), _np(c0)), tuple(map(_np, w)), lengths, reverse, reg)
        ctx.kernels, ctx.lengths, ctx.reverse, ctx.reg = kernels, lengths, reverse, reg
        ctx.has_state = (h0 is not None, c0 is not None)
        ctx.set_materialize_grads(False)
        # x and the weights through save_for_backward: modifying them in place before
        # backward is then torch's usual error, not a wrong gradient
        ctx.save_for_backward(x, *w, *(torch.from_numpy(a) for a in saved))
        # final states are copies: they must not alias the history backward reads
        return (torch.from_numpy(y),) + tuple(torch.from_numpy(f.copy()) for f in fin)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, *dfin):
        x, *rest = ctx.saved_tensors
        w, saved = rest[:6], [_np(t) for t in rest[6:]]
        g = _grad_buffers(w)
        k = ctx.kernels
        dx, ds0 = k.backward(_np_contiguous(dy), tuple(map(_np_contiguous, dfin)), _np(x), saved,
                             tuple(map(_np, w)), ctx.lengths, ctx.reverse, tuple(map(_np, g)), ctx.reg)
        need = ctx.needs_input_grad
        dstates = [torch.from_numpy(ds0[i]) if ctx.has_state[i] and need[5 + i] else None for i in range(2)]
        if k.n_states == 1:
            dstates[1] = None
        return (None, None, None, None, torch.from_numpy(dx) if need[4] else None, *dstates,
                *(gi if need[7 + i] else None for i, gi in enumerate(g)))


class _CheckpointedSequence(torch.autograd.Function):
    """``_Sequence`` with ``checkpoint_every=k`` (memory-efficient BPTT, as the NumPy
    layers' option): forward runs segments of k steps and keeps only the states each
    starts from; backward recomputes one segment's forward at a time, last first, and
    runs its backward, which adds that segment's weight gradients.

    Inputs: kernels, lengths, reverse, k, reg, then those of ``_Sequence`` from x. Zoneout and
    recurrent dropout (reg) run each segment with the pass's seed and t0 = the segment's
    first step, so the masks are the whole sequence's and a recomputed segment draws the
    ones its forward drew."""

    @staticmethod
    def forward(ctx, kernels, lengths, reverse, every, reg, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, w_hr):
        w = (w_ih, w_hh, b_ih, b_hh, w_ch, w_hr)
        xn, wn, T = _np(x), tuple(map(_np, w)), x.shape[0]
        bounds = [(t0, min(t0 + every, T)) for t0 in range(0, T, every)]
        if reverse:
            bounds.reverse()
        # the initial states copied: the caller may change h0 before backward
        starts, states, y = [], tuple(None if t is None else _np(t).copy() for t in (h0, c0)), None
        for t0, t1 in bounds:
            starts.append(states)
            seg, fin, _ = kernels.forward(xn[t0:t1], states, wn, _segment_lengths(lengths, t0, t1), reverse,
                                          _segment_reg(reg, t0))
            if y is None:
                y = np.empty((T,) + seg.shape[1:], seg.dtype)
            y[t0:t1] = seg
            # copies: a view would keep the segment's whole history alive
            states = tuple(f.copy() for f in fin) + (None,) * (2 - len(fin))
        ctx.kernels, ctx.lengths, ctx.reverse, ctx.reg = kernels, lengths, reverse, reg
        ctx.bounds, ctx.starts = bounds, starts
        ctx.has_state = (h0 is not None, c0 is not None)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, *w)
        return (torch.from_numpy(y),) + tuple(torch.from_numpy(f) for f in states[:kernels.n_states])

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, *dfin):
        x, *w = ctx.saved_tensors
        g = _grad_buffers(w)
        k, xn, wn, gn = ctx.kernels, _np(x), tuple(map(_np, w)), tuple(map(_np, g))
        dyn = _np_contiguous(dy)
        dx = np.empty_like(xn)
        carry = tuple(map(_np_contiguous, dfin))
        for (t0, t1), states in zip(reversed(ctx.bounds), reversed(ctx.starts)):
            lengths = _segment_lengths(ctx.lengths, t0, t1)
            reg = _segment_reg(ctx.reg, t0)
            _, _, saved = k.forward(xn[t0:t1], states, wn, lengths, ctx.reverse, reg)
            dx[t0:t1], carry = k.backward(None if dyn is None else dyn[t0:t1], carry, xn[t0:t1], saved, wn, lengths,
                                          ctx.reverse, gn, reg)
        need = ctx.needs_input_grad
        dstates = [torch.from_numpy(carry[i]) if i < k.n_states and ctx.has_state[i] and need[6 + i] else None
                   for i in range(2)]
        return (None, None, None, None, None, torch.from_numpy(dx) if need[5] else None, *dstates,
                *(gi if need[8 + i] else None for i, gi in enumerate(g)))


def _segment_lengths(lengths, t0, t1):
    """The lengths of a segment [t0, t1) of sequences of the given lengths."""
    return None if lengths is None else np.clip(lengths - t0, 0, t1 - t0)


def _segment_reg(reg, t0):
    """The regularisers' keyword arguments for a segment starting at absolute step t0."""
    return dict(reg, t0=t0) if reg else {}


class _Step(torch.autograd.Function):
    """One step of a cell. Inputs: kernels, x [B,I], h [B,H], c [B,H] or None, weights.
    Outputs: the new states (one or two)."""

    @staticmethod
    def forward(ctx, kernels, x, h, c, w_ih, w_hh, b_ih, b_hh, w_ch, w_hr):
        w = (w_ih, w_hh, b_ih, b_hh, w_ch, w_hr)
        s = (_np(h),) if c is None else (_np(h), _np(c))
        new, saved = kernels.step_forward(_np(x), s, tuple(map(_np, w)))
        outs = tuple(torch.from_numpy(a) for a in new)
        ctx.kernels = kernels
        ctx.set_materialize_grads(False)
        # the new states are outputs the caller may modify in place; saving them makes
        # that torch's usual error (as for torch.nn's cells) instead of a wrong gradient
        ctx.save_for_backward(x, h, c, *w, *outs, *(torch.from_numpy(a) for a in saved))
        ctx.n_out = len(outs)
        return outs

    @staticmethod
    @once_differentiable
    def backward(ctx, *dnew):
        x, h, c, *rest = ctx.saved_tensors
        w, new, saved = rest[:6], rest[6:6 + ctx.n_out], rest[6 + ctx.n_out:]
        k = ctx.kernels
        if all(d is None for d in dnew):
            return (None,) * 10
        ds = [_np_contiguous(d) for d in dnew]
        if ds[0] is None:  # the kernels take dh as an array; dc may be None
            ds[0] = np.zeros(tuple(new[0].shape), _np(new[0]).dtype)
        g = _grad_buffers(w)
        s = (h,) if c is None else (h, c)
        dx, dstates = k.step_backward(ds, _np(x), tuple(map(_np, s)), tuple(map(_np, new)), tuple(map(_np, saved)),
                                      tuple(map(_np, w)), tuple(map(_np, g)))
        need = ctx.needs_input_grad
        dh = torch.from_numpy(dstates[0]) if need[2] else None
        dc = torch.from_numpy(dstates[1]) if c is not None and need[3] else None
        return (None, torch.from_numpy(dx) if need[1] else None, dh, dc,
                *(gi if need[4 + i] else None for i, gi in enumerate(g)))


# ---- argument checks --------------------------------------------------------------------------
def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def _proj_size(value, hidden_size):
    """0 (no projection) or an int in [1, hidden_size), as torch.nn.LSTM's proj_size."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"proj_size: expected an int (0 for no projection), got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"proj_size: expected 0 (no projection) or a positive int, got {value}")
    if value >= hidden_size:
        raise ValueError(f"proj_size: must be smaller than hidden_size ({hidden_size}), got {value}")
    return int(value)


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _layer_norm(module, value):
    """layer_norm, checked against the options it does not combine with."""
    return _checks.layer_norm(_flag("layer_norm", value), proj_size=getattr(module, "proj_size", 0),
                              peephole=module.peephole, reset_after=getattr(module, "reset_after", True))


_NORM = {"lstm": (("ln_weight_ih", 4), ("ln_weight_hh", 4), ("ln_weight_c", 1), ("ln_bias_c", 1)),
         "gru": (("ln_weight_ih", 3), ("ln_weight_hh", 3))}


def _register_norm(module, G, sfx, dtype):
    """The layer norm's parameters of one (layer, direction), registered; their names."""
    if not module.layer_norm:
        return ()
    names = []
    for base, width in _NORM[module._kind]:
        module.register_parameter(base + sfx, nn.Parameter(torch.empty(width * module.hidden_size, dtype=dtype)))
        names.append(base + sfx)
    return tuple(names)


def _reset(module, H):
    """U(-1/sqrt(H), 1/sqrt(H)) for the parameters torch.nn has, in registration order; the
    layer norm's gains 1 and biases 0."""
    bound = 1.0 / math.sqrt(H)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("ln_bias"):
                p.zero_()
            elif name.startswith("ln_weight"):
                p.fill_(1.0)
            else:
                nn.init.uniform_(p, -bound, bound)


def _factory(device, dtype):
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"device: rnncore runs on the CPU, got {device!r}")
    if dtype is None:
        dtype = torch.get_default_dtype()
    if dtype not in DTYPES:
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    return dtype


def _check_tensor(name, t, dtype):
    """A CPU, strided tensor of dtype without a forward-mode tangent."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name}: rnncore runs on the CPU, got a tensor on {t.device} "
                         f"(move it with .cpu(), or the module with .to('cpu'))")
    if t.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got layout {t.layout}")
    if t.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} (the module's dtype), got {t.dtype} "
                        f"(convert with .to({dtype}); rnncore never casts silently)")
    if _forward_ad_active() and torch.autograd.forward_ad.unpack_dual(t).tangent is not None:
        raise TypeError(f"{name}: forward-mode gradients (a dual tensor) are not available from rnncore; "
                        f"use reverse mode (backward)")
    return t


def _forward_ad_active():
    return getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0


def _weights_dtype(module, params):
    """The dtype of the module's parameters, checked: CPU, float32/float64, all the same."""
    dtype = None
    for name, p in params:
        if p.device.type != "cpu":
            raise ValueError(f"{name}: rnncore runs on the CPU, got a parameter on {p.device}")
        if p.dtype not in DTYPES:
            raise TypeError(f"{name}: rnncore computes in torch.float32 or torch.float64, got {p.dtype}")
        if dtype is None:
            dtype = p.dtype
        elif p.dtype != dtype:
            raise TypeError(f"{name}: {p.dtype}, but the module's other parameters are {dtype}")
        _check_tensor(name, p, dtype)
    return dtype


def _lengths(lengths, T, B):
    """B integer lengths in [0, T] -> int64 array, from a tensor, array or sequence."""
    if lengths is None:
        return None
    if isinstance(lengths, torch.Tensor):
        if lengths.device.type != "cpu":
            raise ValueError(f"lengths: expected a CPU tensor, got one on {lengths.device}")
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(f"lengths: expected integers, got {lengths.dtype}")
        a = lengths.numpy()
    elif isinstance(lengths, np.ndarray):
        a = lengths
    elif isinstance(lengths, (list, tuple)):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in lengths):
            raise TypeError("lengths: expected integers")
        a = np.asarray(lengths, dtype=np.int64)
    else:
        raise TypeError(f"lengths: expected a tensor, array or list of integers, got {type(lengths).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got {a.dtype}")
    if a.shape != (B,):
        raise ValueError(f"lengths: expected {B} lengths (one per sequence), got shape {tuple(a.shape)}")
    if a.size and (a.min() < 0 or a.max() > T):
        raise ValueError(f"lengths: every length must be in [0, {T}], got {a[(a < 0) | (a > T)][0]}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _pack_like(y, packed):
    """y [T,B,F] in the caller's batch order -> a PackedSequence laid out as ``packed``."""
    bs = packed.batch_sizes
    if packed.sorted_indices is not None:
        y = y.index_select(1, packed.sorted_indices)
    mask = torch.arange(y.shape[1])[None, :] < bs[:, None]
    return PackedSequence(y[mask], bs, packed.sorted_indices, packed.unsorted_indices)


# ---- the sequence modules ---------------------------------------------------------------------
class _RNNBase(nn.Module):
    _kind = ""
    _G = 1

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                 device, dtype, backend, option, peephole=False, proj_size=0, weight_drop=0.0,
                 checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, layer_norm=False):
        super().__init__()
        dtype = _factory(device, dtype)
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.bias = _flag("bias", bias)
        self.batch_first = _flag("batch_first", batch_first)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        self.bidirectional = _flag("bidirectional", bidirectional)
        self.peephole = _flag("peephole", peephole)
        if isinstance(weight_drop, bool) or not isinstance(weight_drop, numbers.Real) or not 0 <= weight_drop <= 1:
            raise ValueError(f"weight_drop: expected a probability in [0, 1], got {weight_drop!r}")
        self.weight_drop = float(weight_drop)
        self.checkpoint_every = None if checkpoint_every is None else _positive_int("checkpoint_every",
                                                                                    checkpoint_every)
        self.zoneout = _checks.probability("zoneout", zoneout)
        self.recurrent_dropout = _checks.probability("recurrent_dropout", recurrent_dropout)
        self.proj_size = _proj_size(proj_size, self.hidden_size)
        self.layer_norm = _layer_norm(self, layer_norm)
        self._kernels = _Kernels(self._kind, backend, option, self.proj_size > 0, self.layer_norm)
        self.backend = self._kernels.backend
        D, H, G = self.num_directions, self.hidden_size, self._G
        P = self.proj_size or H
        self._names = []  # per (layer, direction): the six weight names, None where absent
        self._norm_names = []  # per (layer, direction): the layer norm's, packed into w_ch's place
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else P * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = {"weight_ih": (G * H, layer_in), "weight_hh": (G * H, P),
                          "bias_ih": (G * H,) if self.bias else None, "bias_hh": (G * H,) if self.bias else None,
                          "weight_ch": (3 * H,) if self.peephole else None,
                          "weight_hr": (P, H) if self.proj_size else None}
                names = []
                for base, shape in shapes.items():
                    if shape is None:
                        names.append(None)
                        continue
                    self.register_parameter(base + sfx, nn.Parameter(torch.empty(shape, dtype=dtype)))
                    names.append(base + sfx)
                self._names.append(tuple(names))
                self._norm_names.append(_register_norm(self, G, sfx, dtype))
        self.reset_parameters()

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def reset_parameters(self):
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, in registration order, from
        torch's generator: under the same ``torch.manual_seed`` the same values as
        torch.nn.RNN/LSTM/GRU. The layer norm's gains start at 1, its biases at 0 (haste's),
        drawing nothing."""
        _reset(self, self.hidden_size)

    def flatten_parameters(self):
        """Nothing to do (kept for code written for cuDNN)."""

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names if n is not None] for names in self._names]

    def _state_names(self):
        return ("hx",) if self._kind != "lstm" else ("hx[0]", "hx[1]")

    def _check_states(self, hx, dtype, B, batched):
        """None or the initial states as (L*D, B, H) contiguous tensors."""
        names = self._state_names()
        if hx is None:
            return (None,) * len(names)
        if len(names) == 2:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx: expected a tuple (h0, c0) of tensors, got {type(hx).__name__}")
            states = tuple(hx)
        else:
            states = (hx,)
        LD = self.num_layers * self.num_directions
        out = []
        for k, (n, s) in enumerate(zip(names, states)):
            H = (self.proj_size or self.hidden_size) if k == 0 else self.hidden_size  # h is P wide
            shape = (LD, B, H) if batched else (LD, H)
            _check_tensor(n, s, dtype)
            if tuple(s.shape) != shape:
                raise ValueError(f"{n}: expected shape {shape}, got {tuple(s.shape)}")
            out.append((s if batched else s.unsqueeze(1)).contiguous())
        return tuple(out)

    def forward(self, input, hx=None, *, lengths=None):
        """input: (T, B, I) (batch_first: (B, T, I)), unbatched (T, I), or a PackedSequence.
        hx: None (zeros), or the initial state (L*D, B, H) (LSTM: a tuple (h0, c0)).
        lengths (keyword): B integers in [0, T], instead of packing; outputs past a
        sequence's length are zero and its final state is the one after its last step.

        Returns (output, h_n) (LSTM: (output, (h_n, c_n))) as torch.nn.RNN/LSTM/GRU do."""
        params = list(self.named_parameters())
        dtype = _weights_dtype(self, params)
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths: give a PackedSequence or lengths, not both")
            _check_tensor("input.data", input.data, dtype)
            x, lens = pad_packed_sequence(input)  # (T, B, I) in the caller's batch order
            if x.shape[-1] != self.input_size:
                raise ValueError(f"input: expected {self.input_size} features, got {x.shape[-1]}")
            batched, T, B = True, x.shape[0], x.shape[1]
            lengths = lens.numpy().astype(np.int64)
        else:
            _check_tensor("input", input, dtype)
            if input.dim() not in (2, 3):
                raise ValueError(f"input: expected a 3-D (batched) or 2-D (unbatched) tensor, got {input.dim()}-D")
            if input.shape[-1] != self.input_size:
                raise ValueError(f"input: expected {self.input_size} features in the last dimension, "
                                 f"got shape {tuple(input.shape)}")
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1 if not self.batch_first else 0)
            if self.batch_first:
                x = x.transpose(0, 1)
            T, B = x.shape[0], x.shape[1]
            if lengths is not None and not batched:
                raise ValueError("lengths: only for batched input")
            lengths = _lengths(lengths, T, B)
        states0 = self._check_states(hx, dtype, B, batched)
        y, finals = self._run(x.contiguous(), states0, lengths)
        if packed:
            y = _pack_like(y, input)
        else:
            if self.batch_first:
                y = y.transpose(0, 1)
            if not batched:
                y = y.squeeze(1 if not self.batch_first else 0)
                finals = tuple(f.squeeze(1) for f in finals)
        return y, (finals[0] if len(finals) == 1 else finals)

    @torch.compiler.disable
    def _run(self, x, states0, lengths):
        """The layers and directions, each one kernel call through autograd (under
        torch.compile a graph break: the kernels are opaque to the compiler)."""
        L, D = self.num_layers, self.num_directions
        k_states = len(states0)
        finals = [[] for _ in range(k_states)]
        inp = x
        for layer in range(L):
            outs = []
            for d in range(D):
                k = layer * D + d
                s0 = [None if s is None else s[k] for s in states0] + [None] * (2 - k_states)
                w = [None if n is None else getattr(self, n) for n in self._names[k]]
                if self.layer_norm:  # packed as the kernels take them; autograd splits the gradient
                    w[4] = torch.cat([getattr(self, n) for n in self._norm_names[k]])
                if self.weight_drop > 0 and self.training:  # one mask per forward pass; autograd masks the gradient
                    p = self.weight_drop
                    w[1] = w[1] * torch.empty_like(w[1]).bernoulli_(1 - p).mul_(0.0 if p == 1 else 1 / (1 - p))
                reg = self._regularise()
                every = self.checkpoint_every
                if every is not None and x.shape[0] > every:
                    y, *fin = _CheckpointedSequence.apply(self._kernels, lengths, bool(d), every, reg, inp, *s0, *w)
                else:
                    y, *fin = _Sequence.apply(self._kernels, lengths, bool(d), reg, inp, *s0, *w)
                outs.append(y)
                for i, f in enumerate(fin):
                    finals[i].append(f)
            out = outs[0] if D == 1 else torch.cat(outs, 2)
            if layer < L - 1 and self.dropout > 0 and self.training:
                out = nn.functional.dropout(out, self.dropout, True)
            inp = out
        return inp, tuple(f[0].unsqueeze(0) if len(f) == 1 else torch.stack(f) for f in finals)

    def _regularise(self):
        """Zoneout and recurrent dropout for one (layer, direction)'s forward pass, as the
        kernels' keyword arguments ({} when off), as rnncore.layers does, but the seed from
        torch's generator."""
        z, p = self.zoneout, self.recurrent_dropout if self.training else 0.0
        if not (z > 0 or p > 0):
            return {}
        seed = int(torch.randint(0, 2 ** 63 - 1, (), dtype=torch.int64)) if self.training else 0
        return {"zoneout": z, "recurrent_dropout": p, "seed": seed, "training": self.training}

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("proj_size", 0), ("peephole", False), ("layer_norm", False), ("weight_drop", 0.0),
                              ("checkpoint_every", None),
                              ("zoneout", 0.0), ("recurrent_dropout", 0.0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s + ("" if self.backend == "native" else f", backend={self.backend!r}")


class RNN(_RNNBase):
    """Elman RNN as torch.nn.RNN, on rnncore's kernels; ``nonlinearity`` may also be
    ``"sigmoid"``."""

    _kind, _G = "rnn", 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, *, weight_drop=0.0, checkpoint_every=None,
                 zoneout=0.0, recurrent_dropout=0.0, backend=None):
        if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {', '.join(map(repr, NONLINEARITIES))}, "
                             f"got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, backend, nonlinearity, weight_drop=weight_drop,
                         checkpoint_every=checkpoint_every, zoneout=zoneout, recurrent_dropout=recurrent_dropout)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_RNNBase):
    """LSTM as torch.nn.LSTM (gates i, f, g, o), on rnncore's kernels. ``proj_size=P``
    (0 < P < hidden_size) projects h as torch does: h_t = W_hr (o_t * tanh(c_t)) with
    ``weight_hr_l{k}`` [P,H], h0/h_n (L*D,B,P), output D*P features. ``peephole=True``
    adds Gers et al.'s diagonal peepholes ``weight_ch_l{k}`` [3H] (i, f, o), which read c
    and combine with a projection. ``layer_norm=True`` is ``rnncore.LSTM(layer_norm=True)``
    (haste's LayerNormLSTM; Ba et al. 2016) with its parameters ``ln_weight_ih_l{k}``,
    ``ln_weight_hh_l{k}`` [4H], ``ln_weight_c_l{k}``, ``ln_bias_c_l{k}`` [H]."""

    _kind, _G = "lstm", 4

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, peephole=False, layer_norm=False,
                 weight_drop=0.0, checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, backend=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, backend, None, peephole=peephole, proj_size=proj_size,
                         weight_drop=weight_drop, checkpoint_every=checkpoint_every, zoneout=zoneout,
                         recurrent_dropout=recurrent_dropout, layer_norm=layer_norm)


class GRU(_RNNBase):
    """GRU as torch.nn.GRU (gates r, z, n, reset applied to ``W_hn h + b_hn``), on
    rnncore's kernels; ``reset_after=False`` is Cho et al.'s original form (reset applied
    to h before the product), with the same parameters. ``layer_norm=True`` is
    ``rnncore.GRU(layer_norm=True)`` (haste's LayerNormGRU; Ba et al. 2016) with its gains
    ``ln_weight_ih_l{k}``, ``ln_weight_hh_l{k}`` [3H]."""

    _kind, _G = "gru", 3

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, reset_after=True, layer_norm=False, weight_drop=0.0,
                 checkpoint_every=None, zoneout=0.0, recurrent_dropout=0.0, backend=None):
        self.reset_after = _flag("reset_after", reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, backend, self.reset_after, weight_drop=weight_drop,
                         checkpoint_every=checkpoint_every, zoneout=zoneout, recurrent_dropout=recurrent_dropout,
                         layer_norm=layer_norm)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.reset_after else s + ", reset_after=False"


# ---- the cells --------------------------------------------------------------------------------
class _CellBase(nn.Module):
    _kind = ""
    _G = 1

    def __init__(self, input_size, hidden_size, bias, device, dtype, backend, option, peephole=False,
                 layer_norm=False):
        super().__init__()
        dtype = _factory(device, dtype)
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.bias = _flag("bias", bias)
        self.peephole = _flag("peephole", peephole)
        self.layer_norm = _layer_norm(self, layer_norm)
        self._kernels = _Kernels(self._kind, backend, option, False, self.layer_norm)
        self.backend = self._kernels.backend
        H, G = self.hidden_size, self._G
        shapes = {"weight_ih": (G * H, self.input_size), "weight_hh": (G * H, H),
                  "bias_ih": (G * H,) if self.bias else None, "bias_hh": (G * H,) if self.bias else None,
                  "weight_ch": (3 * H,) if self.peephole else None, "weight_hr": None}
        self._names = tuple(None if s is None else n for n, s in shapes.items())
        for name, shape in shapes.items():
            if shape is not None:
                self.register_parameter(name, nn.Parameter(torch.empty(shape, dtype=dtype)))
        self._norm_names = _register_norm(self, G, "", dtype)
        self.reset_parameters()

    def reset_parameters(self):
        """U(-1/sqrt(H), 1/sqrt(H)), as torch.nn's cells (same values under the same seed);
        the layer norm's gains 1 and biases 0."""
        _reset(self, self.hidden_size)

    def forward(self, input, hx=None):
        """input (B, I) or unbatched (I,); hx None (zeros) or (B, H) (LSTMCell: a tuple
        (h, c)). Returns h' (LSTMCell: (h', c')) as torch.nn's cells do."""
        dtype = _weights_dtype(self, list(self.named_parameters()))
        _check_tensor("input", input, dtype)
        if input.dim() not in (1, 2):
            raise ValueError(f"input: expected a 2-D (batched) or 1-D (unbatched) tensor, got {input.dim()}-D")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input: expected {self.input_size} features in the last dimension, "
                             f"got shape {tuple(input.shape)}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B, H = x.shape[0], self.hidden_size
        lstm = self._kind == "lstm"
        names = ("hx[0]", "hx[1]") if lstm else ("hx",)
        if hx is None:
            states = [torch.zeros((B, H), dtype=dtype) for _ in names]
        else:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"hx: expected a tuple (h, c) of tensors, got {type(hx).__name__}")
                states = list(hx)
            else:
                states = [hx]
            shape = (B, H) if batched else (H,)
            for i, (n, s) in enumerate(zip(names, states)):
                _check_tensor(n, s, dtype)
                if tuple(s.shape) != shape:
                    raise ValueError(f"{n}: expected shape {shape}, got {tuple(s.shape)}")
                states[i] = (s if batched else s.unsqueeze(0)).contiguous()
        new = self._step(x.contiguous(), states[0], states[1] if lstm else None)
        if not batched:
            new = tuple(s.squeeze(0) for s in new)
        return tuple(new) if lstm else new[0]

    @torch.compiler.disable
    def _step(self, x, h, c):
        """One kernel call through autograd (under torch.compile a graph break)."""
        w = [None if n is None else getattr(self, n) for n in self._names]
        if self.layer_norm:  # packed as the kernels take them; autograd splits the gradient
            w[4] = torch.cat([getattr(self, n) for n in self._norm_names])
        return _Step.apply(self._kernels, x, h, c, *w)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.peephole:
            s += ", peephole=True"
        if self.layer_norm:
            s += ", layer_norm=True"
        return s + ("" if self.backend == "native" else f", backend={self.backend!r}")


class RNNCell(_CellBase):
    """One Elman step as torch.nn.RNNCell; ``nonlinearity`` may also be ``"sigmoid"``."""

    _kind, _G = "rnn", 1

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None, *,
                 backend=None):
        if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {', '.join(map(repr, NONLINEARITIES))}, "
                             f"got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype, backend, nonlinearity)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(_CellBase):
    """One LSTM step as torch.nn.LSTMCell; ``peephole=True`` adds ``weight_ch`` [3H];
    ``layer_norm=True`` is one step of ``LSTM(layer_norm=True)`` (``ln_weight_ih``, ...)."""

    _kind, _G = "lstm", 4

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, peephole=False,
                 layer_norm=False, backend=None):
        super().__init__(input_size, hidden_size, bias, device, dtype, backend, None, peephole=peephole,
                         layer_norm=layer_norm)


class GRUCell(_CellBase):
    """One GRU step as torch.nn.GRUCell; ``reset_after=False`` is Cho et al.'s form;
    ``layer_norm=True`` is one step of ``GRU(layer_norm=True)`` (``ln_weight_ih``, ...)."""

    _kind, _G = "gru", 3

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, reset_after=True,
                 layer_norm=False, backend=None):
        self.reset_after = _flag("reset_after", reset_after)
        super().__init__(input_size, hidden_size, bias, device, dtype, backend, self.reset_after,
                         layer_norm=layer_norm)

    def extra_repr(self):
        s = super().extra_repr()
        return s if self.reset_after else s + ", reset_after=False"

"""The reference's recurrence driver: one sequence loop and one gradient tail for every
cell, as the native driver (cpp/driver/) runs them; each cell module gives only its step
maths. Also the shared pieces: dimension letters, activations, masks.

Dimension letters, used word for word in ``cpp/runtime/common.h``:

    T  time steps          B  batch           I  input size
    H  hidden size         G  gates per cell (Elman 1, IndRNN 1, GRU 3, LSTM 4)
    L  layers              D  directions (1, or 2 when bidirectional)
    P  the width of h and y: H, or the projection size (LSTMP, torch's proj_size)

Layouts are time-major and C-contiguous: ``x [T,B,I]``, gate pre-activations and
post-activations ``[T,B,G*H]`` with the gates in PyTorch's order as contiguous
blocks of H, and the state history ``h [T+1,B,H]``.

The state history of one direction is stored in *time* order so that the weight
gradients are single matrix products after the backward loop:

* forward direction: ``h[0]`` is the initial state, ``h[t+1]`` the state after
  step ``t``; the state fed into step ``t`` is ``h[t]`` and the final state ``h[T]``.
* reverse direction: ``h[T]`` is the initial state, ``h[t]`` the state after step
  ``t`` (steps run ``t = T-1 ... 0``); the state fed into step ``t`` is
  ``h[t+1]`` and the final state ``h[0]``.

Variable lengths: for sequence ``b`` the steps ``t >= lengths[b]`` are padding. A
padded step leaves the state unchanged and writes a zero output, so the forward
direction ends on each sequence's last valid step and the reverse direction starts
there. In backward a padded step passes the state gradient through unchanged and
contributes nothing to any weight gradient.

A cell (an object of the cell modules) has ``spec`` (its ``rnncore._spec.CellSpec``: gates,
states, saved buffers) and::

    project(x, p)                -> the input projection of all rows, [rows, G*H] (one GEMM)
    state_widths(H, p)           -> the width of each state (LSTMP: h is P wide)
    step(pre_t, prev, hin, p)    -> (new states, saved per-step buffers); hin is the h_{t-1}
                                    the recurrence multiplies by w_hh (prev[0], or its
                                    recurrent-dropout-masked copy)
    step_backward(d, prev, hin, new, saved, p)
                                 -> (dax, dah, dprev, dhin): d is the gradients reaching
                                    the new states; dax, dah those of the input-side and the
                                    recurrent-side pre-activations; dprev the previous
                                    states' through their direct uses (None: zero), dhin hin's
    extra_grad(g, dah, prev, new, valid)
                                 adds the extra parameter's gradient into g.extra (LSTM
                                 peepholes; valid [B,1] the rows of the step that count, or
                                 None: all), and the layer-normalised cells' gain and bias
                                 gradients (their biases act after the norms, so
                                 ``bias_from_preact`` is False: the tail does not sum dax, dah)
    weight_grad(dw_hh, dah, h_in, saved) adds dw_hh (h_in: the hin of every step)
    proj_grad(dw_hr, dh, saved)  adds dw_hr from the whole gradient reaching each h (only a
                                 cell whose spec has a projection; with zoneout, the cell's
                                 share of it)

Zoneout and variational recurrent dropout are the driver's, around the step maths, as in
``cpp/driver/regularise.h`` (whose comment has the formulations). Zoneout (Krueger et al.
2017): ``s_t = m * s_{t-1} + (1 - m) * s~_t`` per state with ``m ~ Bernoulli(z)`` per
(t, b, unit), or ``m = z`` without masks (evaluation); backward sends ``(1 - m)`` of the
gradient reaching ``s_t`` into the cell and ``m`` straight to ``s_{t-1}``. Recurrent
dropout (Gal & Ghahramani 2016): ``hin = h_{t-1} * M``, one mask ``M = Bernoulli(1 - p) /
(1 - p)`` per (b, unit) for the whole sequence. The masks are the same counter-based hash
of (seed, stream, t, b, unit) as the kernels', with t absolute (``t0`` plus the step), and
each state's as wide as the state (the LSTMP's h and M: P units).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .._spec import NONLINEARITIES, CellSpec, final_state  # noqa: F401  (re-exported)


class Params(NamedTuple):
    """One direction's parameters, or (same fields) their gradients; None where absent."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray] = None
    b_hh: Optional[np.ndarray] = None
    extra: Optional[np.ndarray] = None
    w_hr: Optional[np.ndarray] = None


def sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)); exact in both tails (exp overflow gives 0)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def activate(a, nonlinearity):
    """phi(a) for the Elman and IndRNN cells."""
    if nonlinearity == "tanh":
        return np.tanh(a)
    if nonlinearity == "relu":
        return np.maximum(a, 0)
    if nonlinearity == "sigmoid":
        return sigmoid(a)
    raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")


def activate_grad(y, nonlinearity):
    """phi'(a) written in terms of the output y = phi(a), as the kernels do."""
    if nonlinearity == "tanh":
        return 1 - y * y
    if nonlinearity == "relu":
        return (y > 0).astype(y.dtype)
    if nonlinearity == "sigmoid":
        return y * (1 - y)
    raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")


def add(dst, value):
    """dst += value, for a gradient that may be absent (None)."""
    if dst is not None:
        dst += value


def step_order(T, reverse):
    """Time indices in the order a direction visits them."""
    return range(T - 1, -1, -1) if reverse else range(T)


def prev_index(t, reverse):
    """Index into the state history h [T+1,B,H] of the state fed into step t."""
    return t + 1 if reverse else t


def next_index(t, reverse):
    """Index into the state history of the state produced by step t."""
    return t if reverse else t + 1


def valid_mask(T, B, lengths, dtype):
    """[T,B,1] array, 1 where step t of sequence b is real, 0 where it is padding.

    None when every step is real (lengths is None)."""
    if lengths is None:
        return None
    t = np.arange(T)[:, None]
    return (t < np.asarray(lengths)[None, :]).astype(dtype)[:, :, None]


def initial_state(h, reverse):
    return h[-1] if reverse else h[0]


def into(out, results):
    """Return results, copied into the caller's buffers where ``out`` gives them.

    The native kernels take ``out=(...)`` to reuse buffers across calls; the reference
    accepts the same argument so that the two backends are interchangeable."""
    if out is None:
        return results
    if not isinstance(out, tuple) or len(out) != len(results):
        raise TypeError(f"out: expected None or a tuple of {len(results)} arrays")
    done = []
    for buf, r in zip(out, results):
        if buf is None:
            done.append(r)
        else:
            buf[...] = r
            done.append(buf)
    return tuple(done)


def regularise(zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True):
    """The kernels' keyword arguments as a Regularise."""
    return Regularise(float(zoneout), float(recurrent_dropout), int(seed), int(t0), bool(training))


def forward_into(out, unmixed_out, result):
    """A forward's results into the caller's buffers (``into``), and its unmixed states into
    ``unmixed_out``, which the kernels require exactly when there are any."""
    results, unmixed = result
    if (unmixed is None) != (unmixed_out is None):
        raise ValueError("unmixed: required with zoneout > 0 when the cell's backward reads new states, else None")
    if unmixed is not None:
        unmixed_out[...] = unmixed
    return into(out, results)


def project(x, w_ih, b1=None, b2=None):
    """x [rows,I] @ w_ih.T plus the biases: the input projection of every step at once."""
    a = x @ w_ih.T
    if b1 is not None:
        a += b1 + b2 if b2 is not None else b1
    return a


# ---- the regularisers (cpp/driver/regularise.h) ---------------------------------------

class Regularise(NamedTuple):
    """What the driver applies around the step maths; the defaults: nothing."""

    zoneout: float = 0.0            # z: probability of keeping each unit's previous state
    recurrent_dropout: float = 0.0  # p
    seed: int = 0                   # the masks' seed, in [0, 2**64)
    t0: int = 0                     # absolute time of step 0
    training: bool = True           # zoneout: masks (True) or its expectation z (False)


OFF = Regularise()
_GOLDEN = np.uint64(0x9e3779b97f4a7c15)


def _mix(z):
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
    return z ^ (z >> np.uint64(31))


def _next(key, v):
    return _mix(key + (v + np.uint64(1)) * _GOLDEN)


def _u64(v):
    return np.full(1, v, np.uint64)  # arrays, never scalars: their arithmetic wraps silently


def _fmix32(x):
    """murmur3's 32-bit finaliser on a uint32 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85ebca6b)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xc2b2ae35)
    return x ^ (x >> np.uint32(16))


def uniforms(seed, stream, t, B, H):
    """[B,H] uniforms in [0,1) of (seed, stream, t, b, unit), the kernels' hash: stream 0 is
    recurrent dropout (at t = 0), stream 1 + k zoneout of state k. A row's key is
    splitmix64 of (seed, stream, t, b) folded to 32 bits; unit j's 32 bits are murmur3's
    finaliser of key + (j + 1) * 0x9e3779b9 (mod 2**32)."""
    key = _next(_next(_next(_u64(seed), _u64(stream)), _u64(t)), np.arange(B, dtype=np.uint64))
    key32 = (key ^ (key >> np.uint64(32))).astype(np.uint32)  # folded: the low 32 bits of key ^ key >> 32
    units = (np.arange(H, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9e3779b9)
    bits = _fmix32(key32[:, None] + units.astype(np.uint32)[None, :])
    return bits.astype(np.float64) * 2.0 ** -32


def dropout_mask(reg, B, H, dtype):
    """Recurrent dropout's M [B,H]: 1/(1-p) where a unit is kept, else 0."""
    p = reg.recurrent_dropout
    scale = np.dtype(dtype).type(1.0 / (1.0 - p) if p < 1 else 0.0)
    return np.where(uniforms(reg.seed, 0, 0, B, H) >= p, scale, np.dtype(dtype).type(0))


def zoneout_mix(reg, k, t, new, prev):
    """State k after zoneout at (local) step t: prev where the mask keeps it, else new."""
    if not reg.training:
        z = new.dtype.type(reg.zoneout)
        return z * prev + (new.dtype.type(1) - z) * new
    return np.where(uniforms(reg.seed, 1 + k, reg.t0 + t, *new.shape) < reg.zoneout, prev, new)


def zoneout_split(reg, k, t, g):
    """(the cell's share, the share going straight to the previous state) of the gradient
    g reaching state k at step t."""
    if not reg.training:
        z = g.dtype.type(reg.zoneout)
        return (g.dtype.type(1) - z) * g, z * g
    m = uniforms(reg.seed, 1 + k, reg.t0 + t, *g.shape) < reg.zoneout
    return np.where(m, 0, g).astype(g.dtype), np.where(m, g, 0).astype(g.dtype)


def read_states(spec):
    """Indices of the states the cell's backward reads (the unmixed buffers' order)."""
    return [k for k, name in enumerate(spec.states) if name in spec.step_reads_next]


def _merge(dprev, dhin, M):
    """The previous states' gradients: direct uses (None: zero) plus hin's, masked."""
    dh = dhin if M is None else dhin * M
    return (dh if dprev[0] is None else dprev[0] + dh, *dprev[1:])


# ---- the driver ------------------------------------------------------------------------

def sequence_forward(cell, x, states0, p, lengths, reverse, reg=OFF):
    """One direction of a whole sequence: (y [T,B,P], state histories [T+1,B,width]...,
    saved per-step buffers [T,B,width*H]...) and, with zoneout, the unmixed new states
    [R,T,B,width] of the states the cell's backward reads (else None)."""
    T, B, I = x.shape
    N = p.w_ih.shape[0]
    H = N // cell.spec.G
    pre = cell.project(x.reshape(T * B, I), p).reshape(T, B, N)
    valid = valid_mask(T, B, lengths, bool)
    hist = [np.empty((T + 1, B, w), x.dtype) for w in cell.state_widths(H, p)]
    for h, s0 in zip(hist, states0):
        h[T if reverse else 0] = 0 if s0 is None else s0
    y = np.empty((T, B, hist[0].shape[2]), x.dtype)
    saved = [np.empty((T, B, width * H), x.dtype) for _, width in cell.spec.saved]
    M = dropout_mask(reg, B, hist[0].shape[2], x.dtype) if reg.recurrent_dropout > 0 else None
    reads = read_states(cell.spec)
    unmixed = np.zeros((len(reads), T, B, hist[reads[0]].shape[2]), x.dtype) if reg.zoneout > 0 and reads else None
    for t in step_order(T, reverse):
        prev = tuple(h[prev_index(t, reverse)] for h in hist)
        new, sv = cell.step(pre[t], prev, prev[0] if M is None else prev[0] * M, p)
        if reg.zoneout > 0:
            for r, k in enumerate(reads if unmixed is not None else []):
                unmixed[r, t] = new[k] if valid is None else np.where(valid[t], new[k], 0)
            new = tuple(zoneout_mix(reg, k, t, s, s_prev) for k, (s, s_prev) in enumerate(zip(new, prev)))
        if valid is not None:  # padding keeps the state, outputs zero, saves zeros
            new = tuple(np.where(valid[t], s, s_prev) for s, s_prev in zip(new, prev))
            sv = tuple(np.where(valid[t], v, 0) for v in sv)
        y[t] = new[0] if valid is None else np.where(valid[t], new[0], 0)
        for h, s in zip(hist, new):
            h[next_index(t, reverse)] = s
        for buf, v in zip(saved, sv):
            buf[t] = v
    return (y, *hist, *saved), unmixed


def sequence_backward(cell, dy, dstates_n, x, hist, saved, p, lengths, reverse, g, reg=OFF, unmixed=None):
    """Backpropagation through time for one direction; adds into the gradients g (a
    Params of gradients). Returns (dx [T,B,I], the initial states' gradients...)."""
    T, B, I = x.shape
    N = p.w_ih.shape[0]
    P = hist[0].shape[2]
    valid = valid_mask(T, B, lengths, bool)
    M = dropout_mask(reg, B, P, x.dtype) if reg.recurrent_dropout > 0 else None
    reads = read_states(cell.spec) if reg.zoneout > 0 else []
    d = [np.zeros((B, h.shape[2]), x.dtype) if s is None else np.array(s, x.dtype) for s, h in zip(dstates_n, hist)]
    dax, dah = np.zeros((T, B, N), x.dtype), np.zeros((T, B, N), x.dtype)
    dh = np.zeros((T, B, P), x.dtype) if cell.spec.proj else None  # the whole gradient reaching each h
    for t in reversed(step_order(T, reverse)):
        p_t, n_t = prev_index(t, reverse), next_index(t, reverse)
        prev, new = tuple(h[p_t] for h in hist), [h[n_t] for h in hist]
        for r, k in enumerate(reads):  # the cell differentiates the states before mixing
            new[k] = unmixed[r, t]
        dnew = [d[0] if dy is None else d[0] + dy[t]] + d[1:]
        keep = None
        if reg.zoneout > 0:
            dnew, keep = zip(*(zoneout_split(reg, k, t, dk) for k, dk in enumerate(dnew)))
        hin = prev[0] if M is None else prev[0] * M
        dax_t, dah_t, dprev, dhin = cell.step_backward(list(dnew), prev, hin, tuple(new), tuple(v[t] for v in saved),
                                                       p)
        dprev = _merge(dprev, dhin, M)
        if keep is not None:
            dprev = tuple(dp + kp for dp, kp in zip(dprev, keep))
        if valid is not None:  # padding passes the state gradients through, adds nothing
            dax_t, dah_t = np.where(valid[t], dax_t, 0), np.where(valid[t], dah_t, 0)
            dprev = tuple(np.where(valid[t], dp, dk) for dp, dk in zip(dprev, d))
        cell.extra_grad(g, dah_t, prev, new, None if valid is None else valid[t])
        dax[t], dah[t] = dax_t, dah_t
        if dh is not None:
            dh[t] = dnew[0] if valid is None else np.where(valid[t], dnew[0], 0)
        d = list(dprev)
    h_in = hist[0][1:] if reverse else hist[0][:-1]
    if M is not None:
        h_in = h_in * M
    flat = tuple(v.reshape(T * B, v.shape[2]) for v in saved)
    dx = tail(cell, dax.reshape(T * B, N), dah.reshape(T * B, N), x.reshape(T * B, I), h_in.reshape(T * B, P),
              flat, p, g)
    if dh is not None:
        cell.proj_grad(g.w_hr, dh.reshape(T * B, P), flat)
    return (dx.reshape(x.shape), *d)


def step_forward(cell, x, prev, p, reg=OFF):
    """One step: (new states..., saved buffers...) and, with zoneout, the unmixed new
    states [R,B,width] (else None)."""
    B, P = prev[0].shape
    M = dropout_mask(reg, B, P, x.dtype) if reg.recurrent_dropout > 0 else None
    new, saved = cell.step(cell.project(x, p), prev, prev[0] if M is None else prev[0] * M, p)
    unmixed, reads = None, read_states(cell.spec)
    if reg.zoneout > 0:
        unmixed = np.stack([new[k] for k in reads]) if reads else None
        new = tuple(zoneout_mix(reg, k, 0, s, s_prev) for k, (s, s_prev) in enumerate(zip(new, prev)))
    return (*new, *saved), unmixed


def step_backward(cell, dnew, x, prev, new, saved, p, g, reg=OFF):
    """Backward of one step (new: the states the cell reads, with zoneout the unmixed ones):
    adds into g; returns (dx, the previous states' gradients...)."""
    B, P = prev[0].shape
    M = dropout_mask(reg, B, P, x.dtype) if reg.recurrent_dropout > 0 else None
    dnew, keep = list(dnew), None
    if reg.zoneout > 0:
        dnew, keep = zip(*(zoneout_split(reg, k, 0, dk) for k, dk in enumerate(dnew)))
    hin = prev[0] if M is None else prev[0] * M
    dax, dah, dprev, dhin = cell.step_backward(list(dnew), prev, hin, new, saved, p)
    dprev = _merge(dprev, dhin, M)
    if keep is not None:
        dprev = tuple(dp + kp for dp, kp in zip(dprev, keep))
    cell.extra_grad(g, dah, prev, new, None)
    if cell.spec.proj:
        cell.proj_grad(g.w_hr, dnew[0], saved)
    return (tail(cell, dax, dah, x, hin, saved, p, g), *dprev)


def tail(cell, dax, dah, x, h_in, saved, p, g):
    """After the loop: the weight gradients and dx, over all rows at once."""
    add(g.w_ih, dax.T @ x)
    cell.weight_grad(g.w_hh, dah, h_in, saved)
    if cell.bias_from_preact:
        add(g.b_ih, dax.sum(0))
        add(g.b_hh, dah.sum(0))
    return dax @ p.w_ih


class MatrixCell:
    """What every cell with a [G*H,H] recurrent matrix shares; spec (rnncore._spec) says
    its gates, states and saved buffers."""

    spec: CellSpec
    bias_from_preact = True  # the tail sums dax, dah into db_ih, db_hh

    def project(self, x, p):
        return project(x, p.w_ih, p.b_ih, p.b_hh)

    def state_widths(self, H, p):
        return (H,) * len(self.spec.states)

    def extra_grad(self, g, dah, prev, new, valid):
        pass

    def weight_grad(self, dw_hh, dah, h_in, saved):
        add(dw_hh, dah.T @ h_in)

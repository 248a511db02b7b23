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
    step(pre_t, prev, p)         -> (new states, saved per-step buffers)
    step_backward(d, prev, new, saved, p)
                                 -> (dax, dah, d prev states): d is the gradients reaching
                                    the new states; dax, dah those of the input-side and the
                                    recurrent-side pre-activations
    extra_grad(dextra, dah, prev, new)   adds the extra parameter's gradient (LSTM peepholes)
    weight_grad(dw_hh, dah, h_in, saved) adds dw_hh
    proj_grad(dw_hr, dh, saved)  adds dw_hr from the whole gradient reaching each h (only a
                                 cell whose spec has a projection)

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


def project(x, w_ih, b1=None, b2=None):
    """x [rows,I] @ w_ih.T plus the biases: the input projection of every step at once."""
    a = x @ w_ih.T
    if b1 is not None:
        a += b1 + b2 if b2 is not None else b1
    return a


# ---- the driver ------------------------------------------------------------------------

def sequence_forward(cell, x, states0, p, lengths, reverse):
    """One direction of a whole sequence: (y [T,B,P], state histories [T+1,B,width]...,
    saved per-step buffers [T,B,width*H]...)."""
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
    for t in step_order(T, reverse):
        prev = tuple(h[prev_index(t, reverse)] for h in hist)
        new, sv = cell.step(pre[t], prev, p)
        if valid is not None:  # padding keeps the state, outputs zero, saves zeros
            new = tuple(np.where(valid[t], s, s_prev) for s, s_prev in zip(new, prev))
            sv = tuple(np.where(valid[t], v, 0) for v in sv)
        y[t] = new[0] if valid is None else np.where(valid[t], new[0], 0)
        for h, s in zip(hist, new):
            h[next_index(t, reverse)] = s
        for buf, v in zip(saved, sv):
            buf[t] = v
    return (y, *hist, *saved)


def sequence_backward(cell, dy, dstates_n, x, hist, saved, p, lengths, reverse, g):
    """Backpropagation through time for one direction; adds into the gradients g (a
    Params of gradients). Returns (dx [T,B,I], the initial states' gradients...)."""
    T, B, I = x.shape
    N = p.w_ih.shape[0]
    P = hist[0].shape[2]
    valid = valid_mask(T, B, lengths, bool)
    d = [np.zeros((B, h.shape[2]), x.dtype) if s is None else np.array(s, x.dtype) for s, h in zip(dstates_n, hist)]
    dax, dah = np.zeros((T, B, N), x.dtype), np.zeros((T, B, N), x.dtype)
    dh = np.zeros((T, B, P), x.dtype) if cell.spec.proj else None  # the whole gradient reaching each h
    for t in reversed(step_order(T, reverse)):
        p_t, n_t = prev_index(t, reverse), next_index(t, reverse)
        prev, new = tuple(h[p_t] for h in hist), tuple(h[n_t] for h in hist)
        dnew = [d[0] if dy is None else d[0] + dy[t]] + d[1:]
        dax_t, dah_t, dprev = cell.step_backward(dnew, prev, new, tuple(v[t] for v in saved), p)
        if valid is not None:  # padding passes the state gradients through, adds nothing
            dax_t, dah_t = np.where(valid[t], dax_t, 0), np.where(valid[t], dah_t, 0)
            dprev = tuple(np.where(valid[t], dp, dk) for dp, dk in zip(dprev, d))
        cell.extra_grad(g.extra, dah_t, prev, new)
        dax[t], dah[t] = dax_t, dah_t
        if dh is not None:
            dh[t] = dnew[0] if valid is None else np.where(valid[t], dnew[0], 0)
        d = list(dprev)
    h_in = hist[0][1:] if reverse else hist[0][:-1]
    flat = tuple(v.reshape(T * B, v.shape[2]) for v in saved)
    dx = tail(cell, dax.reshape(T * B, N), dah.reshape(T * B, N), x.reshape(T * B, I), h_in.reshape(T * B, P),
              flat, p, g)
    if dh is not None:
        cell.proj_grad(g.w_hr, dh.reshape(T * B, P), flat)
    return (dx.reshape(x.shape), *d)


def step_forward(cell, x, prev, p):
    """One step: (new states..., saved buffers...)."""
    new, saved = cell.step(cell.project(x, p), prev, p)
    return (*new, *saved)


def step_backward(cell, dnew, x, prev, new, saved, p, g):
    """Backward of one step: adds into g; returns (dx, the previous states' gradients...)."""
    dax, dah, dprev = cell.step_backward(list(dnew), prev, new, saved, p)
    cell.extra_grad(g.extra, dah, prev, new)
    if cell.spec.proj:
        cell.proj_grad(g.w_hr, dnew[0], saved)
    return (tail(cell, dax, dah, x, prev[0], saved, p, g), *dprev)


def tail(cell, dax, dah, x, h_in, saved, p, g):
    """After the loop: the weight gradients and dx, over all rows at once."""
    add(g.w_ih, dax.T @ x)
    cell.weight_grad(g.w_hh, dah, h_in, saved)
    add(g.b_ih, dax.sum(0))
    add(g.b_hh, dah.sum(0))
    return dax @ p.w_ih


class MatrixCell:
    """What every cell with a [G*H,H] recurrent matrix shares; spec (rnncore._spec) says
    its gates, states and saved buffers."""

    spec: CellSpec

    def project(self, x, p):
        return project(x, p.w_ih, p.b_ih, p.b_hh)

    def state_widths(self, H, p):
        return (H,) * len(self.spec.states)

    def extra_grad(self, dextra, dah, prev, new):
        pass

    def weight_grad(self, dw_hh, dah, h_in, saved):
        add(dw_hh, dah.T @ h_in)

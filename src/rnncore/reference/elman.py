"""Elman RNN in NumPy: one step and a whole sequence, forward and backward.

The seed notes write the state update as ``s_t = phi(x_t W_x + s_{t-1} W_s)``
(``a<t> = g(W_aa a<t-1> + W_ax x<t> + b_a)`` in the step-by-step notes). In our
names, with PyTorch's layout (weights act from the left on column vectors, so a
batch of rows is multiplied by the transpose)::

    a_t = x_t @ weight_ih.T + bias_ih + h_{t-1} @ weight_hh.T + bias_hh     [B,H]
    h_t = phi(a_t),      phi in {tanh, relu, sigmoid}

``W_x``/``W_ax``/``U`` is ``weight_ih`` [H,I]; ``W_s``/``W_aa``/``W`` is
``weight_hh`` [H,H]; ``s``/``a`` is ``h``.

Backward, with ``dh_t`` the total gradient reaching h_t (from the output y_t and
from step t+1)::

    da_t        = dh_t * phi'(a_t)          phi' from the saved output: tanh 1-h^2,
                                            sigmoid h(1-h), relu [h>0]
    dh_{t-1}    = da_t @ weight_hh          (plus whatever y_{t-1} receives)
    dx_t        = da_t @ weight_ih
    dweight_ih += sum_t da_t.T @ x_t        dweight_hh += sum_t da_t.T @ h_{t-1}
    dbias_ih   += sum_t,b da_t              dbias_hh   += sum_t,b da_t

The sequence functions hoist the input projection out of the time loop and form
the weight gradients after it, exactly as the native kernels do.
"""

from __future__ import annotations

import numpy as np

from .common import into, activate, activate_grad, next_index, prev_index, step_order, valid_mask


def _add(dst, value):
    if dst is not None:
        dst += value


def elman_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """One step. x [B,I], h_prev [B,H] -> h [B,H]."""
    a = x @ w_ih.T + h_prev @ w_hh.T
    if b_ih is not None:
        a += b_ih + b_hh
    return activate(a, nonlinearity)


def elman_step_backward(dh, x, h_prev, h, w_ih, w_hh, nonlinearity,
                        dw_ih, dw_hh, db_ih, db_hh):
    """Backward of one step. dh [B,H] is the gradient reaching h.

    Adds into dw_ih, dw_hh, db_ih, db_hh (biases may be None); returns (dx, dh_prev)."""
    da = dh * activate_grad(h, nonlinearity)
    _add(dw_ih, da.T @ x)
    _add(dw_hh, da.T @ h_prev)
    _add(db_ih, da.sum(0))
    _add(db_hh, da.sum(0))
    return da @ w_ih, da @ w_hh


def elman_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", lengths=None, reverse=False, *,
                  out=None):
    """Whole sequence, one direction.

    x [T,B,I], h0 [B,H], lengths (B,) or None.
    Returns y [T,B,H] (zero at padded steps) and the state history h [T+1,B,H]
    (layout in ``common``); the final state is ``h[0]`` if reverse else ``h[T]``."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    pre = (x.reshape(T * B, x.shape[2]) @ w_ih.T).reshape(T, B, H)
    if b_ih is not None:
        pre += b_ih + b_hh
    valid = valid_mask(T, B, lengths, bool)
    h = np.empty((T + 1, B, H), x.dtype)
    y = np.empty((T, B, H), x.dtype)
    h[T if reverse else 0] = 0 if h0 is None else h0
    for t in step_order(T, reverse):
        h_prev = h[prev_index(t, reverse)]
        h_t = activate(pre[t] + h_prev @ w_hh.T, nonlinearity)
        if valid is not None:
            h_t = np.where(valid[t], h_t, h_prev)
            y[t] = np.where(valid[t], h_t, 0)
        else:
            y[t] = h_t
        h[next_index(t, reverse)] = h_t
    return into(out, (y, h))


def elman_backward(dy, dh_n, x, h, w_ih, w_hh, nonlinearity, lengths, reverse,
                   dw_ih, dw_hh, db_ih, db_hh, *, out=None):
    """Backpropagation through time for one direction.

    dy [T,B,H] or None, dh_n [B,H] or None (no gradient through that path).
    x, h: what elman_forward took and returned. Adds into the weight gradients;
    returns (dx [T,B,I], dh0 [B,H])."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    valid = valid_mask(T, B, lengths, bool)
    da = np.zeros((T, B, H), x.dtype)
    dh = np.zeros((B, H), x.dtype) if dh_n is None else np.array(dh_n, x.dtype)
    for t in reversed(step_order(T, reverse)):
        g = dh if dy is None else dh + dy[t]
        da_t = g * activate_grad(h[next_index(t, reverse)], nonlinearity)
        dh_prev = da_t @ w_hh
        if valid is not None:
            da_t = np.where(valid[t], da_t, 0)
            dh_prev = np.where(valid[t], dh_prev, dh)
        da[t] = da_t
        dh = dh_prev
    da2 = da.reshape(T * B, H)
    h_in = h[1:] if reverse else h[:-1]
    _add(dw_ih, da2.T @ x.reshape(T * B, x.shape[2]))
    _add(dw_hh, da2.T @ h_in.reshape(T * B, H))
    _add(db_ih, da2.sum(0))
    _add(db_hh, da2.sum(0))
    return into(out, ((da2 @ w_ih).reshape(x.shape), dh))

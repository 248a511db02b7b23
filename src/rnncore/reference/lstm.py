"""LSTM in NumPy: one step and a whole sequence, forward and backward.

Gates in PyTorch's order i, f, g, o, each a block of H in the [B,4H] pre-activation::

    a_t = x_t @ weight_ih.T + bias_ih + h_{t-1} @ weight_hh.T + bias_hh     [B,4H]
    i = sigmoid(a_i + p_i * c_{t-1})       input gate
    f = sigmoid(a_f + p_f * c_{t-1})       forget gate
    g = tanh(a_g)                          candidate (the notes' c~)
    c_t = f * c_{t-1} + i * g
    o = sigmoid(a_o + p_o * c_t)           output gate
    h_t = o * tanh(c_t)

The peephole terms (Gers et al.) exist only with ``peephole=True``; their weights
``weight_ch`` [3H] hold p_i, p_f, p_o. Without peepholes this is torch.nn.LSTM.

Backward, with dh_t and dc_t the gradients reaching h_t and c_t from later steps
and the output::

    do   = dh_t * tanh(c_t)                da_o = do * o(1-o)
    dc   = dc_t + dh_t * o * (1 - tanh(c_t)^2)  + da_o * p_o
    di   = dc * g       df = dc * c_{t-1}       dg = dc * i
    da_i = di * i(1-i)  da_f = df * f(1-f)      da_g = dg * (1-g^2)
    dc_{t-1} = dc * f + da_i * p_i + da_f * p_f
    dh_{t-1} = da_t @ weight_hh
    dp_i += sum_b da_i * c_{t-1}   dp_f += sum_b da_f * c_{t-1}   dp_o += sum_b da_o * c_t

and the weight gradients as in the Elman cell with da_t [B,4H].
"""

from __future__ import annotations

import numpy as np

from .common import into, next_index, prev_index, sigmoid, step_order, valid_mask


def _add(dst, value):
    if dst is not None:
        dst += value


def _gates(a, c_prev, w_ch):
    """Post-activation gates [B,4H] and new cell state from the pre-activation a [B,4H]."""
    H = c_prev.shape[-1]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    if w_ch is not None:
        a_i = a_i + w_ch[:H] * c_prev
        a_f = a_f + w_ch[H:2 * H] * c_prev
    i, f, g = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g)
    c = f * c_prev + i * g
    if w_ch is not None:
        a_o = a_o + w_ch[2 * H:] * c
    o = sigmoid(a_o)
    return np.concatenate([i, f, g, o], axis=1), c


def _gates_backward(dh, dc, c_prev, c, gates, w_ch):
    """Gradient of the pre-activation da [B,4H] and dc_prev from dh, dc reaching h_t, c_t."""
    H = c.shape[-1]
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    tc = np.tanh(c)
    da_o = dh * tc * o * (1 - o)
    dc = dc + dh * o * (1 - tc * tc)
    if w_ch is not None:
        dc = dc + da_o * w_ch[2 * H:]
    da_i = dc * g * i * (1 - i)
    da_f = dc * c_prev * f * (1 - f)
    da_g = dc * i * (1 - g * g)
    dc_prev = dc * f
    if w_ch is not None:
        dc_prev = dc_prev + da_i * w_ch[:H] + da_f * w_ch[H:2 * H]
    return np.concatenate([da_i, da_f, da_g, da_o], axis=1), dc_prev


def _peephole_grad(dw_ch, da, c_prev, c):
    """dp_i, dp_f, dp_o summed over the batch, added into dw_ch [3H]."""
    if dw_ch is not None:
        H = c.shape[-1]
        dw_ch[:H] += (da[:, :H] * c_prev).sum(0)
        dw_ch[H:2 * H] += (da[:, H:2 * H] * c_prev).sum(0)
        dw_ch[2 * H:] += (da[:, 3 * H:] * c).sum(0)


def lstm_step_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, w_ch=None):
    """One step. x [B,I], h_prev, c_prev [B,H] -> (h, c, gates [B,4H] post-activation)."""
    a = x @ w_ih.T + h_prev @ w_hh.T
    if b_ih is not None:
        a += b_ih + b_hh
    gates, c = _gates(a, c_prev, w_ch)
    H = c.shape[-1]
    h = gates[:, 3 * H:] * np.tanh(c)
    return h, c, gates


def lstm_step_backward(dh, dc, x, h_prev, c_prev, c, gates, w_ih, w_hh, w_ch,
                       dw_ih, dw_hh, db_ih, db_hh, dw_ch):
    """Backward of one step; dc may be None. Adds into the weight gradients.

    Returns (dx, dh_prev, dc_prev)."""
    if dc is None:
        dc = np.zeros_like(dh)
    da, dc_prev = _gates_backward(dh, dc, c_prev, c, gates, w_ch)
    if w_ch is not None:
        _peephole_grad(dw_ch, da, c_prev, c)
    _add(dw_ih, da.T @ x)
    _add(dw_hh, da.T @ h_prev)
    _add(db_ih, da.sum(0))
    _add(db_hh, da.sum(0))
    return da @ w_ih, da @ w_hh, dc_prev


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch=None, lengths=None, reverse=False, *,
                 out=None):
    """Whole sequence, one direction.

    Returns y [T,B,H] (zero at padded steps), the state histories h, c [T+1,B,H]
    (layout in ``common``) and gates [T,B,4H] post-activation."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    pre = (x.reshape(T * B, x.shape[2]) @ w_ih.T).reshape(T, B, 4 * H)
    if b_ih is not None:
        pre += b_ih + b_hh
    valid = valid_mask(T, B, lengths, bool)
    h = np.empty((T + 1, B, H), x.dtype)
    c = np.empty((T + 1, B, H), x.dtype)
    y = np.empty((T, B, H), x.dtype)
    gates = np.empty((T, B, 4 * H), x.dtype)
    h[T if reverse else 0] = 0 if h0 is None else h0
    c[T if reverse else 0] = 0 if c0 is None else c0
    for t in step_order(T, reverse):
        p, n = prev_index(t, reverse), next_index(t, reverse)
        gates[t], c_t = _gates(pre[t] + h[p] @ w_hh.T, c[p], w_ch)
        h_t = gates[t, :, 3 * H:] * np.tanh(c_t)
        if valid is not None:
            h_t = np.where(valid[t], h_t, h[p])
            c_t = np.where(valid[t], c_t, c[p])
            y[t] = np.where(valid[t], h_t, 0)
        else:
            y[t] = h_t
        h[n], c[n] = h_t, c_t
    return into(out, (y, h, c, gates))


def lstm_backward(dy, dh_n, dc_n, x, h, c, gates, w_ih, w_hh, w_ch, lengths, reverse,
                  dw_ih, dw_hh, db_ih, db_hh, dw_ch, *, out=None):
    """Backpropagation through time for one direction.

    dy [T,B,H], dh_n, dc_n [B,H], each may be None. Adds into the weight gradients;
    returns (dx [T,B,I], dh0 [B,H], dc0 [B,H])."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    valid = valid_mask(T, B, lengths, bool)
    da = np.zeros((T, B, 4 * H), x.dtype)
    dh = np.zeros((B, H), x.dtype) if dh_n is None else np.array(dh_n, x.dtype)
    dc = np.zeros((B, H), x.dtype) if dc_n is None else np.array(dc_n, x.dtype)
    for t in reversed(step_order(T, reverse)):
        p, n = prev_index(t, reverse), next_index(t, reverse)
        g = dh if dy is None else dh + dy[t]
        da_t, dc_prev = _gates_backward(g, dc, c[p], c[n], gates[t], w_ch)
        dh_prev = da_t @ w_hh
        if valid is not None:
            da_t = np.where(valid[t], da_t, 0)
            dh_prev = np.where(valid[t], dh_prev, dh)
            dc_prev = np.where(valid[t], dc_prev, dc)
        if w_ch is not None:
            _peephole_grad(dw_ch, da_t, c[p], c[n])
        da[t] = da_t
        dh, dc = dh_prev, dc_prev
    da2 = da.reshape(T * B, 4 * H)
    h_in = h[1:] if reverse else h[:-1]
    _add(dw_ih, da2.T @ x.reshape(T * B, x.shape[2]))
    _add(dw_hh, da2.T @ h_in.reshape(T * B, H))
    _add(db_ih, da2.sum(0))
    _add(db_hh, da2.sum(0))
    return into(out, ((da2 @ w_ih).reshape(x.shape), dh, dc))

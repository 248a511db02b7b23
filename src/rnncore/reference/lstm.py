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

and the weight gradients as in the Elman cell with da_t [B,4H]. The sequence loop and
the weight-gradient tail are the reference driver's (``common``).

With a projection (``lstmp_*``, torch.nn.LSTM's ``proj_size``; Sak et al. 2014), h is
P wide: ``weight_hr`` [P,H] maps the cell's output m_t to it and ``weight_hh`` is
[4H,P]::

    m_t = o * tanh(c_t)         h_t = m_t @ weight_hr.T     (y_t = h_t; c_t stays H wide)

and backward, with dh_t the whole gradient reaching h_t, runs the gate maths above with
dm = dh_t @ weight_hr in place of dh_t, and adds ``dw_hr += dh_t.T @ m_t``.
"""

from __future__ import annotations

import numpy as np

from .._spec import LSTM as SPEC
from .._spec import LSTMP as SPEC_P
from .common import (MatrixCell, Params, add, forward_into, into, regularise, sequence_backward, sequence_forward,
                     sigmoid, step_backward, step_forward)


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


class LSTM(MatrixCell):
    spec = SPEC  # h, c

    def step(self, pre, prev, hin, p):
        gates, c = _gates(pre + hin @ p.w_hh.T, prev[1], p.extra)
        H = c.shape[-1]
        return (gates[:, 3 * H:] * np.tanh(c), c), (gates,)

    def step_backward(self, d, prev, hin, new, saved, p):
        dh, dc = d
        da, dc_prev = _gates_backward(dh, dc, prev[1], new[1], saved[0], p.extra)
        return da, da, (None, dc_prev), da @ p.w_hh

    def extra_grad(self, g, da, prev, new, valid):
        """dp_i, dp_f, dp_o summed over the batch, added into g.extra (dw_ch [3H]); da is
        zero at the rows valid leaves out."""
        dw_ch = g.extra
        if dw_ch is not None:
            c_prev, c = prev[1], new[1]
            H = c.shape[-1]
            dw_ch[:H] += (da[:, :H] * c_prev).sum(0)
            dw_ch[H:2 * H] += (da[:, H:2 * H] * c_prev).sum(0)
            dw_ch[2 * H:] += (da[:, 3 * H:] * c).sum(0)


class LSTMP(LSTM):
    spec = SPEC_P  # h [B,P], c [B,H]; saved gates, m

    def state_widths(self, H, p):
        return (p.w_hr.shape[0], H)

    def step(self, pre, prev, hin, p):
        gates, c = _gates(pre + hin @ p.w_hh.T, prev[1], p.extra)
        H = c.shape[-1]
        m = gates[:, 3 * H:] * np.tanh(c)
        return (m @ p.w_hr.T, c), (gates, m)

    def step_backward(self, d, prev, hin, new, saved, p):
        dh, dc = d
        da, dc_prev = _gates_backward(dh @ p.w_hr, dc, prev[1], new[1], saved[0], p.extra)
        return da, da, (None, dc_prev), da @ p.w_hh

    def proj_grad(self, dw_hr, dh, saved):
        add(dw_hr, dh.T @ saved[1])


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch=None, lengths=None, reverse=False, *,
                 zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction. Returns y [T,B,H] (zero at padded steps), the state
    histories h, c [T+1,B,H] and gates [T,B,4H] post-activation; with zoneout, c before
    mixing into unmixed [1,T,B,H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(LSTM(), x, (h0, c0), Params(w_ih, w_hh, b_ih, b_hh, w_ch),
                                                       lengths, reverse, reg))


def lstm_backward(dy, dh_n, dc_n, x, h, c, gates, w_ih, w_hh, w_ch, lengths, reverse,
                  dw_ih, dw_hh, db_ih, db_hh, dw_ch, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0,
                  training=True, unmixed=None, out=None):
    """BPTT for one direction (dy, dh_n, dc_n may be None): adds into the weight
    gradients; returns (dx [T,B,I], dh0 [B,H], dc0 [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(LSTM(), dy, (dh_n, dc_n), x, (h, c), (gates,), Params(w_ih, w_hh, extra=w_ch),
                                       lengths, reverse, Params(dw_ih, dw_hh, db_ih, db_hh, dw_ch), reg, unmixed))


def lstm_step_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, w_ch=None, *, zoneout=0.0, recurrent_dropout=0.0,
                      seed=0, t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev, c_prev [B,H] -> (h, c, gates [B,4H] post-activation)."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(LSTM(), x, (h_prev, c_prev), Params(w_ih, w_hh, b_ih, b_hh, w_ch),
                                                    reg))


def lstm_step_backward(dh, dc, x, h_prev, c_prev, c, gates, w_ih, w_hh, w_ch,
                       dw_ih, dw_hh, db_ih, db_hh, dw_ch, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0,
                       training=True):
    """Backward of one step; dc may be None (with zoneout, c is the unmixed one). Adds into
    the weight gradients; returns (dx, dh_prev, dc_prev)."""
    dc = np.zeros_like(dh) if dc is None else dc
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(LSTM(), (dh, dc), x, (h_prev, c_prev), (None, c), (gates,), Params(w_ih, w_hh, extra=w_ch),
                         Params(dw_ih, dw_hh, db_ih, db_hh, dw_ch), reg)


def lstmp_forward(x, h0, c0, w_ih, w_hh, w_hr, b_ih, b_hh, w_ch=None, lengths=None, reverse=False, *,
                  zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction, h projected by w_hr [P,H]. Returns y [T,B,P], the
    state histories h [T+1,B,P] and c [T+1,B,H], gates [T,B,4H] and m [T,B,H]; with
    zoneout, c before mixing into unmixed [1,T,B,H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(LSTMP(), x, (h0, c0), Params(w_ih, w_hh, b_ih, b_hh, w_ch,
                                                                                     w_hr), lengths, reverse, reg))


def lstmp_backward(dy, dh_n, dc_n, x, h, c, gates, m, w_ih, w_hh, w_hr, w_ch, lengths, reverse,
                   dw_ih, dw_hh, dw_hr, db_ih, db_hh, dw_ch, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0,
                   training=True, unmixed=None, out=None):
    """BPTT for lstmp_forward: adds into the weight gradients; returns (dx [T,B,I],
    dh0 [B,P], dc0 [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(LSTMP(), dy, (dh_n, dc_n), x, (h, c), (gates, m),
                                       Params(w_ih, w_hh, extra=w_ch, w_hr=w_hr), lengths, reverse,
                                       Params(dw_ih, dw_hh, db_ih, db_hh, dw_ch, dw_hr), reg, unmixed))


def lstmp_step_forward(x, h_prev, c_prev, w_ih, w_hh, w_hr, b_ih, b_hh, w_ch=None, *, zoneout=0.0,
                       recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev [B,P], c_prev [B,H] -> (h, c, gates [B,4H], m [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(LSTMP(), x, (h_prev, c_prev),
                                                    Params(w_ih, w_hh, b_ih, b_hh, w_ch, w_hr), reg))


def lstmp_step_backward(dh, dc, x, h_prev, c_prev, c, gates, m, w_ih, w_hh, w_hr, w_ch,
                        dw_ih, dw_hh, dw_hr, db_ih, db_hh, dw_ch, *, zoneout=0.0, recurrent_dropout=0.0, seed=0,
                        t0=0, training=True):
    """Backward of one step; dc may be None (with zoneout, c is the unmixed one). Adds into
    the weight gradients; returns (dx, dh_prev [B,P], dc_prev [B,H])."""
    dc = np.zeros_like(c) if dc is None else dc
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(LSTMP(), (dh, dc), x, (h_prev, c_prev), (None, c), (gates, m),
                         Params(w_ih, w_hh, extra=w_ch, w_hr=w_hr), Params(dw_ih, dw_hh, db_ih, db_hh, dw_ch, dw_hr),
                         reg)

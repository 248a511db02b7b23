"""Layer-normalised LSTM and GRU in NumPy (Ba et al. 2016, "Layer Normalization"), as
haste's LayerNormLSTM and LayerNormGRU define them (lmnt-com/haste,
``frameworks/pytorch/layer_norm_lstm.py`` and ``layer_norm_gru.py``).

LN normalises a whole row (all G*H pre-activations of the gates together, or the H units
of c) with the biased variance and haste's eps = 1e-5::

    LN(v) = (v - mean(v)) / sqrt(mean((v - mean(v))^2) + 1e-5)

LSTM (``lstm_ln_*``), gates i, f, g, o::

    a_t = LN(x_t @ weight_ih.T) * g_ih + LN(h_{t-1} @ weight_hh.T) * g_hh + bias_ih + bias_hh
    i, f, o = sigmoid(a_i, a_f, a_o)      g = tanh(a_g)      c_t = f * c_{t-1} + i * g
    h_t = o * tanh(LN(c_t) * g_c + b_c)

(haste's single bias is bias_ih + bias_hh; its gamma[0], gamma[1], gamma_h, beta_h are
g_ih [4H], g_hh [4H], g_c [H], b_c [H], which the kernels take packed as ``ln`` [10H]).

GRU (``gru_ln_*``), gates r, z, n, the reset after the product (torch.nn.GRU's form)::

    ax = LN(x_t @ weight_ih.T) * g_ih + bias_ih      ah = LN(h_{t-1} @ weight_hh.T) * g_hh + bias_hh
    r = sigmoid(ax_r + ah_r)   z = sigmoid(ax_z + ah_z)   n = tanh(ax_n + r * ah_n)
    h_t = (1 - z) * n + z * h_{t-1}

(``ln`` [6H] = g_ih, g_hh). Saved per step: ``wx`` = x_t @ weight_ih.T and ``acts``: the
post-activation gates, h_{t-1} @ weight_hh.T and (LSTM) c_t and tanh(LN(c_t) g_c + b_c),
(GRU) ah_n. Backward of y = LN(v) * g (+ b), with dy reaching y and vh = LN(v)::

    dvh = dy * g     dg += sum dy * vh     db += sum dy
    dv  = rstd * (dvh - mean(dvh) - vh * mean(dvh * vh))

and the cells' gate maths as in ``lstm`` and ``gru``, the biases' gradients the sums of
the gradients reaching a_t (LSTM: both biases) or ax, ah (GRU). ``cpp/cells/layer_norm.h``
has the same formulas in the kernels' notation.
"""

from __future__ import annotations

import numpy as np

from .._spec import GRU_LN as SPEC_GRU
from .._spec import LSTM_LN as SPEC_LSTM
from .common import (MatrixCell, Params, add, forward_into, into, regularise, sequence_backward, sequence_forward,
                     sigmoid, step_backward, step_forward)

EPS = 1e-5  # haste's


def layer_norm(v):
    """(LN(v), rstd) over the last axis."""
    d = v - v.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt((d * d).mean(-1, keepdims=True) + v.dtype.type(EPS))
    return d * rstd, rstd


def layer_norm_backward(dvh, vh, rstd):
    """The gradient reaching v from dvh reaching LN(v) = vh."""
    return rstd * (dvh - dvh.mean(-1, keepdims=True) - vh * (dvh * vh).mean(-1, keepdims=True))


def _required(ln):
    if ln is None:
        raise ValueError("ln: required (the layer norm's gains and biases)")
    return ln


class _Norm(MatrixCell):
    """What both cells share: a bias-free projection, biases after the norms; step_backward
    leaves its rows' gain and bias gradients for extra_grad, which adds the valid ones."""

    bias_from_preact = False

    def project(self, x, p):
        return x @ p.w_ih.T

    def extra_grad(self, g, dah, prev, new, valid):
        for dst, rows in zip((g.extra, g.b_ih, g.b_hh), self._rows):
            add(dst, (rows if valid is None else np.where(valid, rows, 0)).sum(0))


class LSTMLN(_Norm):
    spec = SPEC_LSTM  # h, c; saved wx, acts

    def step(self, pre, prev, hin, p):
        H = prev[1].shape[-1]
        N = 4 * H
        g_ih, g_hh, g_c, b_c = p.extra[:N], p.extra[N:2 * N], p.extra[2 * N:2 * N + H], p.extra[2 * N + H:]
        rh = hin @ p.w_hh.T
        a = layer_norm(pre)[0] * g_ih + layer_norm(rh)[0] * g_hh
        if p.b_ih is not None:
            a = a + p.b_ih + p.b_hh
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c = f * prev[1] + i * g
        t = np.tanh(layer_norm(c)[0] * g_c + b_c)
        return (o * t, c), (pre, np.concatenate([i, f, g, o, rh, c, t], axis=1))

    def step_backward(self, d, prev, hin, new, saved, p):
        dh, dc = d
        wx, acts = saved
        H = prev[1].shape[-1]
        N = 4 * H
        g_ih, g_hh, g_c = p.extra[:N], p.extra[N:2 * N], p.extra[2 * N:2 * N + H]
        i, f, g, o = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H], acts[:, 3 * H:N]
        rh, c, t = acts[:, N:2 * N], acts[:, 2 * N:2 * N + H], acts[:, 2 * N + H:]
        ch, rc = layer_norm(c)
        dn = dh * o * (1 - t * t)
        da_o = dh * t * o * (1 - o)
        dc = dc + layer_norm_backward(dn * g_c, ch, rc)
        da = np.concatenate([dc * g * i * (1 - i), dc * prev[1] * f * (1 - f), dc * i * (1 - g * g), da_o], axis=1)
        xh, rx = layer_norm(wx)
        hh, rr = layer_norm(rh)
        dax = layer_norm_backward(da * g_ih, xh, rx)
        dah = layer_norm_backward(da * g_hh, hh, rr)
        self._rows = (np.concatenate([da * xh, da * hh, dn * ch, dn], axis=1), da, da)
        return dax, dah, (None, dc * f), dah @ p.w_hh


class GRULN(_Norm):
    spec = SPEC_GRU  # h; saved wx, acts

    def step(self, pre, prev, hin, p):
        H = prev[0].shape[-1]
        N = 3 * H
        rh = hin @ p.w_hh.T
        ax = layer_norm(pre)[0] * p.extra[:N]
        ah = layer_norm(rh)[0] * p.extra[N:]
        if p.b_ih is not None:
            ax, ah = ax + p.b_ih, ah + p.b_hh
        r = sigmoid(ax[:, :H] + ah[:, :H])
        z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        h = (1 - z) * n + z * prev[0]
        return (h,), (pre, np.concatenate([r, z, n, rh, ah[:, 2 * H:]], axis=1))

    def step_backward(self, d, prev, hin, new, saved, p):
        dh = d[0]
        wx, acts = saved
        H = prev[0].shape[-1]
        N = 3 * H
        r, z, n, rh, ahn = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:N], acts[:, N:2 * N], acts[:, 2 * N:]
        da_n = dh * (1 - z) * (1 - n * n)
        da_z = dh * (prev[0] - n) * z * (1 - z)
        da_r = da_n * ahn * r * (1 - r)
        dvx = np.concatenate([da_r, da_z, da_n], axis=1)
        dvh = np.concatenate([da_r, da_z, da_n * r], axis=1)
        xh, rx = layer_norm(wx)
        hh, rr = layer_norm(rh)
        dax = layer_norm_backward(dvx * p.extra[:N], xh, rx)
        dah = layer_norm_backward(dvh * p.extra[N:], hh, rr)
        self._rows = (np.concatenate([dvx * xh, dvh * hh], axis=1), dvx, dvh)
        return dax, dah, (dh * z,), dah @ p.w_hh


def lstm_ln_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, ln=None, lengths=None, reverse=False, *,
                    zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction; ln [10H] = g_ih, g_hh, g_c, b_c. Returns y [T,B,H],
    the state histories h, c [T+1,B,H], wx [T,B,4H] and acts [T,B,10H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(LSTMLN(), x, (h0, c0),
                                                       Params(w_ih, w_hh, b_ih, b_hh, _required(ln)),
                                                       lengths, reverse, reg))


def lstm_ln_backward(dy, dh_n, dc_n, x, h, c, wx, acts, w_ih, w_hh, ln, lengths, reverse,
                     dw_ih, dw_hh, db_ih, db_hh, dln, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0,
                     training=True, unmixed=None, out=None):
    """BPTT for lstm_ln_forward: adds into the weight gradients (dln [10H]); returns
    (dx [T,B,I], dh0 [B,H], dc0 [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(LSTMLN(), dy, (dh_n, dc_n), x, (h, c), (wx, acts),
                                       Params(w_ih, w_hh, extra=_required(ln)), lengths, reverse,
                                       Params(dw_ih, dw_hh, db_ih, db_hh, dln), reg, unmixed))


def lstm_ln_step_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh, ln=None, *, zoneout=0.0,
                         recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev, c_prev [B,H] -> (h, c, wx [B,4H], acts [B,10H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(LSTMLN(), x, (h_prev, c_prev),
                                                    Params(w_ih, w_hh, b_ih, b_hh, _required(ln)), reg))


def lstm_ln_step_backward(dh, dc, x, h_prev, c_prev, wx, acts, w_ih, w_hh, ln, dw_ih, dw_hh, db_ih, db_hh, dln, *,
                          zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True):
    """Backward of one step; dc may be None. Adds into the weight gradients; returns (dx,
    dh_prev, dc_prev)."""
    dc = np.zeros_like(dh) if dc is None else dc
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(LSTMLN(), (dh, dc), x, (h_prev, c_prev), (None, None), (wx, acts),
                         Params(w_ih, w_hh, extra=_required(ln)), Params(dw_ih, dw_hh, db_ih, db_hh, dln), reg)


def gru_ln_forward(x, h0, w_ih, w_hh, b_ih, b_hh, ln=None, lengths=None, reverse=False, *,
                   zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction; ln [6H] = g_ih, g_hh. Returns y [T,B,H], the state
    history h [T+1,B,H], wx [T,B,3H] and acts [T,B,7H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(GRULN(), x, (h0,), Params(w_ih, w_hh, b_ih, b_hh, _required(ln)),
                                                       lengths, reverse, reg))


def gru_ln_backward(dy, dh_n, x, h, wx, acts, w_ih, w_hh, ln, lengths, reverse, dw_ih, dw_hh, db_ih, db_hh, dln, *,
                    zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """BPTT for gru_ln_forward: adds into the weight gradients (dln [6H]); returns
    (dx [T,B,I], dh0 [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(GRULN(), dy, (dh_n,), x, (h,), (wx, acts), Params(w_ih, w_hh, extra=_required(ln)),
                                       lengths, reverse, Params(dw_ih, dw_hh, db_ih, db_hh, dln), reg, unmixed))


def gru_ln_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, ln=None, *, zoneout=0.0, recurrent_dropout=0.0, seed=0,
                        t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev [B,H] -> (h, wx [B,3H], acts [B,7H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(GRULN(), x, (h_prev,), Params(w_ih, w_hh, b_ih, b_hh, _required(ln)),
                                                    reg))


def gru_ln_step_backward(dh, x, h_prev, wx, acts, w_ih, w_hh, ln, dw_ih, dw_hh, db_ih, db_hh, dln, *, zoneout=0.0,
                         recurrent_dropout=0.0, seed=0, t0=0, training=True):
    """Backward of one step: adds into the weight gradients; returns (dx, dh_prev)."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(GRULN(), (dh,), x, (h_prev,), (None,), (wx, acts), Params(w_ih, w_hh, extra=_required(ln)),
                         Params(dw_ih, dw_hh, db_ih, db_hh, dln), reg)

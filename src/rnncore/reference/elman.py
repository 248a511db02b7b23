"""Elman RNN in NumPy: the step maths, and the kernels (one step and a whole sequence,
forward and backward) through the reference driver in ``common``.

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
"""

from __future__ import annotations

from .._spec import ELMAN as SPEC
from .common import (MatrixCell, Params, activate, activate_grad, forward_into, into, regularise,
                     sequence_backward, sequence_forward, step_backward, step_forward)


class Elman(MatrixCell):
    spec = SPEC
    def __init__(self, nonlinearity):
        self.nonlinearity = nonlinearity

    def step(self, pre, prev, hin, p):
        return (activate(pre + hin @ p.w_hh.T, self.nonlinearity),), ()

    def step_backward(self, d, prev, hin, new, saved, p):
        da = d[0] * activate_grad(new[0], self.nonlinearity)
        return da, da, (None,), da @ p.w_hh


def elman_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", lengths=None, reverse=False, *,
                  zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction. x [T,B,I], h0 [B,H] or None, lengths (B,) or None.
    Returns y [T,B,H] (zero at padded steps) and the state history h [T+1,B,H]; with
    zoneout writes h before mixing into unmixed [1,T,B,H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(Elman(nonlinearity), x, (h0,), Params(w_ih, w_hh, b_ih, b_hh),
                                                       lengths, reverse, reg))


def elman_backward(dy, dh_n, x, h, w_ih, w_hh, nonlinearity, lengths, reverse,
                   dw_ih, dw_hh, db_ih, db_hh, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True,
                   unmixed=None, out=None):
    """BPTT for one direction: adds into the weight gradients; returns (dx [T,B,I], dh0 [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(Elman(nonlinearity), dy, (dh_n,), x, (h,), (), Params(w_ih, w_hh), lengths,
                                       reverse, Params(dw_ih, dw_hh, db_ih, db_hh), reg, unmixed))


def elman_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", *, zoneout=0.0,
                       recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev [B,H] -> h [B,H] (with zoneout, h before mixing into
    unmixed [1,B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(Elman(nonlinearity), x, (h_prev,), Params(w_ih, w_hh, b_ih, b_hh),
                                                    reg))[0]


def elman_step_backward(dh, x, h_prev, h, w_ih, w_hh, nonlinearity, dw_ih, dw_hh, db_ih, db_hh, *, zoneout=0.0,
                        recurrent_dropout=0.0, seed=0, t0=0, training=True):
    """Backward of one step (dh reaching h; with zoneout, h is the unmixed one): adds into
    the weight gradients; (dx, dh_prev)."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(Elman(nonlinearity), (dh,), x, (h_prev,), (h,), (), Params(w_ih, w_hh),
                         Params(dw_ih, dw_hh, db_ih, db_hh), reg)

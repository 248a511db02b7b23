"""IndRNN (Li et al. 2018) in NumPy: the step maths, and the kernels through the
reference driver in ``common``::

    a_t = x_t @ weight_ih.T + bias_ih + weight_hh * h_{t-1} + bias_hh      [B,H]
    h_t = phi(a_t),      phi in {relu, tanh, sigmoid}

``weight_hh`` is a vector [H]: each unit sees only its own past. Backward, with dh_t
the gradient reaching h_t::

    da_t        = dh_t * phi'(a_t)          (from the saved output, as in the Elman cell)
    dh_{t-1}    = da_t * weight_hh
    dweight_hh += sum_t,b da_t * h_{t-1}
    dweight_ih, dbias_ih, dbias_hh, dx      as in the Elman cell
"""

from __future__ import annotations

from .._spec import INDRNN as SPEC
from .common import (MatrixCell, Params, activate, activate_grad, add, forward_into, into, regularise,
                     sequence_backward, sequence_forward, step_backward, step_forward)


class IndRNN(MatrixCell):
    spec = SPEC
    def __init__(self, nonlinearity):
        self.nonlinearity = nonlinearity

    def step(self, pre, prev, hin, p):
        return (activate(pre + p.w_hh * hin, self.nonlinearity),), ()

    def step_backward(self, d, prev, hin, new, saved, p):
        da = d[0] * activate_grad(new[0], self.nonlinearity)
        return da, da, (None,), da * p.w_hh

    def weight_grad(self, dw_hh, dah, h_in, saved):
        add(dw_hh, (dah * h_in).sum(0))


def indrnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="relu", lengths=None, reverse=False, *,
                   zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction -> (y [T,B,H], h [T+1,B,H]); with zoneout, h before
    mixing into unmixed [1,T,B,H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(IndRNN(nonlinearity), x, (h0,),
                                                       Params(w_ih, w_hh, b_ih, b_hh), lengths, reverse, reg))


def indrnn_backward(dy, dh_n, x, h, w_ih, w_hh, nonlinearity, lengths, reverse,
                    dw_ih, dw_hh, db_ih, db_hh, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True,
                    unmixed=None, out=None):
    """BPTT for one direction: adds into the weight gradients; returns (dx, dh0)."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(IndRNN(nonlinearity), dy, (dh_n,), x, (h,), (), Params(w_ih, w_hh), lengths,
                                       reverse, Params(dw_ih, dw_hh, db_ih, db_hh), reg, unmixed))


def indrnn_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity="relu", *, zoneout=0.0,
                        recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev [B,H] -> h [B,H]."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(IndRNN(nonlinearity), x, (h_prev,),
                                                    Params(w_ih, w_hh, b_ih, b_hh), reg))[0]


def indrnn_step_backward(dh, x, h_prev, h, w_ih, w_hh, nonlinearity, dw_ih, dw_hh, db_ih, db_hh, *, zoneout=0.0,
                         recurrent_dropout=0.0, seed=0, t0=0, training=True):
    """Backward of one step: adds into the weight gradients; (dx, dh_prev)."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(IndRNN(nonlinearity), (dh,), x, (h_prev,), (h,), (), Params(w_ih, w_hh),
                         Params(dw_ih, dw_hh, db_ih, db_hh), reg)

"""GRU in NumPy: one step and a whole sequence, forward and backward.

Gates in PyTorch's order r, z, n, each a block of H. With ``ax = x_t @ weight_ih.T +
bias_ih`` and ``ah = h_{t-1} @ weight_hh.T + bias_hh`` (both [B,3H])::

    r = sigmoid(ax_r + ah_r)               reset gate
    z = sigmoid(ax_z + ah_z)               update gate
    n = tanh(ax_n + r * ah_n)              candidate; reset_after=True (torch.nn.GRU)
    n = tanh(ax_n + (r * h_{t-1}) @ weight_hn.T + bias_hn)     reset_after=False (Cho et al.)
    h_t = (1 - z) * n + z * h_{t-1}

``weight_hn`` is the last H rows of weight_hh. The saved extra buffer ``hn`` [.,B,H]
holds ``ah_n`` (reset_after) or ``r * h_{t-1}`` (not), the two things the backward
pass cannot get from the gates. With recurrent dropout every product above multiplies
``hin = h_{t-1} * M`` instead of h_{t-1}, and so does the Cho form's reset (``r * hin``
enters weight_hn); ``z * h_{t-1}`` keeps the unmasked state.

Backward, with dh_t the gradient reaching h_t::

    dn   = dh_t * (1 - z)         dz = dh_t * (h_{t-1} - n)
    da_n = dn * (1 - n^2)         da_z = dz * z(1-z)
    reset_after:   dah_n = da_n * r         dr = da_n * ah_n
    otherwise:     drh = da_n @ weight_hn   dr = drh * hin_{t-1}
    da_r = dr * r(1-r)
    dh_{t-1} = dh_t * z + dhin * M                (M = 1 without recurrent dropout)
    dhin = [da_r, da_z, dah_n] @ weight_hh                             (reset_after)
    dhin = [da_r, da_z] @ weight_h{r,z} + drh * r                      (otherwise)

The input side gets ``dax = [da_r, da_z, da_n]``; the recurrent side ``dah`` is the
same but for its n block (``dah_n`` above, or da_n acting on ``r * h_{t-1}``).
"""

from __future__ import annotations

import numpy as np

from .._spec import GRU as SPEC
from .common import (MatrixCell, Params, forward_into, into, project, regularise, sequence_backward,
                     sequence_forward, sigmoid, step_backward, step_forward)


def _cell(ax, h_prev, hin, w_hh, b_hh, reset_after):
    """Gates [B,3H], the saved hn [B,H] and h [B,H] from ax [B,3H] (input side, bias in)."""
    H = h_prev.shape[-1]
    if reset_after:
        ah = hin @ w_hh.T
        if b_hh is not None:
            ah += b_hh
        rz = sigmoid(ax[:, :2 * H] + ah[:, :2 * H])
        hn = ah[:, 2 * H:]
        n = np.tanh(ax[:, 2 * H:] + rz[:, :H] * hn)
    else:
        ah_rz = hin @ w_hh[:2 * H].T
        if b_hh is not None:
            ah_rz += b_hh[:2 * H]
        rz = sigmoid(ax[:, :2 * H] + ah_rz)
        hn = rz[:, :H] * hin
        a_n = ax[:, 2 * H:] + hn @ w_hh[2 * H:].T
        if b_hh is not None:
            a_n += b_hh[2 * H:]
        n = np.tanh(a_n)
    z = rz[:, H:]
    h = (1 - z) * n + z * h_prev
    return np.concatenate([rz, n], axis=1), hn, h


def _cell_backward(dh, h_prev, hin, gates, hn, w_hh, reset_after):
    """(dax [B,3H], dah [B,3H], dh_prev through z * h_{t-1}, dhin) from dh reaching h_t.

    dah's n block is the gradient of the recurrent pre-activation: of ah_n
    (reset_after) or of the product with r*hin_{t-1} (otherwise)."""
    H = h_prev.shape[-1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n * n)
    da_z = dz * z * (1 - z)
    dh_prev = dh * z
    if reset_after:
        dah_n = da_n * r
        da_r = da_n * hn * r * (1 - r)
        dah = np.concatenate([da_r, da_z, dah_n], axis=1)
        dhin = dah @ w_hh
    else:
        drh = da_n @ w_hh[2 * H:]
        da_r = drh * hin * r * (1 - r)
        dah = np.concatenate([da_r, da_z, da_n], axis=1)
        dhin = dah[:, :2 * H] @ w_hh[:2 * H] + drh * r
    dax = np.concatenate([da_r, da_z, da_n], axis=1)
    return dax, dah, dh_prev, dhin


def _recurrent_weight_grad(dw_hh, dah, h_prev, hn, reset_after):
    """dweight_hh += dah.T @ (hin_{t-1}, or r*hin_{t-1} for the n rows when not reset_after)."""
    if dw_hh is None:
        return
    if reset_after:
        dw_hh += dah.T @ h_prev
    else:
        H = h_prev.shape[-1]
        dw_hh[:2 * H] += dah[:, :2 * H].T @ h_prev
        dw_hh[2 * H:] += dah[:, 2 * H:].T @ hn


class GRU(MatrixCell):
    spec = SPEC

    def __init__(self, reset_after):
        self.reset_after = reset_after

    def project(self, x, p):  # bias_hh stays with the recurrent side: ah = h @ w_hh.T + b_hh
        return project(x, p.w_ih, p.b_ih)

    def step(self, ax, prev, hin, p):
        gates, hn, h = _cell(ax, prev[0], hin, p.w_hh, p.b_hh, self.reset_after)
        return (h,), (gates, hn)

    def step_backward(self, d, prev, hin, new, saved, p):
        dax, dah, dh_prev, dhin = _cell_backward(d[0], prev[0], hin, saved[0], saved[1], p.w_hh, self.reset_after)
        return dax, dah, (dh_prev,), dhin

    def weight_grad(self, dw_hh, dah, h_in, saved):
        _recurrent_weight_grad(dw_hh, dah, h_in, saved[1], self.reset_after)


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=True, lengths=None, reverse=False, *,
                zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True, unmixed=None, out=None):
    """Whole sequence, one direction. Returns y [T,B,H] (zero at padded steps), the state
    history h [T+1,B,H], gates [T,B,3H] post-activation and hn [T,B,H]. (Its backward reads
    no new state: unmixed stays None with zoneout too.)"""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(out, unmixed, sequence_forward(GRU(reset_after), x, (h0,), Params(w_ih, w_hh, b_ih, b_hh),
                                                       lengths, reverse, reg))


def gru_backward(dy, dh_n, x, h, gates, hn, w_ih, w_hh, reset_after, lengths, reverse,
                 dw_ih, dw_hh, db_ih, db_hh, *, zoneout=0.0, recurrent_dropout=0.0, seed=0, t0=0, training=True,
                 unmixed=None, out=None):
    """BPTT for one direction: adds into the weight gradients; returns (dx [T,B,I], dh0 [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return into(out, sequence_backward(GRU(reset_after), dy, (dh_n,), x, (h,), (gates, hn), Params(w_ih, w_hh),
                                       lengths, reverse, Params(dw_ih, dw_hh, db_ih, db_hh), reg, unmixed))


def gru_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, reset_after=True, *, zoneout=0.0, recurrent_dropout=0.0,
                     seed=0, t0=0, training=True, unmixed=None):
    """One step. x [B,I], h_prev [B,H] -> (h [B,H], gates [B,3H], hn [B,H])."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return forward_into(None, unmixed, step_forward(GRU(reset_after), x, (h_prev,), Params(w_ih, w_hh, b_ih, b_hh),
                                                    reg))


def gru_step_backward(dh, x, h_prev, gates, hn, w_ih, w_hh, reset_after, dw_ih, dw_hh, db_ih, db_hh, *, zoneout=0.0,
                      recurrent_dropout=0.0, seed=0, t0=0, training=True):
    """Backward of one step. Adds into the weight gradients; returns (dx, dh_prev)."""
    reg = regularise(zoneout, recurrent_dropout, seed, t0, training)
    return step_backward(GRU(reset_after), (dh,), x, (h_prev,), (None,), (gates, hn), Params(w_ih, w_hh),
                         Params(dw_ih, dw_hh, db_ih, db_hh), reg)

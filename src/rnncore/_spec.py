"""What varies between the recurrent cells, said once for the layers, the one-step cells
and the reference (the Python mirror of each cell's ``CellSpec`` in ``cpp/cells/``).

A cell is named by its kernel prefix (``elman`` -> ``elman_forward`` ...), has G gates per
step, carries one or two states, saves per-step buffers beyond them, may have one extra
parameter and one option, and its kernels take their arguments in this order::

    forward(x, *states0, w_ih, w_hh, b_ih, b_hh, *extra, *option, lengths, reverse, *, out)
        -> (y, *state histories, *saved)
    backward(dy, *dstates_n, x, *state histories, *saved, w_ih, w_hh, *extra, *option,
             lengths, reverse, dw_ih, dw_hh, db_ih, db_hh, *dextra, *, out) -> (dx, *dstates0)
    step_forward(x, *states_prev, w_ih, w_hh, b_ih, b_hh, *extra, *option) -> states + saved
    step_backward(*dstates, x, *states_prev, *new states it reads, *saved, w_ih, w_hh,
                  *extra, *option, dw_ih, dw_hh, db_ih, db_hh, *dextra) -> (dx, *dstates_prev)

A cell with a projection (LSTMP: torch.nn.LSTM's ``proj_size``) takes ``w_hr`` after
``w_hh`` and ``dw_hr`` after ``dw_hh``; its h and y are P wide, its ``weight_hh`` [G*H,P].

A layer-normalised cell (``lstm_ln``, ``gru_ln``: haste's LayerNormLSTM and LayerNormGRU)
takes its gains and biases packed as the extra parameter ``ln``, in the order of
``CellSpec.norm``, the parameters the layers hold under those names.

Every one of them takes, keyword-only, ``zoneout, recurrent_dropout, seed, t0, training``
(and all but step_backward ``unmixed``): the regularisers of ``cpp/driver/regularise.h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

NONLINEARITIES = ("tanh", "relu", "sigmoid")


@dataclass(frozen=True)
class CellSpec:
    kind: str                          # kernel prefix
    G: int                             # gates per step
    states: tuple[str, ...]            # ("h",) or ("h", "c")
    saved: tuple[tuple[str, int], ...] = ()  # per-step buffers and their widths in units of H
    extra: Optional[tuple[str, int]] = None  # the extra parameter's name and width, e.g. ("weight_ch", 3)
    option: Optional[str] = None       # the layer attribute the kernels take, e.g. "nonlinearity"
    vector_recurrence: bool = False    # weight_hh is [H] (IndRNN), not [G*H, H]
    step_reads_next: tuple[str, ...] = ()  # new states a step's backward reads
    proj: Optional[str] = None         # the projection's parameter ("weight_hr" [P,H]): h is then P wide
    norm: tuple[tuple[str, int], ...] = ()  # layer norm: the parameters packed in extra, widths in
                                            # units of H; "ln_weight*" start at 1, "ln_bias*" at 0

    def weight_hh_shape(self, H, P=None):
        """P: the width of h (the projection size), H when None."""
        return (H,) if self.vector_recurrence else (self.G * H, H if P is None else P)


ELMAN = CellSpec("elman", 1, ("h",), option="nonlinearity", step_reads_next=("h",))
LSTM = CellSpec("lstm", 4, ("h", "c"), saved=(("gates", 4),), extra=("weight_ch", 3), step_reads_next=("c",))
LSTMP = CellSpec("lstmp", 4, ("h", "c"), saved=(("gates", 4), ("m", 1)), extra=("weight_ch", 3),
                 step_reads_next=("c",), proj="weight_hr")
GRU = CellSpec("gru", 3, ("h",), saved=(("gates", 3), ("hn", 1)), option="reset_after")
LSTM_LN = CellSpec("lstm_ln", 4, ("h", "c"), saved=(("wx", 4), ("acts", 10)), extra=("ln", 10),
                   norm=(("ln_weight_ih", 4), ("ln_weight_hh", 4), ("ln_weight_c", 1), ("ln_bias_c", 1)))
GRU_LN = CellSpec("gru_ln", 3, ("h",), saved=(("wx", 3), ("acts", 7)), extra=("ln", 6),
                  norm=(("ln_weight_ih", 3), ("ln_weight_hh", 3)))
INDRNN = CellSpec("indrnn", 1, ("h",), option="nonlinearity", vector_recurrence=True, step_reads_next=("h",))


class Weights(NamedTuple):
    """One direction's parameters (or their gradients), None where absent."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: Optional[np.ndarray]
    b_hh: Optional[np.ndarray]
    extra: Optional[np.ndarray]
    w_hr: Optional[np.ndarray] = None

    @classmethod
    def of(cls, table, suffix=""):
        """From params or grads by PyTorch's names (``weight_ih`` + suffix ...)."""
        return cls(table[f"weight_ih{suffix}"], table[f"weight_hh{suffix}"], table.get(f"bias_ih{suffix}"),
                   table.get(f"bias_hh{suffix}"), table.get(f"weight_ch{suffix}"), table.get(f"weight_hr{suffix}"))

    def proj(self):
        """The projection as the kernels take it after w_hh: (w_hr,), or () without one."""
        return () if self.w_hr is None else (self.w_hr,)


def norm_init(name, shape, dtype):
    """A layer norm parameter's initial value, haste's: gains ones, biases zeros."""
    return (np.zeros if name.startswith("ln_bias") else np.ones)(shape, dtype)


def pack_norm(spec, table, suffix=""):
    """The layer norm parameters of one direction packed as the kernels' ``ln``."""
    return np.concatenate([table[name + suffix] for name, _ in spec.norm])


def add_norm_grad(spec, table, packed, suffix=""):
    """Adds the packed gradient ``dln`` into the gradients by name."""
    H = packed.shape[0] // sum(w for _, w in spec.norm)
    o = 0
    for name, w in spec.norm:
        table[name + suffix] += packed[o:o + w * H]
        o += w * H


def final_state(history, reverse):
    """The final state of a direction from its history [T+1,B,H] (layout in cpp/runtime/common.h)."""
    return history[0] if reverse else history[-1]


def kernels(ops, spec):
    """The four kernel functions of a cell in a backend module."""
    return tuple(getattr(ops, f"{spec.kind}_{f}") for f in ("forward", "backward", "step_forward", "step_backward"))

"""Pure-NumPy reference of every kernel, written to be read beside the seed notes.

The functions mirror the native kernels name for name and argument for argument, and
run as the native driver does: one sequence loop and one gradient tail (``common``),
each cell only its step maths (``elman``, ``lstm``, ``gru``, ``indrnn``, ``layer_norm``);
``backend="reference"`` runs the layers on them, and the tests use them (in
float64) as the oracle for finite-difference gradient checks.
"""

from .elman import elman_backward, elman_forward, elman_step_backward, elman_step_forward
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .layer_norm import (gru_ln_backward, gru_ln_forward, gru_ln_step_backward, gru_ln_step_forward,
                         lstm_ln_backward, lstm_ln_forward, lstm_ln_step_backward, lstm_ln_step_forward)
from .indrnn import indrnn_backward, indrnn_forward, indrnn_step_backward, indrnn_step_forward
from .lstm import (lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward, lstmp_backward, lstmp_forward,
                   lstmp_step_backward, lstmp_step_forward)

__all__ = [
    "elman_forward", "elman_backward", "elman_step_forward", "elman_step_backward",
    "lstm_forward", "lstm_backward", "lstm_step_forward", "lstm_step_backward",
    "lstmp_forward", "lstmp_backward", "lstmp_step_forward", "lstmp_step_backward",
    "gru_forward", "gru_backward", "gru_step_forward", "gru_step_backward",
    "indrnn_forward", "indrnn_backward", "indrnn_step_forward", "indrnn_step_backward",
    "lstm_ln_forward", "lstm_ln_backward", "lstm_ln_step_forward", "lstm_ln_step_backward",
    "gru_ln_forward", "gru_ln_backward", "gru_ln_step_forward", "gru_ln_step_backward",
]

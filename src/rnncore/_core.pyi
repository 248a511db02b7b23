"""Typed stubs for rnncore._core, the compiled kernels (C++ over NumPy buffers).

Every array argument must have the exact dtype of x (float32 or float64; lengths and
targets int64), be C-contiguous and aligned; outputs and accumulators must be writeable
and must not overlap the inputs. Checked against the compiled module by mypy's stubtest
(tests/test_stubs.py): a function added to the module fails the check until it is here.
"""

from typing import Iterable, Optional

import numpy as np
from numpy.typing import NDArray

_Floats = NDArray[np.floating]  # float32 or float64
_Lengths = NDArray[np.int64]
_Out = Optional[tuple[Optional[_Floats], ...]]

# ---- threads and build ------------------------------------------------------------------

def blas_config() -> str: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _set_parallel_threshold(work: int) -> None: ...
def _parallel_threshold() -> int: ...
def _parallel_stats() -> tuple[int, int]: ...
def kernel_isa() -> str: ...

# ---- recurrent cells (one template, python/bind_cell.h) ------------------------------------
# Every function takes, keyword-only, zoneout and recurrent dropout (cpp/driver/regularise.h);
# forward, backward and step_forward also unmixed: [R,T,B,H] ([R,B,H] for a step), the new
# states before zoneout's mixing that the cell's backward reads (R: 1, none for the GRU; the
# LSTMP's is c, H wide).

def elman_forward(x: _Floats, h0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                  b_hh: Optional[_Floats], nonlinearity: str = "tanh", lengths: Optional[_Lengths] = None,
                  reverse: bool = False, *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0,
                  t0: int = 0, training: bool = True, unmixed: Optional[_Floats] = None,
                  out: _Out = None) -> tuple[_Floats, _Floats]: ...
def elman_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], x: _Floats, h: _Floats, w_ih: _Floats, w_hh: _Floats,
                   nonlinearity: str, lengths: Optional[_Lengths], reverse: bool, dw_ih: _Floats, dw_hh: _Floats,
                   db_ih: Optional[_Floats], db_hh: Optional[_Floats], *, zoneout: float = 0.0,
                   recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                   unmixed: Optional[_Floats] = None, out: _Out = None) -> tuple[_Floats, _Floats]: ...
def elman_step_forward(x: _Floats, h_prev: _Floats, w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                       b_hh: Optional[_Floats], nonlinearity: str = "tanh", *, zoneout: float = 0.0,
                       recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                       unmixed: Optional[_Floats] = None) -> _Floats: ...
def elman_step_backward(dh: _Floats, x: _Floats, h_prev: _Floats, h: _Floats, w_ih: _Floats, w_hh: _Floats,
                        nonlinearity: str, dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats],
                        db_hh: Optional[_Floats], *, zoneout: float = 0.0, recurrent_dropout: float = 0.0,
                        seed: int = 0, t0: int = 0, training: bool = True) -> tuple[_Floats, _Floats]: ...

def lstm_forward(x: _Floats, h0: Optional[_Floats], c0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats,
                 b_ih: Optional[_Floats], b_hh: Optional[_Floats], w_ch: Optional[_Floats] = None,
                 lengths: Optional[_Lengths] = None, reverse: bool = False, *, zoneout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                 unmixed: Optional[_Floats] = None, out: _Out = None) -> tuple[_Floats, _Floats, _Floats, _Floats]: ...
def lstm_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], dc_n: Optional[_Floats], x: _Floats, h: _Floats,
                  c: _Floats, gates: _Floats, w_ih: _Floats, w_hh: _Floats, w_ch: Optional[_Floats],
                  lengths: Optional[_Lengths], reverse: bool, dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats],
                  db_hh: Optional[_Floats], dw_ch: Optional[_Floats], *, zoneout: float = 0.0,
                  recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                  unmixed: Optional[_Floats] = None, out: _Out = None) -> tuple[_Floats, _Floats, _Floats]: ...
def lstm_step_forward(x: _Floats, h_prev: _Floats, c_prev: _Floats, w_ih: _Floats, w_hh: _Floats,
                      b_ih: Optional[_Floats], b_hh: Optional[_Floats], w_ch: Optional[_Floats] = None,
                      *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                      training: bool = True, unmixed: Optional[_Floats] = None) -> tuple[_Floats, _Floats, _Floats]: ...
def lstm_step_backward(dh: _Floats, dc: Optional[_Floats], x: _Floats, h_prev: _Floats, c_prev: _Floats, c: _Floats,
                       gates: _Floats, w_ih: _Floats, w_hh: _Floats, w_ch: Optional[_Floats], dw_ih: _Floats,
                       dw_hh: _Floats, db_ih: Optional[_Floats], db_hh: Optional[_Floats], dw_ch: Optional[_Floats],
                       *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                       training: bool = True) -> tuple[_Floats, _Floats, _Floats]: ...

def lstmp_forward(x: _Floats, h0: Optional[_Floats], c0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats,
                  w_hr: _Floats, b_ih: Optional[_Floats], b_hh: Optional[_Floats], w_ch: Optional[_Floats] = None,
                  lengths: Optional[_Lengths] = None, reverse: bool = False, *, zoneout: float = 0.0,
                  recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                  unmixed: Optional[_Floats] = None,
                  out: _Out = None) -> tuple[_Floats, _Floats, _Floats, _Floats, _Floats]: ...
def lstmp_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], dc_n: Optional[_Floats], x: _Floats, h: _Floats,
                   c: _Floats, gates: _Floats, m: _Floats, w_ih: _Floats, w_hh: _Floats, w_hr: _Floats,
                   w_ch: Optional[_Floats], lengths: Optional[_Lengths], reverse: bool, dw_ih: _Floats,
                   dw_hh: _Floats, dw_hr: _Floats, db_ih: Optional[_Floats], db_hh: Optional[_Floats],
                   dw_ch: Optional[_Floats], *, zoneout: float = 0.0, recurrent_dropout: float = 0.0,
                   seed: int = 0, t0: int = 0, training: bool = True, unmixed: Optional[_Floats] = None,
                   out: _Out = None) -> tuple[_Floats, _Floats, _Floats]: ...
def lstmp_step_forward(x: _Floats, h_prev: _Floats, c_prev: _Floats, w_ih: _Floats, w_hh: _Floats, w_hr: _Floats,
                       b_ih: Optional[_Floats], b_hh: Optional[_Floats], w_ch: Optional[_Floats] = None,
                       *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                       training: bool = True,
                       unmixed: Optional[_Floats] = None) -> tuple[_Floats, _Floats, _Floats, _Floats]: ...
def lstmp_step_backward(dh: _Floats, dc: Optional[_Floats], x: _Floats, h_prev: _Floats, c_prev: _Floats, c: _Floats,
                        gates: _Floats, m: _Floats, w_ih: _Floats, w_hh: _Floats, w_hr: _Floats,
                        w_ch: Optional[_Floats], dw_ih: _Floats, dw_hh: _Floats, dw_hr: _Floats,
                        db_ih: Optional[_Floats], db_hh: Optional[_Floats], dw_ch: Optional[_Floats],
                        *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                        training: bool = True) -> tuple[_Floats, _Floats, _Floats]: ...

def gru_forward(x: _Floats, h0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                b_hh: Optional[_Floats], reset_after: bool = True, lengths: Optional[_Lengths] = None,
                reverse: bool = False, *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0,
                t0: int = 0, training: bool = True, unmixed: Optional[_Floats] = None,
                out: _Out = None) -> tuple[_Floats, _Floats, _Floats, _Floats]: ...
def gru_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], x: _Floats, h: _Floats, gates: _Floats, hn: _Floats,
                 w_ih: _Floats, w_hh: _Floats, reset_after: bool, lengths: Optional[_Lengths], reverse: bool,
                 dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats], db_hh: Optional[_Floats],
                 *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                 training: bool = True, unmixed: Optional[_Floats] = None, out: _Out = None) -> tuple[_Floats,
                 _Floats]: ...
def gru_step_forward(x: _Floats, h_prev: _Floats, w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                     b_hh: Optional[_Floats], reset_after: bool = True, *, zoneout: float = 0.0,
                     recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                     unmixed: Optional[_Floats] = None) -> tuple[_Floats, _Floats, _Floats]: ...
def gru_step_backward(dh: _Floats, x: _Floats, h_prev: _Floats, gates: _Floats, hn: _Floats, w_ih: _Floats,
                      w_hh: _Floats, reset_after: bool, dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats],
                      db_hh: Optional[_Floats], *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0,
                      t0: int = 0, training: bool = True) -> tuple[_Floats, _Floats]: ...

# Layer-normalised LSTM and GRU (haste's LayerNormLSTM, LayerNormGRU): ln packs the gains and
# biases, [10H] = g_ih, g_hh (4H each), g_c, b_c (H each) for the LSTM, [6H] = g_ih, g_hh for
# the GRU; required (None raises ValueError). No unmixed states (their backward reads none).
def lstm_ln_forward(x: _Floats, h0: Optional[_Floats], c0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats,
                    b_ih: Optional[_Floats], b_hh: Optional[_Floats], ln: Optional[_Floats] = None,
                    lengths: Optional[_Lengths] = None, reverse: bool = False, *, zoneout: float = 0.0,
                    recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                    unmixed: Optional[_Floats] = None,
                    out: _Out = None) -> tuple[_Floats, _Floats, _Floats, _Floats, _Floats]: ...
def lstm_ln_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], dc_n: Optional[_Floats], x: _Floats, h: _Floats,
                     c: _Floats, wx: _Floats, acts: _Floats, w_ih: _Floats, w_hh: _Floats, ln: Optional[_Floats],
                     lengths: Optional[_Lengths], reverse: bool, dw_ih: _Floats, dw_hh: _Floats,
                     db_ih: Optional[_Floats], db_hh: Optional[_Floats], dln: Optional[_Floats], *,
                     zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                     training: bool = True, unmixed: Optional[_Floats] = None,
                     out: _Out = None) -> tuple[_Floats, _Floats, _Floats]: ...
def lstm_ln_step_forward(x: _Floats, h_prev: _Floats, c_prev: _Floats, w_ih: _Floats, w_hh: _Floats,
                         b_ih: Optional[_Floats], b_hh: Optional[_Floats], ln: Optional[_Floats] = None, *,
                         zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                         training: bool = True,
                         unmixed: Optional[_Floats] = None) -> tuple[_Floats, _Floats, _Floats, _Floats]: ...
def lstm_ln_step_backward(dh: _Floats, dc: Optional[_Floats], x: _Floats, h_prev: _Floats, c_prev: _Floats,
                          wx: _Floats, acts: _Floats, w_ih: _Floats, w_hh: _Floats, ln: Optional[_Floats],
                          dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats], db_hh: Optional[_Floats],
                          dln: Optional[_Floats], *, zoneout: float = 0.0, recurrent_dropout: float = 0.0,
                          seed: int = 0, t0: int = 0, training: bool = True) -> tuple[_Floats, _Floats, _Floats]: ...
def gru_ln_forward(x: _Floats, h0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                   b_hh: Optional[_Floats], ln: Optional[_Floats] = None, lengths: Optional[_Lengths] = None,
                   reverse: bool = False, *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0,
                   t0: int = 0, training: bool = True, unmixed: Optional[_Floats] = None,
                   out: _Out = None) -> tuple[_Floats, _Floats, _Floats, _Floats]: ...
def gru_ln_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], x: _Floats, h: _Floats, wx: _Floats,
                    acts: _Floats, w_ih: _Floats, w_hh: _Floats, ln: Optional[_Floats], lengths: Optional[_Lengths],
                    reverse: bool, dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats], db_hh: Optional[_Floats],
                    dln: Optional[_Floats], *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0,
                    t0: int = 0, training: bool = True, unmixed: Optional[_Floats] = None,
                    out: _Out = None) -> tuple[_Floats, _Floats]: ...
def gru_ln_step_forward(x: _Floats, h_prev: _Floats, w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                        b_hh: Optional[_Floats], ln: Optional[_Floats] = None, *, zoneout: float = 0.0,
                        recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                        unmixed: Optional[_Floats] = None) -> tuple[_Floats, _Floats, _Floats]: ...
def gru_ln_step_backward(dh: _Floats, x: _Floats, h_prev: _Floats, wx: _Floats, acts: _Floats, w_ih: _Floats,
                         w_hh: _Floats, ln: Optional[_Floats], dw_ih: _Floats, dw_hh: _Floats,
                         db_ih: Optional[_Floats], db_hh: Optional[_Floats], dln: Optional[_Floats], *,
                         zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0,
                         training: bool = True) -> tuple[_Floats, _Floats]: ...

# IndRNN: w_hh (and dw_hh) are vectors [H]
def indrnn_forward(x: _Floats, h0: Optional[_Floats], w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                   b_hh: Optional[_Floats], nonlinearity: str = "relu", lengths: Optional[_Lengths] = None,
                   reverse: bool = False, *, zoneout: float = 0.0, recurrent_dropout: float = 0.0, seed: int = 0,
                   t0: int = 0, training: bool = True, unmixed: Optional[_Floats] = None,
                   out: _Out = None) -> tuple[_Floats, _Floats]: ...
def indrnn_backward(dy: Optional[_Floats], dh_n: Optional[_Floats], x: _Floats, h: _Floats, w_ih: _Floats,
                    w_hh: _Floats, nonlinearity: str, lengths: Optional[_Lengths], reverse: bool, dw_ih: _Floats,
                    dw_hh: _Floats, db_ih: Optional[_Floats], db_hh: Optional[_Floats], *, zoneout: float = 0.0,
                    recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                    unmixed: Optional[_Floats] = None, out: _Out = None) -> tuple[_Floats, _Floats]: ...
def indrnn_step_forward(x: _Floats, h_prev: _Floats, w_ih: _Floats, w_hh: _Floats, b_ih: Optional[_Floats],
                        b_hh: Optional[_Floats], nonlinearity: str = "relu", *, zoneout: float = 0.0,
                        recurrent_dropout: float = 0.0, seed: int = 0, t0: int = 0, training: bool = True,
                        unmixed: Optional[_Floats] = None) -> _Floats: ...
def indrnn_step_backward(dh: _Floats, x: _Floats, h_prev: _Floats, h: _Floats, w_ih: _Floats, w_hh: _Floats,
                         nonlinearity: str, dw_ih: _Floats, dw_hh: _Floats, db_ih: Optional[_Floats],
                         db_hh: Optional[_Floats], *, zoneout: float = 0.0, recurrent_dropout: float = 0.0,
                         seed: int = 0, t0: int = 0, training: bool = True) -> tuple[_Floats, _Floats]: ...

# ---- losses and training -------------------------------------------------------------------

def softmax_xent_forward(logits: _Floats, targets: _Lengths, ignore_index: int = -100) -> tuple[_Floats, _Floats]: ...
def softmax_xent_backward(probs: _Floats, targets: _Lengths, ignore_index: int = -100, scale: float = 1.0) -> _Floats: ...
def clip_grad_norm(grads: Iterable[_Floats], max_norm: float) -> float: ...
def clip_grad_value(grads: Iterable[_Floats], clip: float) -> None: ...

# ---- dense layers, optimizers, generation (cpp/ops) ---------------------------------------

def linear_forward(x: _Floats, weight: _Floats, bias: Optional[_Floats] = None, *,
                   out: Optional[_Floats] = None) -> _Floats: ...
def linear_backward(dy: _Floats, x: _Floats, weight: _Floats, dweight: _Floats, dbias: Optional[_Floats] = None,
                    need_dx: bool = True, *, out: Optional[_Floats] = None) -> Optional[_Floats]: ...
def embedding_forward(ids: NDArray[np.integer], weight: _Floats, *, out: Optional[_Floats] = None) -> _Floats: ...
def embedding_backward(dy: _Floats, ids: NDArray[np.integer], dweight: _Floats) -> None: ...

class TensorGroup:
    """Arrays of one float dtype (a model's parameters or gradients), checked once."""
    def __init__(self, arrays: Iterable[_Floats]) -> None: ...
    def __len__(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def dtype(self) -> np.dtype: ...

def sgd_step(params: TensorGroup, grads: TensorGroup, velocity: Optional[_Floats], lr: float, momentum: float,
             weight_decay: float, nesterov: bool) -> None: ...
def adagrad_step(params: TensorGroup, grads: TensorGroup, sums: _Floats, lr: float, eps: float) -> None: ...
def adam_step(params: TensorGroup, grads: TensorGroup, m: _Floats, v: _Floats, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, step: int) -> None: ...

def sample_logits(logits: _Floats, temperature: float, u: float) -> int: ...
# layers: [(cell, option, w_ih, w_hh, b_ih, b_hh, w_ch, h, c)], h and c updated in place
def generate(embedding: _Floats, layers: list[tuple[object, ...]], head_w: _Floats, head_b: Optional[_Floats],
             logits0: _Floats, steps: int, temperature: float, uniforms: Optional[NDArray[np.float64]],
             end: int) -> NDArray[np.int64]: ...

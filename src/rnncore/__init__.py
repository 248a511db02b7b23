"""rnncore: fast, exact recurrent-network kernels for NumPy.

Layers (``RNN``, ``LSTM``, ``GRU``, ``IndRNN``) and one-step cells (``RNNCell``,
``LSTMCell``, ``GRUCell``, ``IndRNNCell``) with PyTorch's parameter names, shapes and
semantics, explicit ``forward``/``backward``, and a pure-NumPy reference
(``rnncore.reference``) of every kernel.
"""

import scipy_openblas32 as _openblas  # noqa: F401  loads the BLAS that _core links to, first

from ._module import Module, is_grad_enabled, no_grad
from ._threads import (_register_threadpoolctl, get_num_threads, get_thread_policy, release_cores,
                       set_num_threads, set_thread_policy)
from .backends import BACKENDS, backend_available
from .cells import GRUCell, IndRNNCell, LSTMCell, RNNCell
from .checkpoint import CheckpointError
from .decoding import beam_search, score
from .dropout import Dropout
from .gradcheck import GradcheckReport, gradcheck, gradcheck_module, numeric_gradient
from .heads import Embedding, Linear
from .layers import GRU, LSTM, RNN, IndRNN
from .losses import MSELoss, SoftmaxCrossEntropy
from .optim import SGD, Adagrad, Adam, clip_grad_norm, clip_grad_value
from .sequential import Sequential
from .training import generate, sample_logits, tbptt

__version__ = "0.1.0"

_register_threadpoolctl()

__all__ = [
    "RNN", "LSTM", "GRU", "IndRNN", "RNNCell", "LSTMCell", "GRUCell", "IndRNNCell", "Linear", "Embedding",
    "Sequential",
    "SoftmaxCrossEntropy", "MSELoss", "SGD", "Adagrad", "Adam", "clip_grad_norm", "clip_grad_value",
    "gradcheck", "gradcheck_module", "GradcheckReport", "numeric_gradient", "tbptt", "generate", "sample_logits", "CheckpointError",
    "Module", "no_grad", "is_grad_enabled", "BACKENDS", "backend_available", "set_num_threads",
    "get_num_threads", "set_thread_policy", "get_thread_policy", "release_cores", "__version__", "Dropout",
    "beam_search", "score",
]

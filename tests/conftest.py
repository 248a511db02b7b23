import numpy as np
import pytest

import rnncore
from rnn_testing import WORST_VS_ONNX, WORST_VS_TORCH

# Every backend that is built: each layer test runs on all of them.
AVAILABLE_BACKENDS = [b for b in rnncore.BACKENDS if rnncore.backend_available(b)]


@pytest.fixture(params=AVAILABLE_BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def threads():
    """Restores the native kernels' thread settings a test changes."""
    from rnncore import _core
    n, work = _core.get_num_threads(), _core._parallel_threshold()
    yield
    _core.set_num_threads(n)
    _core._set_parallel_threshold(work)


@pytest.fixture
def forced_threads():
    """Threads on every native call (threshold 0): yields rnncore's set_num_threads (None
    without the native backend) and restores the settings afterwards. (Not built on the
    ``threads`` fixture: tests parametrize a thread count under that name.)"""
    if not rnncore.backend_available("native"):
        yield None
        return
    from rnncore import _core
    n, work = _core.get_num_threads(), _core._parallel_threshold()
    _core._set_parallel_threshold(0)
    yield _core.set_num_threads
    _core.set_num_threads(n)
    _core._set_parallel_threshold(work)


def pytest_terminal_summary(terminalreporter):
    if WORST_VS_TORCH:
        terminalreporter.write_line(
            "largest relative error against torch: "
            + ", ".join(f"{k} {v:.3g}" for k, v in sorted(WORST_VS_TORCH.items())))
    if WORST_VS_ONNX:
        terminalreporter.write_line(
            "largest relative error against ONNX: "
            + ", ".join(f"{k} {v:.3g}" for k, v in sorted(WORST_VS_ONNX.items())))

"""pytest-benchmark comparisons of native vs reference vs PyTorch (when installed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks \\
        --benchmark-group-by=param:case --benchmark-columns=median,iqr,rounds

Threads: RNNCORE_BENCH_THREADS (default 1) for every implementation. Each case checks
that the implementations agree before anything is timed. Ratios are only meaningful
within one run (the machine's absolute speed drifts between runs).
"""

import os

import numpy as np
import pytest

from rnncore import bench

THREADS = int(os.environ.get("RNNCORE_BENCH_THREADS", "1"))


@pytest.fixture(scope="session", autouse=True)
def pinned_threads():
    with bench.limit_threads(THREADS):
        try:
            import torch
            torch.set_num_threads(THREADS)
        except ImportError:
            pass
        yield


_cases = {}


def get_case(kind, mode, shape, varlen):
    """One shared problem per case (weights, inputs), checked for agreement once."""
    key = (kind, mode, shape, varlen)
    if key not in _cases:
        case = bench.Case(kind, *shape, mode, varlen, np.random.default_rng(0))
        impls = ["native", "reference"]
        try:
            import torch
            case.setup_torch(torch)
            impls.append("torch")
        except ImportError:
            pass
        case.check(impls)
        _cases[key] = case
    return _cases[key]

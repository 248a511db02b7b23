"""Training step (forward + backward, every gradient) and inference forward, per cell,
shape and implementation. Group by case to compare implementations."""

import pytest

from conftest import get_case
from rnncore import bench

IMPLS = ["native", "torch", "reference"]
CASES = [(kind, mode, shape, False) for kind in ("rnn", "lstm", "gru") for mode in ("train", "infer")
         for shape in bench.GRID]
CASES += [(kind, mode, shape, True) for kind in ("lstm", "gru") for mode in ("train", "infer")
          for shape in bench.GRID]


def case_id(c):
    kind, mode, (T, B, I, H), varlen = c
    return f"{kind}{'-varlen' if varlen else ''}-{mode}-T{T}-B{B}-I{I}-H{H}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_speed(benchmark, case, impl):
    c = get_case(*case)
    if impl == "torch":
        if c.torch is None:
            pytest.skip("torch is not installed")
        fn = c.run_torch
    else:
        if impl == "reference" and case[2][1] * case[2][3] >= 64 * 512:
            # minutes per call on the largest shapes; `python -m rnncore.bench` times it once
            benchmark.pedantic(lambda: c.run_ours(impl), rounds=2, iterations=1)
            return
        fn = lambda: c.run_ours(impl)  # noqa: E731
    benchmark.extra_info["gflop"] = bench.flops(c.kind, c.T, c.B, c.I, c.H, c.mode) / 1e9
    benchmark(fn)

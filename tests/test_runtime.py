"""One runtime owns the cores: under the default thread policy, the first native layer call
with more than one rnncore thread limits the other thread pools in the process (NumPy's
OpenBLAS here) to one thread; release_cores and the "share" policy give them back; a count
the user sets afterwards is left alone. Run in a subprocess each, so that the test
process's own pools are not part of the experiment."""

import json
import subprocess
import sys
import textwrap

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")


def run(code):
    prelude = textwrap.dedent("""
        import json, numpy as np, threadpoolctl, rnncore
        def numpy_blas():
            infos = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
                     and "scipy_openblas32" not in i["filepath"]]
            return [i["num_threads"] for i in infos]
        def lstm_step():
            layer = rnncore.LSTM(3, 4)
            y, _ = layer.forward(np.ones((2, 1, 3), np.float32))
            layer.backward(np.ones_like(y))
        threadpoolctl.threadpool_limits(2, user_api="blas")  # as on any machine with 2+ cores
        rnncore.set_num_threads(2)
    """)
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_native_layer_limits_the_other_pools_and_release_gives_them_back():
    got = run("""
        before = numpy_blas()
        lstm_step()
        during = numpy_blas()
        limited = list(rnncore._threads.limited_pools().values())
        rnncore.release_cores()
        after = numpy_blas()
        print(json.dumps([before, during, limited, after]))
    """)
    before, during, limited, after = got
    assert before and all(n == 2 for n in before)
    assert all(n == 1 for n in during)
    assert limited and all(n == 2 for n in limited)
    assert after == before


def test_share_policy_and_one_thread_leave_the_pools_alone():
    got = run("""
        rnncore.set_thread_policy("share")
        lstm_step()
        shared = numpy_blas()
        rnncore.set_thread_policy("own")
        rnncore.set_num_threads(1)
        lstm_step()
        one = numpy_blas()
        rnncore.set_num_threads(2)
        lstm_step()
        own = numpy_blas()
        threadpoolctl.threadpool_limits(2, user_api="blas")  # the user's later choice is kept
        lstm_step()
        user = numpy_blas()
        print(json.dumps([shared, one, own, user, rnncore.get_thread_policy()]))
    """)
    shared, one, own, user, policy = got
    assert all(n == 2 for n in shared) and all(n == 2 for n in one)
    assert all(n == 1 for n in own)
    assert all(n == 2 for n in user)
    assert policy == "own"


def test_reference_backend_does_not_limit_anything():
    got = run("""
        layer = rnncore.LSTM(3, 4, backend="reference")
        layer.forward(np.ones((2, 1, 3), np.float32))
        print(json.dumps(numpy_blas()))
    """)
    assert all(n == 2 for n in got)


def test_bad_policy():
    import rnncore
    with pytest.raises(ValueError, match="policy"):
        rnncore.set_thread_policy("mine")


def test_rnncore_torch_modules_claim_the_cores_too():
    """rnncore.torch's modules run the same kernels: under "own" they limit torch's OpenMP
    pool (measured: an Embedding-LSTM-Linear-Adam step in PyTorch at 2 threads went from
    0.74x to 0.93x torch.nn.LSTM's speed); release_cores gives it back."""
    pytest.importorskip("torch")
    got = run("""
        import torch, rnncore.torch as rt
        torch.set_num_threads(2)
        before = torch.get_num_threads()
        lstm = rt.LSTM(3, 4)
        y, _ = lstm(torch.ones(2, 1, 3, requires_grad=True))
        y.sum().backward()
        during = torch.get_num_threads()
        rnncore.release_cores()
        print(json.dumps([before, during, torch.get_num_threads()]))
    """)
    assert got == [2, 1, 2]

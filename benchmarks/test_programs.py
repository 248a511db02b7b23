"""pytest-benchmark of whole-program steps inside one process: the main job's training step
(Embedding 64 -> 2x256 LSTM -> Linear, softmax cross-entropy, clipping, Adam; batch 32 x 64
steps), the same step with the user's own NumPy output layer, and generating 100 tokens.
The rnncore-against-PyTorch comparison runs each library in its own process:
benchmarks/whole_programs.py. Threads: RNNCORE_BENCH_THREADS (default 1)."""

import sys
from pathlib import Path

import numpy as np
import pytest

import rnncore

sys.path.insert(0, str(Path(__file__).resolve().parent / "programs"))
from common import char_data  # noqa: E402
from rnncore_programs import lm_model  # noqa: E402


@pytest.fixture(scope="module")
def lm():
    inputs, targets, V = char_data(32, 64)
    model = lm_model(V, 64, 256, 2)
    return model, inputs, targets, V


def test_main_job_training_step(benchmark, lm):
    model, inputs, targets, _ = lm
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=2e-3)
    state = [None]

    def step():
        opt.zero_grad()
        logits, state[0] = model.forward(inputs[0], state[0])
        xent.forward(logits, targets[0])
        model.backward(xent.backward())
        rnncore.clip_grad_norm(model.grads, 5.0)
        opt.step()

    benchmark.extra_info["tokens"] = inputs[0].size
    benchmark(step)


def test_main_job_step_with_numpy_head(benchmark, lm):
    model, inputs, targets, _ = lm
    body = rnncore.Sequential(model[0], model[1])
    W, b = model[2].params["weight"], model[2].params["bias"]

    def step():
        body.zero_grad()
        h, _ = body.forward(inputs[0])
        h2 = h.reshape(-1, W.shape[1])
        p = np.exp(h2 @ W.T + b)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(p)), targets[0].reshape(-1)] -= 1
        body.backward((p @ W).reshape(h.shape) / len(p))

    benchmark(step)


def test_generate_100_tokens(benchmark, lm):
    model = lm[0].eval()
    prime = np.array([5, 40, 41], np.int64)
    benchmark(lambda: rnncore.generate(model, prime, 100, temperature=0))
    model.train()

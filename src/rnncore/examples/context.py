"""Bidirectional and stacked layers, where they help: tag every position with the
symbol that comes *next*.

A left-to-right layer cannot know the future, so it can only guess (accuracy near
1/K); the reverse direction of a bidirectional layer reads it directly. Two stacked
bidirectional layers are trained here, next to a unidirectional stack of the same size.
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import one_hot, parser, report

K = 6


def make_batch(rng, n, T):
    seq = rng.integers(0, K, (T + 1, n))
    return one_hot(seq[:-1], K), seq[1:]


def train(bidirectional, steps, seed, hidden, batch, T, backend):
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    model = rnncore.Sequential(rnncore.LSTM(K, hidden, num_layers=2, bidirectional=bidirectional,
                                            backend=backend, seed=seed),
                               rnncore.Linear(D * hidden, K, seed=seed + 1))
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=1e-2)
    for _ in range(steps):
        x, nxt = make_batch(rng, batch, T)
        opt.zero_grad()
        xent.forward(model.forward(x)[0], nxt)
        model.backward(xent.backward())
        opt.step()
    x, nxt = make_batch(np.random.default_rng(seed + 1000), 1000, T)
    with rnncore.no_grad():
        pred = model.forward(x)[0].argmax(-1)
    # the last position has no next symbol in its input: score the others
    return float(np.mean(pred[:-1] == nxt[:-1]))


def run(steps=300, seed=0, hidden=24, batch=64, T=16, backend=None, verbose=False):
    bi = train(True, steps, seed, hidden, batch, T, backend)
    uni = train(False, steps, seed, hidden, batch, T, backend)
    return {"bidirectional accuracy": bi, "unidirectional accuracy": uni, "chance": 1.0 / K}


def main(argv=None):
    args = parser(__doc__, 300).parse_args(argv)
    report("context", run(args.steps, args.seed, backend=args.backend))


if __name__ == "__main__":
    main()

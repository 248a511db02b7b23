"""Many-to-one: read a sequence of symbols and say whether a pattern occurred in it.

The notes' sequence detector: the LSTM reads all T symbols and only its final state
feeds a two-class output layer. Sequences are drawn from 4 symbols, half of them with
the pattern 1 2 3 planted at a random position (the others can contain it by chance;
the label is always the truth).
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import one_hot, parser, report

PATTERN = (1, 2, 3)
K = 4


def contains(seq, pattern=PATTERN):
    n = len(pattern)
    return any(tuple(seq[i:i + n]) == pattern for i in range(len(seq) - n + 1))


def make_batch(rng, n, T):
    """(one-hot x (T, n, K), labels (n,))."""
    seqs = rng.integers(0, K, (n, T))
    plant = rng.random(n) < 0.5
    for i in np.nonzero(plant)[0]:
        at = rng.integers(0, T - len(PATTERN) + 1)
        seqs[i, at:at + len(PATTERN)] = PATTERN
    labels = np.array([contains(s) for s in seqs], np.int64)
    return one_hot(seqs.T, K), labels


def run(steps=400, seed=0, hidden=32, batch=64, T=20, backend=None, verbose=False):
    rng = np.random.default_rng(seed)
    lstm = rnncore.LSTM(K, hidden, backend=backend, seed=seed)
    head = rnncore.Linear(hidden, 2, seed=seed + 1)
    xent = rnncore.SoftmaxCrossEntropy()
    params = {**{"lstm." + k: v for k, v in lstm.params.items()}, **{"head." + k: v for k, v in head.params.items()}}
    grads = {**{"lstm." + k: v for k, v in lstm.grads.items()}, **{"head." + k: v for k, v in head.grads.items()}}
    opt = rnncore.Adam(params, grads, lr=1e-2)
    for step in range(steps):
        x, labels = make_batch(rng, batch, T)
        opt.zero_grad()
        _, (h_n, _) = lstm.forward(x)
        loss = xent.forward(head.forward(h_n[-1]), labels)
        dh = head.backward(xent.backward())
        lstm.backward(None, (dh[None], None))  # the gradient enters through the final state only
        opt.step()
        if verbose and step % 100 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    x, labels = make_batch(np.random.default_rng(seed + 1000), 4000, T)
    with rnncore.no_grad():
        _, (h_n, _) = lstm.forward(x)
        pred = head.forward(h_n[-1]).argmax(-1)
    return {"accuracy": float(np.mean(pred == labels)), "positives": float(labels.mean())}


def main(argv=None):
    args = parser(__doc__, 400).parse_args(argv)
    report("detector", run(args.steps, args.seed, backend=args.backend, verbose=True))


if __name__ == "__main__":
    main()

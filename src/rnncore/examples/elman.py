"""The Elman network solves the notes' sequence detector.

The notes teach this network first (000, 003): the state is the hidden layer's previous
output fed back in, ``s_t = tanh(x_t W_x + s_{t-1} W_s)``, and the output is read from
the state, ``y_t = s_t W_y``. Here it is ``rnncore.RNN(K, H, nonlinearity="tanh")``
followed by ``rnncore.Linear(H, 2)`` at every step (many-to-many): at each step it says
whether the last three symbols were the pattern 1 2 3, as the notes' sequence-detector
example does. The state must carry the last two symbols: an Elman network does that
easily (the vanishing gradient the notes warn about only hurts dependencies many steps
back). It is tested on sequences 2.5 times longer than it was trained on.
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import one_hot, parser, report

PATTERN = (1, 2, 3)
K = 4


def make_batch(rng, n, T):
    """One-hot symbols (T, n, K) and per-step labels (T, n): 1 where the pattern has just
    been completed. Patterns are planted so that about one step in ten is positive."""
    seqs = rng.integers(0, K, (n, T))
    for i in range(n):
        for at in np.nonzero(rng.random(T - len(PATTERN) + 1) < 0.1)[0]:
            seqs[i, at:at + len(PATTERN)] = PATTERN
    labels = np.zeros((n, T), np.int64)
    for k in range(len(PATTERN) - 1, T):
        labels[:, k] = np.all(seqs[:, k - len(PATTERN) + 1:k + 1] == PATTERN, axis=1)
    return one_hot(seqs.T, K), labels.T.copy()


def run(steps=300, seed=0, hidden=16, batch=32, T=20, backend=None, verbose=False):
    rng = np.random.default_rng(seed)
    model = rnncore.Sequential(rnncore.RNN(K, hidden, nonlinearity="tanh", backend=backend, seed=seed),
                               rnncore.Linear(hidden, 2, seed=seed + 1))
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=2e-2)
    for step in range(steps):
        x, labels = make_batch(rng, batch, T)
        opt.zero_grad()
        logits, _ = model.forward(x)
        loss = xent.forward(logits, labels)
        model.backward(xent.backward())
        opt.step()
        if verbose and step % 50 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    x, labels = make_batch(np.random.default_rng(seed + 1000), 1000, int(2.5 * T))
    with rnncore.no_grad():
        pred = model.forward(x)[0].argmax(-1)
    pos = labels == 1
    return {"step accuracy": float(np.mean(pred == labels)),
            "patterns detected (recall)": float(np.mean(pred[pos] == 1)),
            "detections that were patterns (precision)": float(np.mean(labels[pred == 1] == 1)),
            "sequences without a mistake": float(np.mean(np.all(pred == labels, axis=0))),
            "positive steps": float(pos.mean())}


def main(argv=None):
    args = parser(__doc__, 300).parse_args(argv)
    report("elman", run(args.steps, args.seed, backend=args.backend, verbose=True))


if __name__ == "__main__":
    main()

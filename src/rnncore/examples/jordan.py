"""Output-to-hidden (Jordan) recurrence, trained with teacher forcing.

In a Jordan network the recurrence goes through the output: the hidden layer sees the
current input and the previous *output*, h_t = tanh(W [x_t, y_{t-1}] + b), and has no
state of its own. With teacher forcing, training feeds the true previous output, so the
whole sequence is one feed-forward batch; at test time the network runs free, feeding
back its own predictions. The task: the running parity of a bit stream (y_t = x_t XOR
y_{t-1}), tested on sequences twice as long as the training ones.
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import one_hot, parser, report


def make_batch(rng, n, T):
    bits = rng.integers(0, 2, (T, n))
    parity = np.cumsum(bits, axis=0) % 2
    prev = np.concatenate([np.zeros((1, n), np.int64), parity[:-1]])  # the teacher's y_{t-1}
    return bits, prev, parity


def features(bits, prev):
    return np.concatenate([one_hot(bits, 2), one_hot(prev, 2)], axis=-1)


def run(steps=300, seed=0, hidden=16, batch=64, T=20, backend=None, verbose=False):
    rng = np.random.default_rng(seed)
    model = rnncore.Sequential(rnncore.Linear(4, hidden, seed=seed), rnncore.heads.Activation("tanh"),
                               rnncore.Linear(hidden, 2, seed=seed + 1))
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=1e-2)
    for step in range(steps):
        bits, prev, parity = make_batch(rng, batch, T)
        opt.zero_grad()
        loss = xent.forward(model.forward(features(bits, prev))[0], parity)  # teacher forcing
        model.backward(xent.backward())
        opt.step()
        if verbose and step % 100 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    bits, _, parity = make_batch(np.random.default_rng(seed + 1000), 1000, 2 * T)
    y = np.zeros(bits.shape[1], np.int64)
    pred = np.empty_like(parity)
    with rnncore.no_grad():
        for t in range(bits.shape[0]):  # free running: the model's own previous output
            y = model.forward(features(bits[t], y))[0].argmax(-1)
            pred[t] = y
    return {"free-running accuracy": float(np.mean(pred == parity)),
            "sequence accuracy": float(np.mean((pred == parity).all(0)))}


def main(argv=None):
    args = parser(__doc__, 300).parse_args(argv)
    report("jordan", run(args.steps, args.seed, backend=args.backend, verbose=True))


if __name__ == "__main__":
    main()

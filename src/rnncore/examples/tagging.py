"""Many-to-many with equal lengths: tag every position of a bit stream with the parity
of the bits so far (1 when an odd number of ones has been seen).

The answer at step t depends on every earlier input, so the recurrent state has to
carry one bit of memory through the whole sequence. A GRU reads the bits, an output
layer tags each step.
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import one_hot, parser, report


def make_batch(rng, n, T):
    bits = rng.integers(0, 2, (T, n))
    return one_hot(bits, 2), np.cumsum(bits, axis=0) % 2


def run(steps=500, seed=0, hidden=16, batch=64, T=24, backend=None, verbose=False):
    rng = np.random.default_rng(seed)
    model = rnncore.Sequential(rnncore.GRU(2, hidden, backend=backend, seed=seed),
                               rnncore.Linear(hidden, 2, seed=seed + 1))
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=1e-2)
    for step in range(steps):
        x, tags = make_batch(rng, batch, T)
        opt.zero_grad()
        logits, _ = model.forward(x)
        loss = xent.forward(logits, tags)
        model.backward(xent.backward())
        rnncore.clip_grad_norm(model.grads, 5.0)
        opt.step()
        if verbose and step % 100 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    x, tags = make_batch(np.random.default_rng(seed + 1000), 2000, T)
    with rnncore.no_grad():
        pred = model.forward(x)[0].argmax(-1)
    return {"accuracy": float(np.mean(pred == tags)), "sequence accuracy": float(np.mean((pred == tags).all(0)))}


def main(argv=None):
    args = parser(__doc__, 500).parse_args(argv)
    report("tagging", run(args.steps, args.seed, backend=args.backend, verbose=True))


if __name__ == "__main__":
    main()

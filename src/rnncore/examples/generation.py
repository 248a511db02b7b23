"""One-to-many: from a single start token, generate a whole sequence, sampling with a
temperature until the model emits <end>.

Each start digit d stands for the sequence d, d+1, ..., 9 followed by <end> (so the
lengths differ). Training uses teacher forcing on padded batches with per-sequence
lengths and a masked loss; generation feeds each sampled token back in, one step at a
time, until <end>.
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import parser, report

END = 10
V = 11  # digits and <end>


def target_of(d):
    return list(range(d, 10)) + [END]


def make_batch(rng, n):
    """Inputs (T, n) = start digit then the sequence so far; targets (T, n); lengths."""
    starts = rng.integers(0, 10, n)
    seqs = [target_of(d) for d in starts]
    T = max(map(len, seqs))
    inputs = np.zeros((T, n), np.int64)
    targets = np.full((T, n), -100, np.int64)  # ignored past each sequence's end
    for b, (d, s) in enumerate(zip(starts, seqs)):
        inputs[:len(s), b] = [d] + s[:-1]
        targets[:len(s), b] = s
    return inputs, targets, np.array([len(s) for s in seqs])


def run(steps=400, seed=0, hidden=32, batch=64, temperature=0.7, backend=None, verbose=False):
    rng = np.random.default_rng(seed)
    model = rnncore.Sequential(rnncore.Embedding(V, 16, seed=seed), rnncore.LSTM(16, hidden, backend=backend,
                                                                                  seed=seed + 1),
                               rnncore.Linear(hidden, V, seed=seed + 2))
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=1e-2)
    for step in range(steps):
        inputs, targets, lengths = make_batch(rng, batch)
        opt.zero_grad()
        logits, _ = model.forward(inputs, lengths=lengths)
        loss = xent.forward(logits, targets)
        model.backward(xent.backward())
        opt.step()
        if verbose and step % 100 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    greedy_ok = sum(list(rnncore.generate(model, np.array([d]), 20, temperature=0, end=END)) == target_of(d)
                    for d in range(10))
    sample_rng = np.random.default_rng(seed + 7)
    samples = [rnncore.generate(model, np.array([d % 10]), 20, temperature=temperature, rng=sample_rng, end=END)
               for d in range(200)]
    ended = np.mean([len(s) and s[-1] == END for s in samples])
    exact = np.mean([list(s) == target_of(d % 10) for d, s in enumerate(samples)])
    if verbose:
        for d in (0, 4, 8):
            s = rnncore.generate(model, np.array([d]), 20, temperature=temperature, rng=sample_rng, end=END)
            print(f"start {d}: " + " ".join("<end>" if t == END else str(t) for t in s))
    return {"greedy correct starts": greedy_ok, f"sampled (T={temperature}) ending with <end>": float(ended),
            f"sampled (T={temperature}) exact": float(exact)}


def main(argv=None):
    p = parser(__doc__, 400)
    p.add_argument("--temperature", type=float, default=0.7)
    args = p.parse_args(argv)
    report("generation", run(args.steps, args.seed, temperature=args.temperature, backend=args.backend,
                             verbose=True))


if __name__ == "__main__":
    main()

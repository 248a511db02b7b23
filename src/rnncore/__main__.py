"""``python -m rnncore``: train a small LSTM on the embedded Reber grammar.

The data (``rnncore/data/reber.txt``, 3000 strings of Hochreiter and Schmidhuber's
embedded Reber grammar, generated with a fixed seed) ships with the package. The
model reads one character at a time and predicts the next; the second symbol of each
string must be remembered until its second-to-last, which a plain RNN finds hard and
an LSTM learns in seconds. Printed: the loss in bits per character as it falls,
against the unigram baseline and the grammar's own entropy floor.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources

import numpy as np

import rnncore
from rnncore.heads import Linear
from rnncore.losses import SoftmaxCrossEntropy
from rnncore.optim import Adam
from rnncore.text import Vocab, batchify


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m rnncore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    p.add_argument("--hidden", type=int, default=64, help="LSTM hidden size (default 64)")
    p.add_argument("--batch", type=int, default=32, help="sequences per batch (default 32)")
    p.add_argument("--bptt", type=int, default=25, help="truncated-BPTT chunk length (default 25)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 0.01)")
    p.add_argument("--backend", choices=rnncore.BACKENDS, default=None, help="kernel backend")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def unigram_bits(ids, V):
    p = np.bincount(ids, minlength=V) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def grammar_floor_bits(text):
    """The entropy of the data itself in bits per character: each string of the
    embedded grammar makes one fair binary choice per inner transition plus the
    embedding symbol, len(s) - 5 bits over len(s) + 1 characters (with the newline)."""
    lines = text.split()
    return sum(len(s) - 5 for s in lines) / sum(len(s) + 1 for s in lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    text = resources.files("rnncore.data").joinpath("reber.txt").read_text(encoding="utf-8")
    vocab = Vocab.from_text(text)
    V = len(vocab)
    ids = vocab.encode(text)
    inputs, targets = batchify(ids, args.batch, args.bptt)
    onehot = np.eye(V, dtype=np.float32)

    lstm = rnncore.LSTM(V, args.hidden, backend=args.backend, seed=args.seed)
    head = Linear(args.hidden, V, seed=args.seed + 1)
    loss_fn = SoftmaxCrossEntropy()
    params = {**{"lstm." + k: v for k, v in lstm.params.items()},
              **{"head." + k: v for k, v in head.params.items()}}
    grads = {**{"lstm." + k: v for k, v in lstm.grads.items()},
             **{"head." + k: v for k, v in head.grads.items()}}
    opt = Adam(params, grads, lr=args.lr)

    print(f"rnncore {rnncore.__version__}: LSTM({V}, {args.hidden}) on the embedded Reber grammar, "
          f"{len(ids)} characters, backend={lstm.backend!r}")
    floor = grammar_floor_bits(text)
    print(f"unigram baseline {unigram_bits(ids, V):.3f} bits/char; the grammar's own entropy "
          f"{floor:.3f} bits/char is the floor")
    state = None
    start = time.perf_counter()
    smooth = None
    for step in range(args.steps):
        k = step % len(inputs)
        if k == 0:
            state = None  # a new pass over the data starts from a zero state
        x = onehot[inputs[k]]
        opt.zero_grad()
        y, state = lstm.forward(x, state)
        loss = loss_fn.forward(head.forward(y), targets[k])
        lstm.backward(head.backward(loss_fn.backward()))
        opt.step()
        bits = loss / np.log(2)
        smooth = bits if smooth is None else 0.9 * smooth + 0.1 * bits
        if step % 100 == 0 or step == args.steps - 1:
            rate = (step + 1) * args.batch * args.bptt / (time.perf_counter() - start)
            print(f"step {step:4d}  loss {smooth:.3f} bits/char  ({rate:,.0f} chars/s)", flush=True)
    print(f"done in {time.perf_counter() - start:.1f} s: {smooth:.3f} bits/char "
          f"(unigram {unigram_bits(ids, V):.3f}, floor {floor:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

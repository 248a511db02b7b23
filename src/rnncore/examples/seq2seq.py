"""Encoder-decoder: read a sequence of digits and write it out sorted (the notes'
sorting example), or reversed.

The encoder LSTM reads the digits; its final state (h, c) is the decoder LSTM's initial
state. In training the decoder is fed the true previous output (teacher forcing) and
the gradient flows back into the encoder through that state: decoder.backward returns
d(h0, c0), which is the encoder's d(h_n, c_n). At test time the decoder runs free,
feeding back its own greedy choices one step at a time.
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import one_hot, parser, report

DIGITS = 10
START = DIGITS  # the decoder's first input


class Seq2Seq:
    def __init__(self, hidden, seed, backend=None):
        self.encoder = rnncore.LSTM(DIGITS, hidden, backend=backend, seed=seed)
        self.decoder = rnncore.LSTM(DIGITS + 1, hidden, backend=backend, seed=seed + 1)
        self.head = rnncore.Linear(hidden, DIGITS, seed=seed + 2)
        parts = {"encoder": self.encoder, "decoder": self.decoder, "head": self.head}
        self.params = {f"{n}.{k}": v for n, m in parts.items() for k, v in m.params.items()}
        self.grads = {f"{n}.{k}": v for n, m in parts.items() for k, v in m.grads.items()}

    def loss_and_backward(self, src, tgt, xent):
        """Teacher-forced training step: forward, loss, backward through both LSTMs."""
        _, state = self.encoder.forward(one_hot(src, DIGITS))
        dec_in = np.concatenate([np.full((1, src.shape[1]), START), tgt[:-1]])
        y, _ = self.decoder.forward(one_hot(dec_in, DIGITS + 1), state)
        loss = xent.forward(self.head.forward(y), tgt)
        _, dstate = self.decoder.backward(self.head.backward(xent.backward()))
        self.encoder.backward(None, dstate)
        return loss

    def greedy(self, src):
        """Free-running decoding: each output is the next input."""
        with rnncore.no_grad():
            _, state = self.encoder.forward(one_hot(src, DIGITS))
            tok = np.full((1, src.shape[1]), START)
            out = []
            for _ in range(src.shape[0]):
                y, state = self.decoder.forward(one_hot(tok, DIGITS + 1), state)
                tok = self.head.forward(y).argmax(-1)
                out.append(tok[0])
        return np.stack(out)


def make_batch(rng, n, length, task):
    src = rng.integers(0, DIGITS, (length, n))
    tgt = np.sort(src, axis=0) if task == "sort" else src[::-1].copy()
    return src, tgt


def run(steps=3000, seed=0, hidden=128, batch=128, length=5, task="sort", backend=None, verbose=False):
    rng = np.random.default_rng(seed)
    model = Seq2Seq(hidden, seed, backend)
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=3e-3)
    for step in range(steps):
        src, tgt = make_batch(rng, batch, length, task)
        opt.zero_grad()
        loss = model.loss_and_backward(src, tgt, xent)
        rnncore.clip_grad_norm(model.grads, 5.0)
        opt.step()
        if verbose and step % 250 == 0:
            print(f"step {step:5d}  loss {loss:.4f}")
    src, tgt = make_batch(np.random.default_rng(seed + 1000), 2000, length, task)
    pred = model.greedy(src)
    return {"exact-sequence accuracy": float(np.mean((pred == tgt).all(0))),
            "digit accuracy": float(np.mean(pred == tgt))}


def main(argv=None):
    p = parser(__doc__, 3000)
    p.add_argument("--task", choices=("sort", "reverse"), default="sort")
    p.add_argument("--length", type=int, default=5)
    args = p.parse_args(argv)
    report(f"seq2seq ({args.task})", run(args.steps, args.seed, length=args.length, task=args.task,
                                          backend=args.backend, verbose=True))


if __name__ == "__main__":
    main()

"""The whole programs, written with rnncore as its README shows: run one and print a JSON
line (rate, loss). The runner (benchmarks/whole_programs.py) runs each in its own
process, alternating with the PyTorch version (torch_programs.py)."""

from __future__ import annotations

import math

import numpy as np

import rnncore
from common import Timer, char_data, emit, lm_weights, parser, seq2seq_batches, seq2seq_weights


def lm_model(V, embed, hidden, layers):
    model = rnncore.Sequential(rnncore.Embedding(V, embed), rnncore.LSTM(embed, hidden, num_layers=layers),
                               rnncore.Linear(hidden, V))
    w = lm_weights(V, embed, hidden, layers)
    model.load_state_dict({k.replace("embedding.", "0.").replace("lstm.", "1.").replace("head.", "2."): v
                           for k, v in w.items()})
    return model


def time_lm_steps(step, args, tokens):
    """Warm up, time args.steps calls of step(k) (each returns its loss), report tokens/s."""
    for k in range(args.warmup):
        step(k)
    losses = []
    with Timer() as t:
        for k in range(args.warmup, args.warmup + args.steps):
            losses.append(step(k))
    emit(rate=args.steps * tokens / t.seconds, unit="tokens/s", loss=float(np.mean(losses)), last_loss=losses[-1])


def train_lm(args, embed):
    """The main job's training step (embed 64) or the README's loop (embed 32)."""
    inputs, targets, V = char_data(32, 64)
    model = lm_model(V, embed, 256, 2)
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=2e-3)
    state = None

    def step(k):
        nonlocal state
        opt.zero_grad()
        logits, state = model.forward(inputs[k], state)
        loss = xent.forward(logits, targets[k])
        model.backward(xent.backward())
        rnncore.clip_grad_norm(model.grads, 5.0)
        opt.step()
        return loss

    time_lm_steps(step, args, inputs[0].size)


def train_numpy_head(args):
    """The main job's model with the user's own output layer and loss in NumPy."""
    inputs, targets, V = char_data(32, 64)
    H = 256
    model = lm_model(V, 64, H, 2)
    body = rnncore.Sequential(model[0], model[1])
    W, b = model[2].params["weight"].copy(), model[2].params["bias"].copy()
    params = {**body.params, "head.weight": W, "head.bias": b}
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    grads = {**body.grads, "head.weight": gW, "head.bias": gb}
    opt = rnncore.Adam(params, grads, lr=2e-3)
    state = None

    def step(k):
        nonlocal state
        opt.zero_grad()
        h, state = body.forward(inputs[k], state)
        h2 = h.reshape(-1, H)
        logits = h2 @ W.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        y = targets[k].reshape(-1)
        rows = np.arange(len(y))
        loss = float(-np.log(p[rows, y]).mean())
        p[rows, y] -= 1
        p /= len(y)
        np.matmul(p.T, h2, out=gW)
        gb[...] = p.sum(axis=0)
        body.backward((p @ W).reshape(h.shape))
        rnncore.clip_grad_norm(grads, 5.0)
        opt.step()
        return loss

    time_lm_steps(step, args, inputs[0].size)


def train_seq2seq(args):
    """The seq2seq example's training (sort 5 digits; encoder and decoder LSTMs, 128 units)."""
    from rnncore.examples.seq2seq import Seq2Seq
    model = Seq2Seq(128, 0)
    w = seq2seq_weights(128)
    for part in ("encoder", "decoder", "head"):
        getattr(model, part).load_state_dict({k[len(part) + 1:]: v for k, v in w.items() if k.startswith(part)})
    xent = rnncore.SoftmaxCrossEntropy()
    opt = rnncore.Adam(model.params, model.grads, lr=3e-3)
    batches = seq2seq_batches(args.warmup + args.steps, 128, 5)
    losses = []

    def step(src, tgt):
        opt.zero_grad()
        loss = model.loss_and_backward(src, tgt, xent)
        rnncore.clip_grad_norm(model.grads, 5.0)
        opt.step()
        return loss

    for src, tgt in batches[:args.warmup]:
        step(src, tgt)
    with Timer() as t:
        for src, tgt in batches[args.warmup:]:
            losses.append(step(src, tgt))
    emit(rate=args.steps * 128 / t.seconds, unit="sequences/s", loss=float(np.mean(losses)), last_loss=losses[-1])


def generate(args):
    """Greedy text generation, token by token, from the main job's model."""
    _, _, V = char_data(32, 64)
    model = lm_model(V, 64, 256, 2).eval()
    prime = np.array([5, 40, 41, 42], np.int64)
    rnncore.generate(model, prime, 20, temperature=0)
    with Timer() as t:
        ids = rnncore.generate(model, prime, args.steps, temperature=0)
    emit(rate=len(ids) / t.seconds, unit="tokens/s", ids=[int(i) for i in ids])


def main():
    args = parser(__doc__).parse_args()
    rnncore.set_num_threads(args.threads)
    {"lm": lambda: train_lm(args, 64), "readme": lambda: train_lm(args, 32), "numpy-head": lambda: train_numpy_head(args),
     "seq2seq": lambda: train_seq2seq(args), "generate": lambda: generate(args)}[args.program]()


if __name__ == "__main__":
    main()

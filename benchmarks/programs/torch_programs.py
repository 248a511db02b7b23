"""The whole programs, written with PyTorch as a PyTorch user would: the same models,
weights, data and hyper-parameters as rnncore_programs.py."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from common import Timer, char_data, emit, lm_weights, parser, seq2seq_batches, seq2seq_weights


class LanguageModel(nn.Module):
    def __init__(self, V, embed, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(V, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers)
        self.head = nn.Linear(hidden, V)
        self.load_state_dict({k: torch.from_numpy(v) for k, v in lm_weights(V, embed, hidden, layers).items()})

    def forward(self, x, state=None):
        y, state = self.lstm(self.embedding(x), state)
        return self.head(y), state


def train_lm(args, embed, custom_head=False):
    inputs, targets, V = char_data(32, 64)
    model = LanguageModel(V, embed, 256, 2)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
    state, losses = None, []

    def step(k):
        nonlocal state
        opt.zero_grad()
        if state is not None:
            state = tuple(s.detach() for s in state)
        if custom_head:  # the user's own output layer and loss
            h, state = model.lstm(model.embedding(inputs[k]), state)
            logits = h.reshape(-1, h.shape[-1]) @ model.head.weight.T + model.head.bias
            logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
            loss = -logp[torch.arange(logp.shape[0]), targets[k].reshape(-1)].mean()
        else:
            logits, state = model(inputs[k], state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, V), targets[k].reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    for k in range(args.warmup):
        step(k)
    with Timer() as t:
        for k in range(args.warmup, args.warmup + args.steps):
            losses.append(step(k))
    emit(rate=args.steps * inputs[0].numel() / t.seconds, unit="tokens/s", loss=float(np.mean(losses)),
         last_loss=losses[-1])


class Seq2Seq(nn.Module):
    def __init__(self, hidden, digits=10):
        super().__init__()
        self.digits = digits
        self.encoder = nn.LSTM(digits, hidden)
        self.decoder = nn.LSTM(digits + 1, hidden)
        self.head = nn.Linear(hidden, digits)
        self.load_state_dict({k: torch.from_numpy(v) for k, v in seq2seq_weights(hidden, digits).items()})

    def forward(self, src, tgt):
        d = self.digits
        _, state = self.encoder(nn.functional.one_hot(src, d).float())
        dec_in = torch.cat([torch.full((1, src.shape[1]), d), tgt[:-1]])
        y, _ = self.decoder(nn.functional.one_hot(dec_in, d + 1).float(), state)
        return nn.functional.cross_entropy(self.head(y).reshape(-1, d), tgt.reshape(-1))


def train_seq2seq(args):
    model = Seq2Seq(128)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = [(torch.from_numpy(s), torch.from_numpy(t)) for s, t in seq2seq_batches(args.warmup + args.steps, 128, 5)]
    losses = []

    def step(src, tgt):
        opt.zero_grad()
        loss = model(src, tgt)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    for src, tgt in batches[:args.warmup]:
        step(src, tgt)
    with Timer() as t:
        for src, tgt in batches[args.warmup:]:
            losses.append(step(src, tgt))
    emit(rate=args.steps * 128 / t.seconds, unit="sequences/s", loss=float(np.mean(losses)), last_loss=losses[-1])


@torch.no_grad()
def sample(model, prime, n):
    logits, state = model(prime[:, None])
    out = []
    for _ in range(n):
        nxt = int(logits[-1, 0].argmax())
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]]), state)
    return out


def generate(args):
    _, _, V = char_data(32, 64)
    model = LanguageModel(V, 64, 256, 2).eval()
    prime = torch.tensor([5, 40, 41, 42])
    sample(model, prime, 20)
    with Timer() as t:
        ids = sample(model, prime, args.steps)
    emit(rate=len(ids) / t.seconds, unit="tokens/s", ids=ids)


def main():
    args = parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    {"lm": lambda: train_lm(args, 64), "readme": lambda: train_lm(args, 32),
     "numpy-head": lambda: train_lm(args, 64, custom_head=True), "seq2seq": lambda: train_seq2seq(args),
     "generate": lambda: generate(args)}[args.program]()


if __name__ == "__main__":
    main()

"""What the rnncore and PyTorch versions of each whole program share: the data, the
weights and the way a run is reported. Pure NumPy: importing this loads neither library,
so each program's process holds only the thread pools of the library it measures."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import time
from pathlib import Path

import numpy as np

UNKNOWN, END = "\ufffd", "\x03"


def corpus_text():
    """The text `python -m rnncore` trains on, found without importing rnncore."""
    spec = importlib.util.find_spec("rnncore")
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "corpus.txt"
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError("rnncore/data/corpus.txt")


def char_data(batch, bptt):
    """The main job's data: ids of the first 95% of the text (vocabulary: unknown, end,
    then the sorted characters), cut into contiguous lanes -> (inputs, targets), each
    [chunks, bptt, batch] int64, and the vocabulary size."""
    text = corpus_text()
    train = text[:int(len(text) * 0.95)]
    chars = [UNKNOWN, END] + sorted(set(train) - {UNKNOWN, END})
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in train], np.int64)
    per_lane = (len(ids) - 1) // batch
    n_chunks = per_lane // bptt
    lanes = ids[:batch * per_lane + 1]
    x = lanes[:batch * per_lane].reshape(batch, per_lane)[:, :n_chunks * bptt]
    y = lanes[1:batch * per_lane + 1].reshape(batch, per_lane)[:, :n_chunks * bptt]
    x = x.reshape(batch, n_chunks, bptt).transpose(1, 2, 0)
    y = y.reshape(batch, n_chunks, bptt).transpose(1, 2, 0)
    return np.ascontiguousarray(x), np.ascontiguousarray(y), len(chars)


def uniform(rng, bound, shape):
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def lm_weights(V, embed, hidden, layers, seed=0, head=True):
    """PyTorch's initialisation, drawn with NumPy, under torch.nn's names:
    embedding.weight, lstm.weight_ih_l{k}, ..., head.weight, head.bias."""
    rng = np.random.default_rng(seed)
    w = {"embedding.weight": rng.standard_normal((V, embed)).astype(np.float32)}
    b = 1 / math.sqrt(hidden)
    for k in range(layers):
        n_in = embed if k == 0 else hidden
        w[f"lstm.weight_ih_l{k}"] = uniform(rng, b, (4 * hidden, n_in))
        w[f"lstm.weight_hh_l{k}"] = uniform(rng, b, (4 * hidden, hidden))
        w[f"lstm.bias_ih_l{k}"] = uniform(rng, b, (4 * hidden,))
        w[f"lstm.bias_hh_l{k}"] = uniform(rng, b, (4 * hidden,))
    if head:
        w["head.weight"] = uniform(rng, b, (V, hidden))
        w["head.bias"] = uniform(rng, b, (V,))
    return w


def seq2seq_weights(hidden, digits=10, seed=0):
    rng = np.random.default_rng(seed)
    b = 1 / math.sqrt(hidden)
    w = {}
    for part, n_in in (("encoder", digits), ("decoder", digits + 1)):
        w[f"{part}.weight_ih_l0"] = uniform(rng, b, (4 * hidden, n_in))
        w[f"{part}.weight_hh_l0"] = uniform(rng, b, (4 * hidden, hidden))
        w[f"{part}.bias_ih_l0"] = uniform(rng, b, (4 * hidden,))
        w[f"{part}.bias_hh_l0"] = uniform(rng, b, (4 * hidden,))
    w["head.weight"] = uniform(rng, b, (digits, hidden))
    w["head.bias"] = uniform(rng, b, (digits,))
    return w


def seq2seq_batches(steps, batch, length, digits=10, seed=0):
    """(src, tgt) pairs [length, batch]: digits and the same digits sorted."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        src = rng.integers(0, digits, (length, batch))
        out.append((src, np.sort(src, axis=0)))
    return out


def parser(doc):
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("program", choices=("lm", "readme", "seq2seq", "generate", "numpy-head"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=40, help="measured steps (tokens for generate)")
    p.add_argument("--warmup", type=int, default=3)
    return p


class Timer:
    """Wall time of the measured part of a run."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def emit(**fields):
    """One JSON line on stdout: what the runner reads."""
    fields["pid"] = os.getpid()
    print(json.dumps(fields), flush=True)

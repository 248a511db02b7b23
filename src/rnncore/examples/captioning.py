"""Image captioning: a convolutional encoder and an LSTM decoder conditioned on the image.

The project the notes build toward (000), and the notes' RNN conditioned on a single
vector (004 section 10.2.4), Show-and-Tell style: the encoder turns an image into a
feature vector, the feature vector becomes the decoder's initial state, and the decoder
generates the caption word by word from a start token until the end token.

Images: 16 x 16 RGB scenes of a 2 x 2 grid whose cells hold 1 to 3 shapes (square,
circle, triangle, cross) in one of four colours, at a jittered position, with pixel
noise, generated here. Caption: the shapes in reading order, e.g. "red circle top left
and blue cross bottom right".

Encoder: a 3 x 3 convolution with 16 filters (``rnncore.Linear`` over the image's
3 x 3 patches) -> ReLU -> 4 x 4 average pooling -> a 256-vector -> ``Linear`` -> the
decoder's initial (h0, c0), h0 through tanh. Decoder: ``Sequential(Embedding, LSTM,
Linear)``. Both are trained together with teacher forcing (the decoder reads the true
previous word); the gradient reaching the decoder's initial state flows back into the
encoder. Decoding: greedy (batched) and beam search (``rnncore.beam_search`` from each
image's state).

The baseline ignores the image: the single caption that is right most often on the
held-out images themselves. No captioner that ignores the image can do better in
expectation (whatever it emits, its chance of an exact match is a mixture of the
held-out captions' frequencies), so it bounds the greedy language-model-only decoder
and any constant caption.

NumPy's own BLAS runs on one thread during the example when threadpoolctl is installed
(``one_blas_thread``): its products here are small.
"""

from __future__ import annotations

import contextlib

import numpy as np

import rnncore
from rnncore.examples._common import parser, report

COLOURS = {"red": (1.0, 0.15, 0.1), "green": (0.1, 0.9, 0.2), "blue": (0.15, 0.3, 1.0), "yellow": (1.0, 0.9, 0.1)}
SHAPES = ("square", "circle", "triangle", "cross")
CELLS = (("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right"))
WORDS = ("<start>", "<end>", "and", *COLOURS, *SHAPES, "top", "bottom", "left", "right")
ID = {w: i for i, w in enumerate(WORDS)}
START, END, V = ID["<start>"], ID["<end>"], len(WORDS)
S, P = 8, 5  # cell size, shape size (pixels)
MAX_LEN = 3 * 4 + 2 + 1  # three shapes of four words, two "and", <end>


def _masks():
    r = np.arange(P)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    c = (P - 1) / 2
    return {
        "square": (yy == 0) | (yy == P - 1) | (xx == 0) | (xx == P - 1),  # an outline
        "circle": (yy - c) ** 2 + (xx - c) ** 2 <= (P / 2) ** 2 - 0.5,
        "triangle": np.abs(xx - c) <= yy / 2 + 0.01,
        "cross": (yy == P // 2) | (xx == P // 2),
    }


MASKS = _masks()


def make_data(rng, n):
    """n images (n, 16, 16, 3) float32 and their captions (lists of word ids, no <end>)."""
    images = rng.normal(0.0, 0.05, (n, 2 * S, 2 * S, 3)).astype(np.float32)
    count = rng.integers(1, 4, n)                                  # shapes per image
    cells = np.argsort(rng.random((n, 4)), axis=1)                 # a random order of the cells
    colour, shape = rng.integers(0, 4, (n, 4)), rng.integers(0, 4, (n, 4))
    offset = rng.integers(0, S - P + 1, (n, 4, 2))
    bright = rng.uniform(0.7, 1.0, (n, 4, 1)) * np.array(list(COLOURS.values()))[colour]
    names, masks = list(COLOURS), [MASKS[s] for s in SHAPES]
    captions = []
    for i in range(n):
        words = []
        for k in np.sort(cells[i, :count[i]]):                     # reading order
            y0, x0 = (k // 2) * S + offset[i, k, 0], (k % 2) * S + offset[i, k, 1]
            images[i, y0:y0 + P, x0:x0 + P][masks[shape[i, k]]] += bright[i, k].astype(np.float32)
            words += (["and"] if words else []) + [names[colour[i, k]], SHAPES[shape[i, k]], *CELLS[k]]
        captions.append([ID[w] for w in words])
    return images, captions


def caption_text(ids):
    return " ".join(WORDS[i] for i in ids if i != END)


def teacher_forcing_batch(captions):
    """Decoder inputs (T, n): <start> and the caption; targets (T, n): the caption and
    <end>, padded with -100 (ignored); lengths (n,)."""
    T = max(len(c) for c in captions) + 1
    n = len(captions)
    inputs = np.full((T, n), END, np.int64)
    targets = np.full((T, n), -100, np.int64)
    for b, c in enumerate(captions):
        inputs[:len(c) + 1, b] = [START] + c
        targets[:len(c) + 1, b] = c + [END]
    return inputs, targets, np.array([len(c) + 1 for c in captions])


class Encoder:
    """Image (n, 16, 16, 3) -> the decoder's initial LSTM state (h0, c0), each (1, n, H)."""

    def __init__(self, hidden, filters=16, seed=0, dtype=np.float32):
        self.conv = rnncore.Linear(27, filters, dtype=dtype, seed=seed)
        self.proj = rnncore.Linear(16 * filters, 2 * hidden, dtype=dtype, seed=seed + 1)
        self.dtype = np.dtype(dtype)
        self.hidden, self.filters = hidden, filters
        self.params = {**{"conv." + k: v for k, v in self.conv.params.items()},
                       **{"proj." + k: v for k, v in self.proj.params.items()}}
        self.grads = {**{"conv." + k: v for k, v in self.conv.grads.items()},
                      **{"proj." + k: v for k, v in self.proj.grads.items()}}

    @staticmethod
    def patches(images):
        """(n, 16, 16, 27): each pixel's 3 x 3 neighbourhood (zero padding), all channels."""
        padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
        h, w = images.shape[1:3]
        return np.concatenate([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=-1)

    def forward(self, images):
        n = len(images)
        z = self.conv.forward(self.patches(images.astype(self.dtype, copy=False)))  # (n, 16, 16, F)
        self._active = z > 0
        a = z * self._active                                                  # ReLU
        pooled = a.reshape(n, 4, 4, 4, 4, self.filters).mean(axis=(2, 4))    # (n, 4, 4, F)
        state = self.proj.forward(pooled.reshape(n, -1))                      # (n, 2H)
        h0 = np.tanh(state[:, :self.hidden])
        self._h0 = h0
        return h0[None].copy(), state[None, :, self.hidden:].copy()

    def backward(self, dstate):
        dh0, dc0 = dstate
        dz = np.concatenate([dh0[0] * (1.0 - self._h0 ** 2), dc0[0]], axis=1)
        dpooled = self.proj.backward(dz)
        n = len(dpooled)
        da = np.broadcast_to(dpooled.reshape(n, 4, 1, 4, 1, self.filters) / 16.0, (n, 4, 4, 4, 4, self.filters))
        self.conv.backward(da.reshape(n, 16, 16, self.filters) * self._active)

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)


class Captioner:
    """The encoder and the decoder, trained together."""

    def __init__(self, hidden=64, embed=16, seed=0, backend=None, dtype=np.float32):
        self.encoder = Encoder(hidden, seed=seed, dtype=dtype)
        self.decoder = rnncore.Sequential(rnncore.Embedding(V, embed, dtype=dtype, seed=seed + 2),
                                          rnncore.LSTM(embed, hidden, dtype=dtype, backend=backend, seed=seed + 3),
                                          rnncore.Linear(hidden, V, dtype=dtype, seed=seed + 4))
        self.params = {**{"enc." + k: v for k, v in self.encoder.params.items()},
                       **{"dec." + k: v for k, v in self.decoder.params.items()}}
        self.grads = {**{"enc." + k: v for k, v in self.encoder.grads.items()},
                      **{"dec." + k: v for k, v in self.decoder.grads.items()}}
        self.xent = rnncore.SoftmaxCrossEntropy()

    def train_step(self, images, captions):
        """One teacher-forced forward and backward; returns the loss (gradients added)."""
        inputs, targets, lengths = teacher_forcing_batch(captions)
        state = self.encoder.forward(images)
        logits, _ = self.decoder.forward(inputs, [state], lengths=lengths)
        loss = self.xent.forward(logits, targets)
        _, dstate = self.decoder.backward(self.xent.backward())
        self.encoder.backward(dstate[0])
        return loss

    def states(self, images):
        with rnncore.no_grad():
            return self.encoder.forward(images)

    def greedy(self, images):
        """Greedy captions of a batch of images (lists of ids, no <end>)."""
        h0, c0 = self.states(images)
        state = [(h0, c0)]
        tok = np.full((1, len(images)), START, np.int64)
        out = np.empty((len(images), MAX_LEN), np.int64)
        with rnncore.no_grad():
            for t in range(MAX_LEN):
                logits, state = self.decoder.forward(tok, state)
                tok = logits.argmax(-1)
                out[:, t] = tok[0]
        return [list(row[:np.argmax(row == END)] if (row == END).any() else row) for row in out]

    def beam(self, images, beam_width=3):
        """Beam-search captions (lists of ids, no <end>), one search per image."""
        h0, c0 = self.states(images)
        out = []
        for i in range(len(images)):
            best, _ = rnncore.beam_search(self.decoder, np.array([START]), MAX_LEN, beam_width=beam_width, end=END,
                                          state=[(h0[:, i:i + 1], c0[:, i:i + 1])])[0]
            out.append([t for t in best.tolist() if t != END])
        return out


def exact_match(pred, truth):
    return float(np.mean([p == t for p, t in zip(pred, truth)]))


def best_constant_caption(truth):
    """(the caption most frequent among ``truth``, its share): the best any captioner
    that ignores the image can score there, in expectation."""
    counts = {}
    for c in truth:
        counts[tuple(c)] = counts.get(tuple(c), 0) + 1
    caption, count = max(counts.items(), key=lambda kv: kv[1])
    return list(caption), count / len(truth)


def one_blas_thread():
    """NumPy's BLAS limited to one thread, when threadpoolctl is installed: the encoder's
    matrix products are small, and two BLAS threads on them only wait for each other (on
    a busy machine, for milliseconds a call). rnncore's own kernels keep their threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def run(steps=2000, seed=0, hidden=64, batch=64, lr=1e-2, n_test=1000, beam_width=3, n_beam=200, backend=None,
        verbose=False):
    with one_blas_thread():
        return _run(steps, seed, hidden, batch, lr, n_test, beam_width, n_beam, backend, verbose)


def _run(steps, seed, hidden, batch, lr, n_test, beam_width, n_beam, backend, verbose):
    rng = np.random.default_rng(seed)
    model = Captioner(hidden=hidden, seed=seed, backend=backend)
    opt = rnncore.Adam(model.params, model.grads, lr=lr)
    for step in range(steps):
        images, captions = make_data(rng, batch)
        opt.zero_grad()
        loss = model.train_step(images, captions)
        rnncore.clip_grad_norm(model.grads, 5.0)
        opt.step()
        if verbose and step % 250 == 0:
            print(f"step {step:5d}  loss {loss:.4f}")
    images, truth = make_data(np.random.default_rng(seed + 10_000), n_test)   # held out: new images
    greedy = model.greedy(images)
    beam = model.beam(images[:n_beam], beam_width)
    constant, constant_acc = best_constant_caption(truth)
    if verbose:
        for i in range(4):
            print(f"  truth: {caption_text(truth[i])}\n  greedy: {caption_text(greedy[i])}\n"
                  f"  beam:   {caption_text(beam[i])}")
        print(f"  best constant caption: {caption_text(constant)}")
    return {"greedy exact match": exact_match(greedy, truth),
            f"beam (width {beam_width}) exact match": exact_match(beam, truth[:n_beam]),
            "greedy exact match on the beam images": exact_match(greedy[:n_beam], truth[:n_beam]),
            "image-blind baseline (best constant caption)": constant_acc}


def main(argv=None):
    p = parser(__doc__, 2000)
    p.add_argument("--beam-width", type=int, default=3)
    args = p.parse_args(argv)
    report("captioning", run(args.steps, args.seed, beam_width=args.beam_width, backend=args.backend,
                             verbose=True))


if __name__ == "__main__":
    main()

"""``python -m rnncore``: train an LSTM language model on a text.

With no arguments it trains a character-level model on a public-domain text that ships
with the package for two to three minutes on two cores: an embedding, a stacked LSTM, a
softmax output layer, truncated BPTT over contiguous batch lanes, Adam with
gradient-norm clipping. Every line of the text ends with an end token, so the model
learns where lines (verses) end and its samples stop there. ``--level word`` trains on
words instead: a vocabulary of the ``--vocab-size`` most frequent words, ``<unk>`` for
the rest and ``<eos>`` at sentence ends.

It shows a progress line (loss, tokens per second), prints samples as it goes, measures
the validation loss every ``--checkpoint-every`` steps and writes a checkpoint (.npz,
loaded without pickle, written atomically) and, beside it, the checkpoint of the best
validation so far (``NAME.best.npz``); ``--patience N`` stops after N evaluations
without improvement. It ends with the validation loss in bits per token (and, for
words, the perplexity) against a unigram baseline, and a loss-curve PNG.

A run never replaces another run's files: if the checkpoint, the best checkpoint or the
plot exists, it refuses to start unless told ``--resume`` (continue that run: the
model, optimizer, step, carried state and early-stopping record are restored, and a
resumed run ends bit for bit where an uninterrupted one would) or ``--overwrite``
(start a new run over it). A bad option or unusable input ends with one line naming
the problem and exit status 2.

Under torchrun (``torchrun --nproc-per-node 2 -m rnncore``) it trains data-parallel: each
process its own lanes of the text, the gradients averaged every step, rank 0 alone
printing, evaluating, sampling and writing files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from importlib import resources

import numpy as np

import rnncore
from rnncore import checkpoint, distributed
from rnncore.text import Vocab, WordVocab, batchify, detokenize, tokenize

PROG = "python -m rnncore"
# the run's configuration, saved in its checkpoint; None here: given by the level
DEFAULTS = dict(level="char", vocab_size=None, hidden=256, layers=2, embed=64, batch=32, bptt=64, steps=2000,
                lr=2e-3, clip=5.0, dropout=0.0, optimizer="adam", seed=0, patience=None)
LEVEL_DEFAULTS = {"char": {}, "word": dict(vocab_size=5000, embed=128, bptt=32, steps=1500, dropout=0.3)}
# what a resumed run may change; the rest is the trained model's and fixed by its checkpoint
RESUMABLE = ("steps", "lr", "clip", "patience")
UNITS = {"char": "char", "word": "word"}


class UsageError(Exception):
    """A bad option or an unusable input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message[len("argument "):] if message.startswith("argument ") else message)


def _integer(low):
    def convert(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {s!r}")
        return v
    return convert


def _real(low, high=math.inf, low_open=False, high_open=False):
    lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
    what = f"a number > {low:g}" if low_open and high == math.inf else (
        f"a number >= {low:g}" if high == math.inf else f"a number in {lo}, {hi}")

    def convert(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        ok = (math.isfinite(v) and (v > low if low_open else v >= low)
              and (v < high if high_open else v <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}")
        return v
    return convert


def build_parser():
    p = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d, w = DEFAULTS, LEVEL_DEFAULTS["word"]
    p.add_argument("--text", help="UTF-8 text file to train on (default: the text shipped with rnncore)")
    p.add_argument("--level", choices=("char", "word"), help="tokens: characters (default) or words")
    p.add_argument("--vocab-size", type=_integer(3), help=f"--level word: words in the vocabulary, <unk> and "
                                                           f"<eos> included (default {w['vocab_size']})")
    p.add_argument("--steps", type=_integer(1), help=f"training steps (default {d['steps']}; words {w['steps']})")
    p.add_argument("--hidden", type=_integer(1), help=f"LSTM hidden size (default {d['hidden']})")
    p.add_argument("--layers", type=_integer(1), help=f"stacked LSTM layers (default {d['layers']})")
    p.add_argument("--embed", type=_integer(1), help=f"embedding size (default {d['embed']}; words {w['embed']})")
    p.add_argument("--batch", type=_integer(1), help=f"parallel lanes of text (default {d['batch']})")
    p.add_argument("--bptt", type=_integer(1), help=f"truncated-BPTT chunk length (default {d['bptt']}; "
                                                     f"words {w['bptt']})")
    p.add_argument("--lr", type=_real(0, low_open=True), help=f"learning rate (default {d['lr']})")
    p.add_argument("--optimizer", choices=("adam", "adagrad"), help="optimizer (default adam)")
    p.add_argument("--clip", type=_real(0, low_open=True),
                   help=f"gradient-norm clipping threshold (default {d['clip']})")
    p.add_argument("--dropout", type=_real(0, 1, high_open=True),
                   help=f"dropout on the embeddings, between LSTM layers and before the output layer "
                        f"(default {d['dropout']:g}; words {w['dropout']:g})")
    p.add_argument("--patience", type=_integer(1), help="stop after this many evaluations without a better "
                                                         "validation loss (default: never)")
    p.add_argument("--seed", type=_integer(0), help="random seed (default 0)")
    p.add_argument("--backend", choices=rnncore.BACKENDS, default=None, help="kernel backend (default native)")
    p.add_argument("--threads", type=_integer(1), default=None, help="kernel threads (default: all CPUs)")
    p.add_argument("--checkpoint", default="rnncore-lm.npz",
                   help="checkpoint file (default rnncore-lm.npz); the best one goes beside it as NAME.best.npz")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run even if --checkpoint, its .best file or --plot exist (replacing them)")
    p.add_argument("--checkpoint-every", type=_integer(1), default=500,
                   help="steps between validations and checkpoints (default 500)")
    p.add_argument("--plot", default="rnncore-loss.png",
                   help="loss-curve PNG (default rnncore-loss.png; '' none; without matplotlib a CSV of the losses)")
    p.add_argument("--export-onnx", metavar="FILE", help="after training, write the model as ONNX to FILE")
    p.add_argument("--sample-every", type=_integer(0), default=600, help="steps between samples (default 600; 0 none)")
    p.add_argument("--sample-length", type=_integer(1), default=300,
                   help="the most tokens per sample (default 300); a sample ends at the end token")
    p.add_argument("--temperature", type=_real(0), default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--prime", default="The ", help='text the samples start from, at a line start (default "The ")')
    p.add_argument("--quiet", action="store_true", help="only the final line")
    return p


def best_path(path):
    """Where the best-validation checkpoint of a run saved at ``path`` goes."""
    root, ext = os.path.splitext(path)
    return f"{root}.best{ext}" if ext else f"{path}.best"


def parse_args(argv):
    """Parse and check the command line; a problem raises UsageError naming the option."""
    args = build_parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise UsageError("--overwrite: --resume continues the run in --checkpoint, --overwrite replaces it; "
                         "give one of them")
    if args.vocab_size is not None and not args.resume and (args.level or DEFAULTS["level"]) == "char":
        raise UsageError("--vocab-size: only for --level word")
    if not args.checkpoint:
        raise UsageError("--checkpoint: expected a file name")
    for opt, path in (("--checkpoint", args.checkpoint), ("--plot", args.plot)):
        if not path:
            continue
        if os.path.isdir(path):
            raise UsageError(f"{opt}: {path} is a directory; expected a file name")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UsageError(f"{opt}: the folder {os.path.dirname(path)} does not exist")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"{opt}: cannot write in {os.path.dirname(path) or '.'}")
    if args.export_onnx:  # checked before training, written after it
        try:
            from rnncore import onnx as rnncore_onnx
            rnncore_onnx._preflight(args.export_onnx)
        except (ImportError, TypeError, ValueError) as exc:
            raise UsageError(f"--export-onnx: {exc}") from None
    args.best = best_path(args.checkpoint)
    if args.plot and os.path.abspath(args.plot) in (os.path.abspath(args.checkpoint), os.path.abspath(args.best)):
        raise UsageError(f"--plot: {args.plot} is also the checkpoint's file name")
    if args.resume:
        if not os.path.exists(args.checkpoint):
            raise UsageError(f"--resume: no checkpoint at {args.checkpoint} (without --resume a new run starts)")
    elif not args.overwrite:
        from rnncore._plotting import written_path
        plot = written_path(args.plot) if args.plot else None   # the CSV when matplotlib is missing
        for opt, path in (("--checkpoint", args.checkpoint), ("--checkpoint", args.best), ("--plot", plot)):
            if path and os.path.exists(path):
                raise UsageError(f"{opt}: {path} exists (another run's); --resume continues that run, "
                                 f"--overwrite replaces it, or give another {opt}")
    return args


def load_text(path):
    """(text, description) of a UTF-8 file, or of the shipped text when path is None."""
    if path is None:
        return resources.files("rnncore.data").joinpath("corpus.txt").read_text(encoding="utf-8"), "shipped text"
    if os.path.isdir(path):
        raise UsageError(f"--text: {path} is a directory; expected a text file")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except FileNotFoundError:
        raise UsageError(f"--text: no such file: {path}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"--text: {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                         f"{e.start})") from None
    except OSError as e:
        raise UsageError(f"--text: cannot read {path}: {e.strerror or e}") from None


def text_digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_text(text, fraction=0.95):
    """(training text, validation text): cut at the line break nearest before ``fraction``
    of the text (at the fraction itself when there is none)."""
    at = int(len(text) * fraction)
    brk = text.rfind("\n", 0, at)
    at = brk + 1 if brk > 0 else at
    return text[:at], text[at:]


def make_vocab(level, train_text, vocab_size):
    if level == "char":
        return Vocab.from_text(train_text.replace("\n", "").replace("\r", ""))
    return WordVocab.from_tokens(tokenize(train_text), vocab_size)


def vocab_tokens(vocab):
    return list(vocab.chars if isinstance(vocab, Vocab) else vocab.words)


def vocab_from_tokens(level, tokens):
    return Vocab(tokens[2:]) if level == "char" else WordVocab(tokens[2:])


def unigram_bits(train_ids, val_ids, V):
    """Cross-entropy of the validation ids, in bits per token, under the training ids'
    unigram distribution (add-one smoothed, so that no token has probability 0)."""
    counts = np.bincount(train_ids, minlength=V).astype(np.float64) + 1.0
    p = counts / counts.sum()
    return float(-np.log2(p[val_ids]).mean()) if len(val_ids) else float("nan")


def validation_batches(ids, batch, bptt):
    """Contiguous lanes over the validation ids for a stateful evaluation: up to ``batch``
    lanes of whole ``bptt`` chunks, or one shorter chunk when the text is short."""
    lanes = max(1, min(batch, (len(ids) - 1) // bptt))
    return batchify(ids, lanes, max(1, min(bptt, (len(ids) - 1) // lanes)))


class LanguageModel:
    """Embedding -> [Dropout] -> stacked LSTM -> [Dropout] -> Linear, and the state of a
    training run (step, carried state, history, early-stopping record)."""

    def __init__(self, cfg, vocab, backend):
        V, s, p = len(vocab), cfg["seed"], cfg["dropout"]
        self.cfg, self.vocab = cfg, vocab
        self.lstm = rnncore.LSTM(cfg["embed"], cfg["hidden"], num_layers=cfg["layers"], dropout=p,
                                 backend=backend, seed=s + 1)
        layers = [rnncore.Embedding(V, cfg["embed"], seed=s, backend=backend)]
        layers += [rnncore.Dropout(p, seed=s + 3)] if p > 0 else []
        layers += [self.lstm]
        layers += [rnncore.Dropout(p, seed=s + 4)] if p > 0 else []
        layers += [rnncore.Linear(cfg["hidden"], V, seed=s + 2, backend=backend)]
        self.model = rnncore.Sequential(*layers)
        opt_cls = rnncore.Adam if cfg["optimizer"] == "adam" else rnncore.Adagrad
        self.opt = opt_cls(self.model.params, self.model.grads, lr=cfg["lr"], backend=backend)
        self.loss = rnncore.SoftmaxCrossEntropy(backend=backend)
        self.backend = backend
        self.step = 0
        self.state = None
        self.history = []  # (step, train bits, val bits or nan)
        self.best_val, self.best_step, self.bad_evals = math.inf, 0, 0
        self.text = {}  # where the training text came from: {"source": path or None, "sha256": ...}
        self.dp = None  # under torchrun: rnncore.distributed.DataParallel(self.model)

    @property
    def unit(self):
        return UNITS[self.cfg["level"]]

    def _rngs(self):
        return [layer.rng for layer in self.model.layers if hasattr(layer, "rng")]

    # --- checkpoints (rnncore.checkpoint: pickle-free, atomic, verified) ----------------
    def save(self, path):
        arrays = {f"param.{k}": v for k, v in self.model.params.items()}
        arrays.update({f"opt.{k}": v for k, v in self.opt.state_dict().items()})
        if self.state is not None:
            h, c = self.state[0]
            arrays["state.h"], arrays["state.c"] = h, c
        arrays["history"] = np.array(self.history, np.float64).reshape(-1, 3)
        meta = dict(kind="rnncore-lm", config=self.cfg, step=self.step, text=self.text,
                    rngs=[r.bit_generator.state for r in self._rngs()],
                    best_val=None if math.isinf(self.best_val) else self.best_val, best_step=self.best_step,
                    bad_evals=self.bad_evals)
        meta["chars" if self.cfg["level"] == "char" else "words"] = vocab_tokens(self.vocab)
        checkpoint.save(path, arrays, meta)

    @classmethod
    def load(cls, path, backend):
        """A run saved by save(); CheckpointError if the file is not one."""
        data, meta = checkpoint.load(path)
        if meta.get("kind") != "rnncore-lm":
            raise checkpoint.CheckpointError(f"{path}: not a language-model checkpoint of {PROG}")
        cfg = {**DEFAULTS, **meta["config"]}  # a checkpoint from before a setting existed has its default
        level = cfg["level"]
        lm = cls(cfg, vocab_from_tokens(level, meta["chars" if level == "char" else "words"]), backend)
        try:
            lm.model.load_state_dict({k[6:]: v for k, v in data.items() if k.startswith("param.")})
            lm.opt.load_state_dict({k[4:]: v for k, v in data.items() if k.startswith("opt.")})
        except (KeyError, ValueError, TypeError) as e:
            raise checkpoint.CheckpointError(f"{path}: does not match its own configuration ({e})") from None
        lm.step = int(meta["step"])
        if "state.h" in data:
            lm.state = [(data["state.h"], data["state.c"])]
        lm.history = [tuple(r) for r in data["history"]]
        for rng, st in zip(lm._rngs(), meta.get("rngs", [meta.get("dropout_rng")])):
            if st is not None:
                rng.bit_generator.state = st
        lm.best_val = math.inf if meta.get("best_val") is None else float(meta["best_val"])
        lm.best_step, lm.bad_evals = int(meta.get("best_step", 0)), int(meta.get("bad_evals", 0))
        lm.text = meta.get("text", {})
        return lm

    # --- training and evaluation -----------------------------------------------------------
    def train_step(self, x, y):
        m = self.model
        if self.dp is not None and self.cfg["dropout"] > 0:  # each rank its own masks, resumable
            for i, layer in enumerate(layer for layer in m.layers if hasattr(layer, "rng")):
                layer.rng = np.random.default_rng([self.cfg["seed"], distributed.rank(), self.step, i])
        m.zero_grad()
        logits, self.state = m.forward(x, self.state)
        loss = self.loss.forward(logits, y)
        m.backward(self.loss.backward())
        if self.dp is not None:  # data parallel: average over every rank's lanes (and the loss)
            (loss,) = self.dp.average_gradients(weight=x.shape[1], values=[loss])
        rnncore.clip_grad_norm(m.grads, self.cfg["clip"], backend=self.backend)
        self.opt.step()
        self.step += 1
        return loss / math.log(2)

    def evaluate(self, inputs, targets):
        """Validation loss in bits per token (the model in eval mode: no dropout)."""
        self.model.eval()
        total, n, state = 0.0, 0, None
        with rnncore.no_grad():
            for x, y in zip(inputs, targets):
                logits, state = self.model.forward(x, state)
                total += self.loss.forward(logits, y) * y.size
                n += y.size
        self.model.train()
        return total / max(n, 1) / math.log(2)

    def prime_ids(self, prime):
        """The ids a sample starts from: the end token (a line or sentence starts after it),
        then the prime's tokens."""
        if isinstance(self.vocab, Vocab):
            ids = self.vocab.encode(prime)
        else:
            ids = self.vocab.encode(tokenize(prime, eos=False))
        return np.concatenate([[self.vocab.END_ID], ids]).astype(np.int64)

    def sample(self, prime, length, temperature, rng):
        """Text sampled after the prime, up to ``length`` tokens or the end token."""
        ids = self.prime_ids(prime)
        self.model.eval()
        out = rnncore.generate(self.model, ids, length, temperature=temperature, rng=rng, end=self.vocab.END_ID)
        self.model.train()
        if isinstance(self.vocab, Vocab):
            return prime + self.vocab.decode(out)
        return detokenize([self.vocab.words[i] for i in np.concatenate([ids[1:], out])], eos="")


def save_checkpoint(lm, path):
    """lm.save(path); data parallel: every rank calls it, the carried state of every
    rank's lanes is gathered, and rank 0 writes."""
    if lm.dp is None:
        return lm.save(path)
    local, lm.state = lm.state, distributed.gather_lanes(lm.state)
    try:
        if distributed.is_main():
            lm.save(path)
    finally:
        lm.state = local


def progress(step, total, bits, rate, unit="char", width=28):
    done = int(width * step / max(total, 1))
    return (f"[{'=' * done}{'>' if done < width else ''}{' ' * max(width - done - 1, 0)}] "
            f"step {step}/{total}  loss {bits:.3f} bits/{unit}  {rate:,.0f} tokens/s")


def configure(args):
    """The run's configuration and model: a new one from the options, or the checkpoint's
    (options that would change a resumed model are refused)."""
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    if args.resume:
        path = distributed.file_from_main(args.checkpoint) if distributed.is_initialized() else args.checkpoint
        if path is None or not os.path.exists(path):
            raise UsageError(f"--resume: no checkpoint at {args.checkpoint}")
        try:
            lm = LanguageModel.load(path, args.backend)
        except checkpoint.CheckpointError as e:
            raise UsageError(f"--resume: {e}") from None
        for key, value in given.items():
            if key not in RESUMABLE and value != lm.cfg[key]:
                raise UsageError(f"--{key.replace('_', '-')}: the run in {args.checkpoint} has "
                                 f"{key.replace('_', '-')} {lm.cfg[key]}; a resumed run keeps it (options a "
                                 f"resumed run may change: {', '.join('--' + k for k in RESUMABLE)})")
        lm.cfg.update({k: v for k, v in given.items() if k in RESUMABLE})
        lm.opt.lr = lm.cfg["lr"]
        return lm.cfg, lm
    level = given.get("level", DEFAULTS["level"])
    return {**DEFAULTS, **LEVEL_DEFAULTS[level], **given}, None


def prepare(args):
    """Load the text and the model; returns (lm, data). Raises UsageError."""
    cfg, lm = configure(args)
    text_path = args.text
    if lm is not None and text_path is None:
        text_path = lm.text.get("source")  # a resumed run continues on its own text
    text, source = load_text(text_path)
    digest = text_digest(text)
    if lm is not None and lm.text.get("sha256") not in (None, digest):
        raise UsageError(f"--text: {source} is not the text the run in {args.checkpoint} was trained on "
                         f"({lm.text.get('source') or 'shipped text'}); a resumed run continues on its own text")
    train_text, val_text = split_text(text)
    if lm is None:
        vocab = make_vocab(cfg["level"], train_text, cfg["vocab_size"])
        lm = LanguageModel(cfg, vocab, args.backend)
        lm.text = {"source": None if args.text is None else os.path.abspath(args.text), "sha256": digest}
    vocab = lm.vocab
    train_ids, val_ids = vocab.encode_text(train_text), vocab.encode_text(val_text)
    need = cfg["batch"] * cfg["bptt"] + 1
    unit = f"{lm.unit}s"
    if len(train_ids) < need:
        raise UsageError(f"--text: {source} gives {len(train_ids):,} training {unit} (95% of it); one batch of "
                         f"--batch {cfg['batch']} x --bptt {cfg['bptt']} needs {need:,} (use a longer text or "
                         f"lower --batch and --bptt)")
    if len(val_ids) < 2:
        raise UsageError(f"--text: {source} leaves {len(val_ids)} validation {unit} (the last 5%); at least 2 "
                         f"are needed")
    inputs, targets = batchify(train_ids, cfg["batch"], cfg["bptt"])
    if distributed.is_initialized():  # this rank's lanes of each batch (and of a resumed carried state)
        try:
            mine = distributed.lanes(cfg["batch"])
        except ValueError as exc:
            raise UsageError(f"--batch: {exc}") from None
        inputs, targets = np.ascontiguousarray(inputs[..., mine]), np.ascontiguousarray(targets[..., mine])
        if lm.state is not None:
            lm.state = [tuple(np.ascontiguousarray(s[:, mine]) for s in lm.state[0])]
        lm.dp = distributed.DataParallel(lm.model)  # rank 0's weights on every rank
    v_inputs, v_targets = validation_batches(val_ids, cfg["batch"], cfg["bptt"])
    data = dict(source=source, chars=len(text), inputs=inputs, targets=targets, v_inputs=v_inputs,
                v_targets=v_targets, baseline=unigram_bits(train_ids, val_ids, len(vocab)),
                train_tokens=len(train_ids), val_tokens=len(val_ids))
    return lm, data


def record_validation(lm, val, args):
    """Note a validation loss in the early-stopping record and write the checkpoint, and
    the best one when it improved. Returns a note for the progress output."""
    if val < lm.best_val:
        lm.best_val, lm.best_step, lm.bad_evals = val, lm.step, 0
        save_checkpoint(lm, args.checkpoint)
        save_checkpoint(lm, args.best)
        return "best so far"
    lm.bad_evals += 1
    save_checkpoint(lm, args.checkpoint)
    note = f"best {lm.best_val:.3f} at step {lm.best_step}"
    if lm.cfg["patience"]:
        note += f"; {lm.bad_evals} of {lm.cfg['patience']} evaluations without improvement"
    return note


def train(lm, data, args, say):
    """The training loop: steps until cfg['steps'] or early stopping. Returns
    (validation bits of the last step, why it stopped, seconds, tokens trained)."""
    cfg = lm.cfg
    inputs, targets = data["inputs"], data["targets"]
    sample_rng = np.random.default_rng(cfg["seed"] + 99)
    tty = sys.stdout.isatty()
    start, start_step, smooth = time.perf_counter(), lm.step, None
    val, why = math.nan, "steps"
    while lm.step < cfg["steps"]:
        if cfg["patience"] and lm.bad_evals >= cfg["patience"]:
            why = "patience"
            break
        k = lm.step % len(inputs)
        if k == 0:
            lm.state = None  # a new pass over the text starts from a zero state
        bits = lm.train_step(inputs[k], targets[k])
        smooth = bits if smooth is None else 0.95 * smooth + 0.05 * bits
        val = math.nan
        evaluate = lm.step % args.checkpoint_every == 0 or lm.step == cfg["steps"]
        if evaluate:
            val = lm.evaluate(data["v_inputs"], data["v_targets"]) if distributed.is_main() else math.nan
            if lm.dp is not None:  # the others wait for rank 0's evaluation, then share its result
                distributed.barrier()
                val = distributed.all_gather_object(val)[0]
        lm.history.append((lm.step, bits, val))
        rate = (lm.step - start_step) * cfg["batch"] * cfg["bptt"] / (time.perf_counter() - start)
        if not args.quiet and (lm.step % 20 == 0 or lm.step == cfg["steps"]):
            line = progress(lm.step, cfg["steps"], smooth, rate, lm.unit)
            print("\r" + line if tty else line, end="" if tty else "\n", flush=True)
        if evaluate:
            note = record_validation(lm, val, args)
            say(("\n" if tty else "") + f"step {lm.step}: validation {val:.3f} bits/{lm.unit} ({note})")
        sample_due = args.sample_every and lm.step % args.sample_every == 0
        if sample_due and not args.quiet:
            say(("\n" if tty else "") + "--- sample ---\n" + lm.sample(args.prime, args.sample_length,
                                                                       args.temperature, sample_rng) + "\n---")
        if lm.dp is not None and sample_due:
            distributed.barrier()  # the other ranks wait here (not in the next all-reduce) for rank 0
    return val, why, time.perf_counter() - start, (lm.step - start_step) * cfg["batch"] * cfg["bptt"]


def write_plot(lm, path, baseline):
    """The loss curve through matplotlib, or a CSV of the losses without it: returns (the
    file written, a one-line note when it is the CSV, else None)."""
    from rnncore import _plotting
    return _plotting.loss_curve(path, lm.history, baseline, lm.step, title=f"{lm.cfg['level']}-level LSTM",
                                unit=lm.unit)


def run(args):
    """Train as the options say; returns the final line (None on the ranks other than 0 of
    a data-parallel run)."""
    try:
        ddp = distributed.init()  # under torchrun: data parallel, this process one rank of several
    except (ImportError, distributed.DistributedError) as exc:
        raise UsageError(f"torchrun: {exc}") from None
    try:
        return _run(args, ddp)
    finally:
        if ddp:
            distributed.shutdown()


def _run(args, ddp):
    main_rank = distributed.is_main()  # rank 0 alone prints, evaluates, samples and writes files
    if ddp:
        args.threads = args.threads or distributed.default_threads()
        args.quiet = args.quiet or not main_rank
    if args.threads:
        rnncore.set_num_threads(args.threads)
    say = (lambda *a, **k: None) if args.quiet else print
    lm, data = prepare(args)
    cfg, unit = lm.cfg, lm.unit
    say(f"rnncore {rnncore.__version__}: {cfg['level']}-level LSTM on {data['source']}: {data['chars']:,} "
        f"characters, {data['train_tokens']:,} training and {data['val_tokens']:,} validation {unit}s, "
        f"vocabulary {len(lm.vocab):,}, {cfg['layers']}x{cfg['hidden']} LSTM, batch {cfg['batch']} x "
        f"{cfg['bptt']} steps, backend {lm.lstm.backend}, {rnncore.get_num_threads()} thread(s)"
        + (f" x {distributed.world_size()} processes (data parallel)" if ddp else ""))
    say(f"unigram baseline {data['baseline']:.3f} bits/{unit}")
    val, why, elapsed, tokens = train(lm, data, args, say)
    if not main_rank:
        return None
    if math.isnan(val):  # nothing was trained: a resumed run that had already ended
        val = lm.evaluate(data["v_inputs"], data["v_targets"])
    plot_file = plot_note = None
    if args.plot:
        plot_file, plot_note = write_plot(lm, args.plot, data["baseline"])
        if plot_note:
            say(plot_note)
    if args.export_onnx:
        from rnncore import onnx as rnncore_onnx
        rnncore_onnx.export(lm.model, args.export_onnx, initial_state=True,
                            metadata={"vocabulary": json.dumps(vocab_tokens(lm.vocab)), "level": cfg["level"]})
        say(f"ONNX model {args.export_onnx}: inputs ids, h0, c0; outputs y (logits), h_n, c_n; "
            f"the vocabulary (JSON, index = id) in its metadata")
    base = data["baseline"]
    if cfg["level"] == "char":
        head = f"validation {val:.3f} bits/char (unigram baseline {base:.3f})"
    else:
        head = (f"validation {val:.3f} bits/word = perplexity {2 ** val:.1f} (unigram baseline {base:.3f} "
                f"bits/word = perplexity {2 ** base:.1f})")
    stop = f" (stopped early: {cfg['patience']} evaluations without improvement)" if why == "patience" else ""
    return (f"{head} after {lm.step} steps{stop}; best {lm.best_val:.3f} at step {lm.best_step}; "
            f"{elapsed:.1f} s, {tokens / max(elapsed, 1e-9):,.0f} tokens/s; checkpoint {args.checkpoint}, "
            f"best {args.best}" + (f", {'loss history' if plot_note else 'plot'} {plot_file}" if args.plot else "")
            + (f", ONNX {args.export_onnx}" if args.export_onnx else ""))


def main(argv=None):
    """The command line: exit status 0, 2 for a bad option or input, 130 when interrupted."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        line = run(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; the last checkpoint written is kept (--resume continues from it)",
              file=sys.stderr)
        raise SystemExit(130) from None
    if line is not None:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

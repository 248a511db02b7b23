"""``python -m rnncore``: train a character-level LSTM language model.

With no arguments it trains on a public-domain text that ships with the package for
two to three minutes on two cores: an embedding, a stacked LSTM, a softmax output layer,
truncated BPTT over contiguous batch lanes, Adam with gradient-norm clipping. It shows a
progress line (loss, tokens per second), prints samples as it goes, writes a checkpoint
(.npz, loaded without pickle, written atomically) and a loss-curve PNG, and ends with
the validation loss in bits per character against the unigram baseline.

Under torchrun (``torchrun --nproc-per-node 2 -m rnncore``) it trains data-parallel: each
process its own lanes of the text, the gradients averaged every step, rank 0 alone printing
and writing files.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from importlib import resources

import numpy as np

import rnncore
from rnncore import checkpoint, distributed
from rnncore.text import Vocab, batchify

DEFAULTS = dict(hidden=256, layers=2, embed=64, batch=32, bptt=64, steps=2000, lr=2e-3, clip=5.0, dropout=0.0,
                optimizer="adam", seed=0)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m rnncore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", help="UTF-8 text file to train on (default: the text shipped with rnncore)")
    p.add_argument("--steps", type=int, help=f"training steps (default {DEFAULTS['steps']})")
    p.add_argument("--hidden", type=int, help=f"LSTM hidden size (default {DEFAULTS['hidden']})")
    p.add_argument("--layers", type=int, help=f"stacked LSTM layers (default {DEFAULTS['layers']})")
    p.add_argument("--embed", type=int, help=f"character embedding size (default {DEFAULTS['embed']})")
    p.add_argument("--batch", type=int, help=f"parallel lanes of text (default {DEFAULTS['batch']})")
    p.add_argument("--bptt", type=int, help=f"truncated-BPTT chunk length (default {DEFAULTS['bptt']})")
    p.add_argument("--lr", type=float, help=f"learning rate (default {DEFAULTS['lr']})")
    p.add_argument("--optimizer", choices=("adam", "adagrad"), help="optimizer (default adam)")
    p.add_argument("--clip", type=float, help=f"gradient-norm clipping threshold (default {DEFAULTS['clip']})")
    p.add_argument("--dropout", type=float, help="dropout between LSTM layers (default 0)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--backend", choices=rnncore.BACKENDS, default=None, help="kernel backend (default native)")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    p.add_argument("--checkpoint", default="rnncore-lm.npz", help="checkpoint file (default rnncore-lm.npz)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--plot", default="rnncore-loss.png", help="loss-curve PNG (default rnncore-loss.png)")
    p.add_argument("--sample-every", type=int, default=600, help="steps between samples (default 600)")
    p.add_argument("--sample-length", type=int, default=300, help="characters per sample (default 300)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--prime", default="The ", help='text the samples start from (default "The ")')
    p.add_argument("--quiet", action="store_true", help="only the final line")
    return p.parse_args(argv)


def load_text(path):
    if path is None:
        return resources.files("rnncore.data").joinpath("corpus.txt").read_text(encoding="utf-8"), "shipped text"
    with open(path, encoding="utf-8") as f:
        return f.read(), path


def unigram_bits(ids, V):
    p = np.bincount(ids, minlength=V) / max(len(ids), 1)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


class LanguageModel:
    """Embedding -> stacked LSTM -> Linear, and the state of a training run."""

    def __init__(self, cfg, vocab, backend):
        V, s = len(vocab), cfg["seed"]
        self.cfg, self.vocab = cfg, vocab
        self.model = rnncore.Sequential(
            rnncore.Embedding(V, cfg["embed"], seed=s),
            rnncore.LSTM(cfg["embed"], cfg["hidden"], num_layers=cfg["layers"], dropout=cfg["dropout"],
                         backend=backend, seed=s + 1),
            rnncore.Linear(cfg["hidden"], V, seed=s + 2))
        opt_cls = rnncore.Adam if cfg["optimizer"] == "adam" else rnncore.Adagrad
        self.opt = opt_cls(self.model.params, self.model.grads, lr=cfg["lr"])
        self.loss = rnncore.SoftmaxCrossEntropy()
        self.step = 0
        self.state = None
        self.history = []  # (step, train bits, val bits or nan)
        self.dp = None  # under torchrun: rnncore.distributed.DataParallel(self.model)

    # --- checkpoints (rnncore.checkpoint: pickle-free, atomic, verified) ----------------
    def save(self, path):
        arrays = {f"param.{k}": v for k, v in self.model.params.items()}
        arrays.update({f"opt.{k}": v for k, v in self.opt.state_dict().items()})
        if self.state is not None:
            h, c = self.state[0]
            arrays["state.h"], arrays["state.c"] = h, c
        arrays["history"] = np.array(self.history, np.float64).reshape(-1, 3)
        meta = dict(kind="rnncore-lm", config=self.cfg, chars=self.vocab.chars, step=self.step,
                    dropout_rng=self.model[1].rng.bit_generator.state)
        checkpoint.save(path, arrays, meta)

    @classmethod
    def load(cls, path, backend):
        data, meta = checkpoint.load(path)
        if meta.get("kind") != "rnncore-lm":
            raise checkpoint.CheckpointError(f"{path}: not a language-model checkpoint of python -m rnncore")
        lm = cls(meta["config"], Vocab(meta["chars"][2:]), backend)
        lm.model.load_state_dict({k[6:]: v for k, v in data.items() if k.startswith("param.")})
        lm.opt.load_state_dict({k[4:]: v for k, v in data.items() if k.startswith("opt.")})
        lm.step = int(meta["step"])
        if "state.h" in data:
            lm.state = [(data["state.h"], data["state.c"])]
        lm.history = [tuple(r) for r in data["history"]]
        lm.model[1].rng.bit_generator.state = meta["dropout_rng"]
        return lm

    # --- training and evaluation -----------------------------------------------------------
    def train_step(self, x, y):
        m = self.model
        if self.dp is not None and self.cfg["dropout"] > 0:  # each rank its own masks, resumable
            m[1].rng = np.random.default_rng([self.cfg["seed"], distributed.rank(), self.step])
        m.zero_grad()
        logits, self.state = m.forward(x, self.state)
        loss = self.loss.forward(logits, y)
        m.backward(self.loss.backward())
        if self.dp is not None:  # data parallel: average over every rank's lanes (and the loss)
            (loss,) = self.dp.average_gradients(weight=x.shape[1], values=[loss])
        rnncore.clip_grad_norm(m.grads, self.cfg["clip"])
        self.opt.step()
        self.step += 1
        return loss / math.log(2)

    def evaluate(self, inputs, targets):
        self.model.eval()
        total, n, state = 0.0, 0, None
        with rnncore.no_grad():
            for x, y in zip(inputs, targets):
                logits, state = self.model.forward(x, state)
                total += self.loss.forward(logits, y) * y.size
                n += y.size
        self.model.train()
        return total / max(n, 1) / math.log(2)

    def sample(self, prime, length, temperature, rng):
        ids = self.vocab.encode(prime)
        if ids.size == 0:
            ids = np.array([self.vocab.index.get(" ", 2)], np.int32)
        self.model.eval()
        out = rnncore.generate(self.model, ids, length, temperature=temperature, rng=rng, end=Vocab.END_ID)
        self.model.train()
        return prime + self.vocab.decode(out)


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


def progress(step, total, bits, rate, width=28):
    done = int(width * step / max(total, 1))
    return (f"[{'=' * done}{'>' if done < width else ''}{' ' * max(width - done - 1, 0)}] "
            f"step {step}/{total}  loss {bits:.3f} bits/char  {rate:,.0f} tokens/s")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        ddp = distributed.init()  # under torchrun: data parallel, this process one rank of several
    except (ImportError, distributed.DistributedError) as exc:
        raise SystemExit(f"python -m rnncore: {exc}") from None
    main_rank = distributed.is_main()  # rank 0 alone prints, evaluates, samples and writes files
    if ddp:
        args.threads = args.threads or distributed.default_threads()
        args.quiet = args.quiet or not main_rank
    if args.threads:
        rnncore.set_num_threads(args.threads)
    say = (lambda *a, **k: None) if args.quiet else print
    if args.resume:
        path = distributed.file_from_main(args.checkpoint) if ddp else args.checkpoint
        if path is None or not os.path.exists(path):
            raise SystemExit(f"--resume: no checkpoint at {args.checkpoint}")
        lm = LanguageModel.load(path, args.backend)
        cfg = lm.cfg
        for key in DEFAULTS:  # options given now override the saved ones where they can
            if getattr(args, key, None) is not None and key in ("steps", "lr", "clip"):
                cfg[key] = getattr(args, key)
        lm.opt.lr = cfg["lr"]
    else:
        cfg = {k: (getattr(args, k) if getattr(args, k, None) is not None else v) for k, v in DEFAULTS.items()}
    text, source = load_text(args.text)
    split = int(len(text) * 0.95)
    if not args.resume:
        lm = LanguageModel(cfg, Vocab.from_text(text[:split]), args.backend)
    vocab = lm.vocab
    train_ids, val_ids = vocab.encode(text[:split]), vocab.encode(text[split:], end=True)
    inputs, targets = batchify(train_ids, cfg["batch"], cfg["bptt"])
    if ddp:  # this rank's lanes of each batch (and of a resumed carried state); rank 0's weights
        try:
            mine = distributed.lanes(cfg["batch"])
        except ValueError as exc:
            raise SystemExit(f"--batch: {exc}") from None
        inputs, targets = np.ascontiguousarray(inputs[..., mine]), np.ascontiguousarray(targets[..., mine])
        if lm.state is not None:
            lm.state = [tuple(np.ascontiguousarray(s[:, mine]) for s in lm.state[0])]
        lm.dp = distributed.DataParallel(lm.model)
    v_inputs, v_targets = batchify(val_ids, max(1, min(cfg["batch"], len(val_ids) // (cfg["bptt"] + 1))), cfg["bptt"])
    baseline = unigram_bits(train_ids, len(vocab))
    say(f"rnncore {rnncore.__version__}: character LSTM on {source}: {len(text):,} characters, "
        f"vocabulary {len(vocab)}, {cfg['layers']}x{cfg['hidden']} LSTM, batch {cfg['batch']} x {cfg['bptt']} steps, "
        f"backend {lm.model[1].backend}, {rnncore.get_num_threads()} thread(s)"
        + (f" x {distributed.world_size()} processes (data parallel)" if ddp else ""))
    say(f"unigram baseline {baseline:.3f} bits/char")
    sample_rng = np.random.default_rng(cfg["seed"] + 99)
    tty = sys.stdout.isatty()
    start, start_step, smooth = time.perf_counter(), lm.step, None
    while lm.step < cfg["steps"]:
        k = lm.step % len(inputs)
        if k == 0:
            lm.state = None  # a new pass over the text starts from a zero state
        bits = lm.train_step(inputs[k], targets[k])
        smooth = bits if smooth is None else 0.95 * smooth + 0.05 * bits
        val = float("nan")
        due = lm.step % args.checkpoint_every == 0 or lm.step == cfg["steps"]
        if due and main_rank:
            val = lm.evaluate(v_inputs, v_targets)
        lm.history.append((lm.step, bits, val))
        rate = (lm.step - start_step) * cfg["batch"] * cfg["bptt"] / (time.perf_counter() - start)
        if not args.quiet and (lm.step % 20 == 0 or lm.step == cfg["steps"]):
            line = progress(lm.step, cfg["steps"], smooth, rate)
            print("\r" + line if tty else line, end="" if tty else "\n", flush=True)
        if due:
            say(("\n" if tty else "") + f"step {lm.step}: validation {val:.3f} bits/char")
            save_checkpoint(lm, args.checkpoint)
        sample_due = args.sample_every and lm.step % args.sample_every == 0
        if sample_due and not args.quiet:
            say(("\n" if tty else "") + "--- sample ---\n" + lm.sample(args.prime, args.sample_length,
                                                                       args.temperature, sample_rng) + "\n---")
        if ddp and (due or sample_due):
            distributed.barrier()  # the other ranks wait here (not in the next all-reduce) for rank 0
    elapsed = time.perf_counter() - start
    save_checkpoint(lm, args.checkpoint)
    if not main_rank:
        distributed.shutdown()
        return 0
    val = lm.evaluate(v_inputs, v_targets)
    if args.plot:
        from rnncore.plot import line_plot
        hist = np.array(lm.history, np.float64).reshape(-1, 3)
        series = {}
        if len(hist):
            w = max(1, len(hist) // 100)
            smoothed = np.convolve(hist[:, 1], np.ones(w) / w, mode="valid")
            series["train"] = (hist[w - 1:, 0], smoothed)
            ok = ~np.isnan(hist[:, 2])
            series["validation"] = (hist[ok, 0], hist[ok, 2])
        series["unigram"] = ([0, max(lm.step, 1)], [baseline, baseline])
        line_plot(args.plot, series, title="character LSTM", xlabel="step", ylabel="bits per character")
    tokens = (lm.step - start_step) * cfg["batch"] * cfg["bptt"]
    print(f"validation {val:.3f} bits/char (unigram baseline {baseline:.3f}) after {lm.step} steps; "
          f"{elapsed:.1f} s, {tokens / max(elapsed, 1e-9):,.0f} tokens/s; checkpoint {args.checkpoint}"
          + (f", plot {args.plot}" if args.plot else ""))
    if ddp:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

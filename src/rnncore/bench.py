"""``python -m rnncore.bench``: native vs the NumPy reference vs PyTorch (when installed).

For each cell (Elman RNN, LSTM, GRU) and shape (T, B, I, H) it times a training step
(forward + backward with every gradient, dx included) and an inference forward, after
checking that the implementations agree on the same weights and inputs. Variable-length
cases draw lengths uniformly from [T/2, T]; PyTorch then runs packed sequences. With
``--step`` it times one step of the cells (RNNCell, LSTMCell, GRUCell) instead.

All implementations run with the same thread count (``--threads``) in one process,
alternating in blocks of calls, and the median of ``--repeats`` samples is reported (a sample
is one call, or the mean of enough back-to-back calls to last 5 ms). GFLOP/s counts the GEMM
work of the cell (forward 2*T*B*G*H*(I+H), training three times that) and is compared
with this machine's SGEMM rate measured at the start of the run.

For stable numbers unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (old-OpenBLAS tuning
that slows a current OpenBLAS) and keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import numpy as np

import rnncore
from rnncore import _core

GRID = [(50, 1, 32, 64), (100, 16, 128, 128), (100, 32, 256, 256), (100, 64, 512, 512),
        (50, 64, 1024, 1024)]
# One-step cells (--step): T = 1, B in 1, 16, 64, I = H in 64, 256, 512.
STEP_GRID = [(1, B, H, H) for B in (1, 16, 64) for H in (64, 256, 512)]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LAYERS = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU}
CELLS = {"rnn": rnncore.RNNCell, "lstm": rnncore.LSTMCell, "gru": rnncore.GRUCell}


def flops(kind, T, B, I, H, mode):
    f = 2.0 * T * B * GATES[kind] * H * (I + H)
    return 3 * f if mode == "train" else f


def blas_info():
    """The BLAS libraries in this process and the kernels they use (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"({i.get('prefix')}, {i.get('num_threads')} threads)" for i in threadpool_info())


def limit_threads(n):
    """Pin every thread pool in the process to n threads."""
    _core.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(n)
    except ImportError:
        return contextlib.nullcontext()


def sgemm_rate(repeats=7):
    """GFLOP/s of a large float32 matrix product (NumPy's BLAS), median of repeats."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2.0 * n ** 3 / np.median(times) / 1e9


class Case:
    """One cell, shape and mode, with an implementation per backend on shared weights."""

    def __init__(self, kind, T, B, I, H, mode, varlen, rng):
        self.kind, self.T, self.B, self.I, self.H, self.mode, self.varlen = kind, T, B, I, H, mode, varlen
        self.layer = {b: LAYERS[kind](I, H, backend=b, seed=0) for b in ("native", "reference")}
        self.x = rng.standard_normal((T, B, I)).astype(np.float32)
        self.dy = rng.standard_normal((T, B, H)).astype(np.float32)
        self.lengths = None
        if varlen:
            self.lengths = rng.integers(max(T // 2, 1), T + 1, size=B)
            self.lengths[0] = T
        self.torch = None

    def run_ours(self, backend):
        layer = self.layer[backend]
        if self.mode == "infer":
            with rnncore.no_grad():
                return layer.forward(self.x, None, self.lengths)[0], None
        layer.zero_grad()
        y, _ = layer.forward(self.x, None, self.lengths)
        dx, _ = layer.backward(self.dy)
        return y, (dx, layer.grads["weight_hh_l0"])

    def setup_torch(self, torch):
        self.torch = torch
        mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[self.kind](self.I, self.H)
        mod.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.layer["native"].state_dict().items()})
        self.tmod = mod
        self.tx = torch.from_numpy(self.x)
        self.tdy = torch.from_numpy(self.dy)
        self.tlengths = None if self.lengths is None else torch.from_numpy(self.lengths)

    def run_torch(self):
        torch = self.torch
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        def forward(x):
            if self.tlengths is None:
                return self.tmod(x)[0]
            packed = pack_padded_sequence(x, self.tlengths, enforce_sorted=False)
            return pad_packed_sequence(self.tmod(packed)[0], total_length=self.T)[0]

        if self.mode == "infer":
            with torch.no_grad():
                return forward(self.tx).numpy(), None
        for p in self.tmod.parameters():
            p.grad = None
        x = self.tx.detach().requires_grad_(True)
        y = forward(x)
        y.backward(self.tdy)
        return y.detach().numpy(), (x.grad.numpy(), self.tmod.weight_hh_l0.grad.numpy())

    def check(self, impls):
        """Outputs and gradients of every implementation agree with native."""
        want = self.run_ours("native")
        for name in impls:
            if name == "native":
                continue
            got = self.run_torch() if name == "torch" else self.run_ours(name)
            pairs = [(got[0], want[0])] + ([] if got[1] is None else list(zip(got[1], want[1])))
            for a, b in pairs:
                err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)
                if not err < 1e-3:
                    raise AssertionError(f"{self.label()}: {name} disagrees with native "
                                         f"(relative error {err:.2g})")

    def label(self):
        return f"{self.kind} {self.mode} T={self.T} B={self.B} I={self.I} H={self.H}" + (
            " varlen" if self.varlen else "")


class CellCase(Case):
    """One step of a cell (rnncore.RNNCell/LSTMCell/GRUCell against torch.nn's), from a
    non-zero state: inference is the step under no_grad, training the step and its
    backward with every gradient."""

    def __init__(self, kind, T, B, I, H, mode, varlen, rng):
        self.kind, self.T, self.B, self.I, self.H, self.mode, self.varlen = kind, 1, B, I, H, mode, False
        self.layer = {b: CELLS[kind](I, H, backend=b, seed=0) for b in ("native", "reference")}
        self.x = rng.standard_normal((B, I)).astype(np.float32)
        self.h = rng.standard_normal((B, H)).astype(np.float32)
        self.dh = rng.standard_normal((B, H)).astype(np.float32)
        self.lengths = None
        self.torch = None

    def _pair(self, a):
        return (a, a) if self.kind == "lstm" else a

    def run_ours(self, backend):
        cell = self.layer[backend]
        if self.mode == "infer":
            with rnncore.no_grad():
                out = cell.forward(self.x, self._pair(self.h))
            return (out[0] if self.kind == "lstm" else out), None
        cell.zero_grad()
        out = cell.forward(self.x, self._pair(self.h))
        dx, _ = cell.backward(self._pair(self.dh))
        return (out[0] if self.kind == "lstm" else out), (dx, cell.grads["weight_hh"])

    def setup_torch(self, torch):
        self.torch = torch
        mod = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[self.kind](self.I, self.H)
        mod.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.layer["native"].state_dict().items()})
        self.tmod = mod
        self.tx = torch.from_numpy(self.x)
        self.th = torch.from_numpy(self.h)
        self.tdh = torch.from_numpy(self.dh)

    def run_torch(self):
        torch = self.torch
        if self.mode == "infer":
            with torch.no_grad():
                out = self.tmod(self.tx, self._pair(self.th))
            return (out[0] if self.kind == "lstm" else out).numpy(), None
        for p in self.tmod.parameters():
            p.grad = None
        x = self.tx.detach().requires_grad_(True)
        out = self.tmod(x, self._pair(self.th))
        torch.autograd.backward(out, self._pair(self.tdh))
        h = out[0] if self.kind == "lstm" else out
        return h.detach().numpy(), (x.grad.numpy(), self.tmod.weight_hh.grad.numpy())

    def label(self):
        return f"{self.kind} cell {self.mode} B={self.B} I={self.I} H={self.H}"


def measure(case, impls, repeats, rounds=3, min_sample=0.005):
    """Median seconds per call for each implementation.

    Implementations alternate in blocks of calls (rounds x blocks of repeats/rounds), not
    call by call: after each call PyTorch's OpenMP workers and NumPy's OpenBLAS workers
    keep spinning on the cores (OpenBLAS's for up to ~0.1 s), which would tax whatever
    runs next; each block starts after a pause that lets them go to sleep. A sample is
    the mean of enough back-to-back calls to last min_sample seconds (one call for
    anything slower), so that calls of a few microseconds are timed as they run in a
    loop, not each straight after a pause and a clock read."""
    fns = {"native": lambda: case.run_ours("native"), "reference": lambda: case.run_ours("reference"),
           "torch": case.run_torch}
    return measure_calls({name: fns[name] for name in impls}, repeats, rounds, min_sample)


def measure_calls(fns, repeats, rounds=3, min_sample=0.005):
    """``measure`` for any named functions: median seconds per call of each."""
    impls = list(fns)
    times = {name: [] for name in impls}
    inner = {}
    for name in impls:
        fns[name]()
        t = time.perf_counter()
        fns[name]()
        inner[name] = max(1, math.ceil(min_sample / max(time.perf_counter() - t, 1e-9)))
    per_block = max(1, -(-repeats // rounds))
    for _ in range(rounds):
        for name in impls:
            time.sleep(0.25)  # idle BLAS/OpenMP workers of the previous library go to sleep
            fns[name]()  # warm caches and buffers
            for _ in range(per_block):
                t = time.perf_counter()
                for _ in range(inner[name]):
                    fns[name]()
                times[name].append((time.perf_counter() - t) / inner[name])
    return {name: float(np.median(v)) for name, v in times.items()}


def run(kinds, modes, shapes, varlen_kinds, threads, repeats, with_reference, with_torch, out=sys.stdout,
        step=False):
    torch = None
    if with_torch:
        try:
            import torch
        except ImportError:
            torch = None
    rng = np.random.default_rng(0)
    with limit_threads(threads):
        if torch is not None:
            torch.set_num_threads(threads)
        rate = sgemm_rate()
        impls = ["native"] + (["torch"] if torch is not None else []) + (["reference"] if with_reference else [])
        print(f"rnncore {rnncore.__version__}, {threads} thread(s), kernels {_core.kernel_isa()}; "
              f"SGEMM {rate:.0f} GFLOP/s (2048^3, NumPy)", file=out)
        if torch is not None:
            print(f"torch {torch.__version__}", file=out)
        print(f"BLAS: {blas_info()}", file=out)
        header = (f"| {'cell (one step)' if step else 'cell'} | mode | T, B, I, H | native ms | GFLOP/s | % SGEMM |"
                  + (" torch ms | torch / native |" if torch is not None else "")
                  + (" reference ms | reference / native |" if with_reference else ""))
        print(header, file=out)
        print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|", file=out)
        results = []
        cases = [(k, m, s, False) for k in kinds for m in modes for s in shapes]
        if not step:
            cases += [(k, m, s, True) for k in varlen_kinds for m in modes for s in shapes]
        for kind, mode, (T, B, I, H), varlen in cases:
            case = (CellCase if step else Case)(kind, T, B, I, H, mode, varlen, rng)
            if torch is not None:
                case.setup_torch(torch)
            case.check(impls)
            stats0 = _core._parallel_stats()
            t = measure(case, impls, repeats)
            stats1 = _core._parallel_stats()
            f = flops(kind, T, B, I, H, mode)
            gf = f / t["native"] / 1e9
            row = (f"| {kind}{' varlen' if varlen else ''} | {mode} | {T}, {B}, {I}, {H} | "
                   f"{t['native'] * 1e3:.3g} | {gf:.0f} | {100 * gf / rate:.0f} |")
            if "torch" in t:
                row += f" {t['torch'] * 1e3:.3g} | {t['torch'] / t['native']:.2f} |"
            if "reference" in t:
                row += f" {t['reference'] * 1e3:.3g} | {t['reference'] / t['native']:.1f} |"
            if os.environ.get("RNNCORE_BENCH_DEBUG"):
                row += f" threaded calls {stats1[0] - stats0[0]}, solo {stats1[1] - stats0[1]}"
            print(row, file=out, flush=True)
            results.append(dict(kind=kind, mode=mode, shape=(T, B, I, H), varlen=varlen, rate=rate, **t))
        if torch is not None:
            for mode in modes:
                ratios = [r["torch"] / r["native"] for r in results if r["mode"] == mode and not r["varlen"]]
                if ratios:
                    print(f"{mode}: geometric mean torch / native over the grid "
                          f"{math.exp(np.mean(np.log(ratios))):.2f}, min {min(ratios):.2f}", file=out)
        return results


# --options: each option's training step against the plain layer's (same cell and shape)
OPTIONS = {
    "weight_drop=0.25": ("rnn,lstm,gru", {"weight_drop": 0.25}),
    "checkpoint_every=10": ("rnn,lstm,gru", {"checkpoint_every": 10}),
    "proj_size=H/2": ("lstm", {"proj_size": 0.5}),  # a fraction of H: less work than the plain cell
    "zoneout=0.1": ("rnn,lstm,gru", {"zoneout": 0.1}),
    "recurrent_dropout=0.25": ("rnn,lstm,gru", {"recurrent_dropout": 0.25}),
    "layer_norm=True": ("lstm,gru", {"layer_norm": True}),
}


def run_options(kinds, shape, threads, repeats, out=sys.stdout):
    """Times a training step (forward + backward) of each option in OPTIONS against the
    plain layer, both native, alternating in blocks as ``measure`` does."""
    T, B, I, H = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    results = []
    with limit_threads(threads):
        print(f"rnncore {rnncore.__version__}, {threads} thread(s), kernels {_core.kernel_isa()}; "
              f"BLAS: {blas_info()}", file=out)
        print(f"training step, T, B, I, H = {T}, {B}, {I}, {H}, float32", file=out)
        print("| cell | option | plain ms | option ms | option / plain |", file=out)
        print("|---|---|---|---|---|", file=out)
        for kind in kinds:
            for label, (cells, kwargs) in OPTIONS.items():
                if kind not in cells.split(","):
                    continue
                plain = LAYERS[kind](I, H, seed=0)
                kwargs = {k: int(v * H) if isinstance(v, float) and k == "proj_size" else v for k, v in kwargs.items()}
                layer = LAYERS[kind](I, H, seed=0, **kwargs)

                def step(m):
                    m.zero_grad()
                    y, _ = m.forward(x)
                    m.backward(np.ones_like(y))

                t = measure_calls({"plain": lambda: step(plain), "option": lambda: step(layer)}, repeats)
                print(f"| {kind} | {label} | {t['plain'] * 1e3:.3g} | {t['option'] * 1e3:.3g} | "
                      f"{t['option'] / t['plain']:.2f} |", file=out, flush=True)
                results.append(dict(kind=kind, label=label, plain=t["plain"], option=t["option"]))
    return results


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rnncore.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="threads for every implementation (default 1)")
    p.add_argument("--repeats", type=int, default=7, help="timed calls per implementation (default 7)")
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated: rnn,lstm,gru")
    p.add_argument("--modes", default="train,infer", help="comma-separated: train,infer")
    p.add_argument("--shapes", default=None,
                   help="semicolon-separated T,B,I,H (default: the grid "
                        + "; ".join(",".join(map(str, s)) for s in GRID) + ")")
    p.add_argument("--varlen", default="lstm,gru", help="cells also timed with variable lengths ('' for none)")
    p.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--step", action="store_true",
                   help="time one step of the cells (RNNCell, LSTMCell, GRUCell) over B in 1,16,64 and "
                        "I = H in 64,256,512 (shapes given must have T = 1)")
    p.add_argument("--options", action="store_true",
                   help="time each layer option's training step against the plain layer's at T, B, I, H = "
                        "100, 32, 256, 256 (or the one --shapes shape): " + ", ".join(OPTIONS))
    args = p.parse_args(argv)
    if args.options:
        shapes = [(100, 32, 256, 256)] if args.shapes is None else [tuple(int(v) for v in s.split(","))
                                                                    for s in args.shapes.split(";")]
        if len(shapes) != 1 or len(shapes[0]) != 4:
            p.error("--options: give one T,B,I,H shape")
        run_options([c for c in args.cells.split(",") if c], shapes[0], args.threads, args.repeats)
        return 0
    default = STEP_GRID if args.step else GRID
    shapes = default if args.shapes is None else [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    if args.step and any(s[0] != 1 for s in shapes):
        p.error("--step: a cell takes one step, so every shape needs T = 1")
    run([c for c in args.cells.split(",") if c], [m for m in args.modes.split(",") if m], shapes,
        [c for c in args.varlen.split(",") if c], args.threads, args.repeats, not args.no_reference,
        not args.no_torch, step=args.step)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Inference speed: rnncore against ONNX Runtime on the same weights.

For each cell (Elman RNN, LSTM, GRU) and shape (T, B, I, H) a layer is exported with
``rnncore.onnx.export`` and loaded into an ONNX Runtime session (CPU provider); both
then run the same forward pass (rnncore under ``no_grad``), after a check that they
agree (1e-4 relative). The two alternate in blocks of calls within one process, with a
pause before each block so that the other library's idle workers stop spinning; the
median of ``--repeats`` samples is reported (a sample is one call, or the mean of
enough back-to-back calls to last 5 ms). Both use the same thread count: rnncore's
kernels and NumPy's BLAS are pinned to it, and the session's ``intra_op_num_threads``
is set to it (``inter_op_num_threads`` 1, sequential execution, every graph
optimisation on).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/onnx_speed.py --threads 1,2

prints a Markdown table per thread count and the geometric mean of the ratios.
``--quick`` runs tiny shapes with few repeats (a smoke test of the script, not a
measurement). Needs ``pip install "rnncore[onnx]"``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

import rnncore
import rnncore.onnx
from rnncore.bench import blas_info, limit_threads

GRID = [(50, 1, 32, 64), (100, 16, 128, 128), (100, 32, 256, 256), (100, 64, 512, 512)]
QUICK = [(5, 2, 3, 4), (7, 3, 8, 16)]
LAYERS = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU}


class Case:
    """One cell and shape: an rnncore layer and an ONNX Runtime session of its export."""

    def __init__(self, ort, kind, T, B, I, H, threads, varlen, directory, rng):
        self.kind, self.T, self.B, self.I, self.H, self.varlen = kind, T, B, I, H, varlen
        self.layer = LAYERS[kind](I, H, seed=0)
        self.x = rng.standard_normal((T, B, I)).astype(np.float32)
        self.lengths = rng.integers(max(T // 2, 1), T + 1, size=B) if varlen else None
        path = os.path.join(directory, f"{kind}-{T}-{B}-{I}-{H}-{threads}-{varlen}.onnx")
        rnncore.onnx.export(self.layer, path, lengths=varlen)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.feeds = {"x": self.x}
        if varlen:
            self.feeds["lengths"] = self.lengths.astype(np.int32)
        self.y_name = ["y"]

    def run_rnncore(self):
        with rnncore.no_grad():
            return self.layer.forward(self.x, None, self.lengths)[0]

    def run_ort(self):
        return self.session.run(self.y_name, self.feeds)[0]

    def check(self):
        a, b = self.run_ort(), self.run_rnncore()
        err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)
        if not err <= 1e-4:
            raise AssertionError(f"{self.label()}: ONNX Runtime disagrees with rnncore (relative error {err:.2g})")
        return err

    def label(self):
        return f"{self.kind}{' varlen' if self.varlen else ''} T={self.T} B={self.B} I={self.I} H={self.H}"


def measure(fns, repeats, rounds=3, min_sample=0.005, pause=0.25):
    """Median seconds per call of each function, alternating in blocks (see the module's
    documentation)."""
    inner, times = {}, {name: [] for name in fns}
    for name, fn in fns.items():
        fn()
        t = time.perf_counter()
        fn()
        inner[name] = max(1, math.ceil(min_sample / max(time.perf_counter() - t, 1e-9)))
    per_block = max(1, -(-repeats // rounds))
    order = list(fns)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            time.sleep(pause)
            fns[name]()
            for _ in range(per_block):
                t = time.perf_counter()
                for _ in range(inner[name]):
                    fns[name]()
                times[name].append((time.perf_counter() - t) / inner[name])
    return {name: float(np.median(v)) for name, v in times.items()}


def run(kinds, shapes, threads_list, repeats, varlen_kinds, pause, out=sys.stdout):
    import onnxruntime as ort
    rng = np.random.default_rng(0)
    results = []
    print(f"rnncore {rnncore.__version__} (kernels {rnncore._core.kernel_isa()}), onnxruntime {ort.__version__}",
          file=out)
    print(f"BLAS: {blas_info()}", file=out)
    with tempfile.TemporaryDirectory() as directory:
        for threads in threads_list:
            with limit_threads(threads):
                print(f"\n**{threads} thread{'s' if threads > 1 else ''}**, inference (forward), float32, "
                      f"median ms of {repeats}\n", file=out)
                print("| cell | T, B, I, H | rnncore ms | ONNX Runtime ms | ONNX Runtime / rnncore |", file=out)
                print("|---|---|---|---|---|", file=out)
                cases = [(k, s, False) for k in kinds for s in shapes] + \
                        [(k, s, True) for k in varlen_kinds for s in shapes]
                ratios = []
                for kind, (T, B, I, H), varlen in cases:
                    case = Case(ort, kind, T, B, I, H, threads, varlen, directory, rng)
                    case.check()
                    t = measure({"rnncore": case.run_rnncore, "ort": case.run_ort}, repeats, pause=pause)
                    ratio = t["ort"] / t["rnncore"]
                    ratios.append(ratio)
                    print(f"| {kind}{' varlen' if varlen else ''} | {T}, {B}, {I}, {H} | {t['rnncore'] * 1e3:.3g} | "
                          f"{t['ort'] * 1e3:.3g} | {ratio:.2f} |", file=out, flush=True)
                    results.append(dict(kind=kind, shape=(T, B, I, H), threads=threads, varlen=varlen, **t))
                print(f"\n{threads} thread(s): geometric mean ONNX Runtime / rnncore "
                      f"{math.exp(np.mean(np.log(ratios))):.2f}, min {min(ratios):.2f}, max {max(ratios):.2f}",
                      file=out)
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=9, help="timed samples per implementation (default 9)")
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated: rnn,lstm,gru")
    p.add_argument("--shapes", default=None, help="semicolon-separated T,B,I,H (default: "
                   + "; ".join(",".join(map(str, s)) for s in GRID) + ")")
    p.add_argument("--varlen", default="lstm", help="cells also timed with lengths drawn from [T/2, T] "
                   "(ONNX's sequence_lens; default lstm, '' for none)")
    p.add_argument("--quick", action="store_true", help="tiny shapes, 3 repeats, no pauses: checks the script runs")
    args = p.parse_args(argv)
    try:
        threads = [int(t) for t in args.threads.split(",") if t]
        shapes = GRID if args.shapes is None else [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    except ValueError:
        p.error("--threads/--shapes: expected integers")
    if not threads or min(threads) < 1 or any(len(s) != 4 or min(s) < 1 for s in shapes):
        p.error("--threads/--shapes: expected positive thread counts and T,B,I,H of positive sizes")
    kinds = [c for c in args.cells.split(",") if c]
    varlen = [c for c in args.varlen.split(",") if c]
    if any(k not in LAYERS for k in kinds + varlen):
        p.error("--cells/--varlen: expected names among rnn, lstm, gru")
    repeats, pause = args.repeats, 0.25
    if args.quick:
        shapes, repeats, pause = QUICK, 3, 0.0
    run(kinds, shapes, threads, repeats, varlen, pause)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The main job's throughput: 1 process x 2 threads against 2 processes x 1 thread, and
what the gradient all-reduce costs per step.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/distributed_lm.py
    python benchmarks/distributed_lm.py --steps 301 --pairs 3     # the defaults

1. Tokens per second of ``python -m rnncore`` (the default model: Embedding(V, 64) ->
   2 x 256 LSTM -> Linear, 32 lanes x 64 steps per step) run as one process with 2 kernel
   threads, and as ``torchrun --standalone --nproc-per-node 2 -m rnncore --threads 1``
   (16 lanes per rank, the gradients averaged every step). The figure is the rate of the
   progress line at the last multiple of 20 steps, before any evaluation. The two
   alternate, which one first alternating too, ``--pairs`` times; the ratio is the median
   of the pairs' ratios.
2. Under torchrun (2 processes x 1 thread), the median time of one training step's
   compute (forward, loss, backward) on rank 0's 16 lanes and of ``average_gradients()``
   on loopback, and from them, for N machines joined by a network of a given bandwidth,
   the ring all-reduce's time per step (2 (N-1)/N x the gradient bytes / bandwidth, plus
   2 (N-1) latencies) against the step's compute at 32/N lanes per machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def job_rate(mode, steps, workdir):
    args = ["--steps", str(steps), "--sample-every", "0", "--checkpoint-every", str(10 ** 9), "--plot", "", "--overwrite",
            "--checkpoint", os.path.join(workdir, f"{mode}.npz")]
    if mode == "1x2":
        cmd = [sys.executable, "-m", "rnncore", "--threads", "2", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "rnncore", "--threads", "1", *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stdout}\n{out.stderr}")
    last = (steps - 1) // 20 * 20
    for line in out.stdout.splitlines():
        m = re.search(rf"step {last}/{steps} .* ([\d,]+) tokens/s", line)
        if m:
            return float(m.group(1).replace(",", ""))
    raise SystemExit(f"{mode}: no progress line for step {last}:\n{out.stdout}")


WORKER_STEPS = 40


def worker():
    """Under torchrun: time the compute of a step and the all-reduce; rank 0 prints JSON."""
    import numpy as np

    import rnncore
    import rnncore.distributed as rd
    from rnncore.__main__ import DEFAULTS, LanguageModel, load_text
    from rnncore.text import Vocab, batchify

    rd.init()
    rnncore.set_num_threads(1)
    text, _ = load_text(None)
    cfg = dict(DEFAULTS)
    lm = LanguageModel(cfg, Vocab.from_text(text[:200000]), None)
    dp = rd.DataParallel(lm.model)
    inputs, targets = batchify(lm.vocab.encode(text[:400000]), cfg["batch"], cfg["bptt"])
    mine = rd.lanes(cfg["batch"])
    compute, reduce = [], []
    for k in range(WORKER_STEPS):
        x, y = np.ascontiguousarray(inputs[k, :, mine]), np.ascontiguousarray(targets[k, :, mine])
        rd.barrier()
        t0 = time.perf_counter()
        dp.zero_grad()
        logits, _ = dp.forward(x)
        lm.loss.forward(logits, y)
        dp.backward(lm.loss.backward())
        t1 = time.perf_counter()
        rd.barrier()  # both ranks done computing: the all-reduce alone is timed
        t2 = time.perf_counter()
        dp.average_gradients(weight=x.shape[1])
        t3 = time.perf_counter()
        if k >= 5:
            compute.append(t1 - t0)
            reduce.append(t3 - t2)
    nbytes = sum(g.nbytes for g in dp.grads.values())
    if rd.is_main():
        print(json.dumps({"compute_ms": 1e3 * statistics.median(compute), "allreduce_ms": 1e3 * statistics.median(reduce),
                          "grad_bytes": nbytes, "lanes": mine.stop - mine.start}))
    rd.shutdown()


def allreduce_cost():
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__, "--worker"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if out.returncode != 0:
        raise SystemExit(f"all-reduce timing failed:\n{out.stdout}\n{out.stderr}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=301, help="main-job steps per run (default 301)")
    p.add_argument("--pairs", type=int, default=3, help="runs of each configuration (default 3)")
    p.add_argument("--latency-us", type=float, default=50.0, help="network latency per message (default 50 us)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker()
    if args.steps < 21:
        raise SystemExit("--steps: at least 21 (the rate is read at a multiple of 20 steps)")
    with tempfile.TemporaryDirectory() as workdir:
        rates = {"1x2": [], "2x1": []}
        ratios = []
        for k in range(args.pairs):
            order = ("1x2", "2x1") if k % 2 == 0 else ("2x1", "1x2")
            got = {mode: job_rate(mode, args.steps, workdir) for mode in order}
            for mode, r in got.items():
                rates[mode].append(r)
            ratios.append(got["2x1"] / got["1x2"])
            print(f"pair {k + 1}: 1 process x 2 threads {got['1x2']:,.0f} tokens/s, "
                  f"2 processes x 1 thread {got['2x1']:,.0f} tokens/s", flush=True)
    print(f"\nmain job, {args.steps} steps: 1 process x 2 threads {statistics.median(rates['1x2']):,.0f} tokens/s; "
          f"2 processes x 1 thread {statistics.median(rates['2x1']):,.0f} tokens/s; "
          f"ratio (2x1 / 1x2, median of pairs) {statistics.median(ratios):.2f} "
          f"[{min(ratios):.2f}, {max(ratios):.2f}]")
    cost = allreduce_cost()
    step, ar, nbytes = cost["compute_ms"], cost["allreduce_ms"], cost["grad_bytes"]
    print(f"\nunder torchrun, rank 0 ({cost['lanes']} lanes, 1 thread): step compute {step:.1f} ms, "
          f"average_gradients {ar:.2f} ms on loopback ({nbytes / 2 ** 20:.2f} MiB of gradients, "
          f"{100 * ar / step:.1f}% of the compute)")
    full = 2 * step  # the compute of all 32 lanes on one thread, to first order
    print("\nN machines (32 lanes shared, 1 process of 2 threads each, step compute ~ 32/N lanes at 2 threads "
          f"~ {full / 2:.1f} ms x 2/N), ring all-reduce with {args.latency_us:.0f} us latency:")
    print("| network | N | all-reduce ms | compute ms | all-reduce / step |")
    print("|---|---|---|---|---|")
    for gbit in (1, 10, 25):
        for n in (2, 4, 8, 16):
            t_ar = 1e3 * (2 * (n - 1) / n * nbytes * 8 / (gbit * 1e9)) + 2 * (n - 1) * args.latency_us / 1e3
            t_c = full / 2 * 2 / n
            print(f"| {gbit} Gb/s | {n} | {t_ar:.2f} | {t_c:.1f} | {100 * t_ar / (t_ar + t_c):.0f}% |")


if __name__ == "__main__":
    main()

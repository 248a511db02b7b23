"""Whole programs, rnncore against PyTorch: each program written once with each library
(benchmarks/programs/), each run in its own process as a user would run one or the
other, alternating rnncore, PyTorch, rnncore, PyTorch, ...; the table gives the median of
the pairs' speed ratios (rnncore / PyTorch) with their range, the median rates, and the
loss each reached (the same computation: they must agree).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/whole_programs.py
    python benchmarks/whole_programs.py --programs lm generate --threads 2 --pairs 5

Programs: (1) lm: the main job's model and training step (Embedding 64 -> 2x256 LSTM ->
Linear, softmax cross-entropy, Adam, clipping at 5; batch 32 x 64 steps); (2) readme: the
README's training loop (embedding 32); (3) seq2seq: the seq2seq example's training
(sorting 5 digits, 128 units, batch 128); (4) generate: greedy generation token by token
from the main job's model; (5) numpy-head: program (1) with the user's own output layer
and softmax in NumPy (in PyTorch: by hand with torch operations).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "programs"
PROGRAMS = {"lm": 40, "readme": 40, "seq2seq": 150, "generate": 1000, "numpy-head": 40}
LABELS = {"lm": "(1) main job's training step", "readme": "(2) README's training loop",
          "seq2seq": "(3) seq2seq example's training", "generate": "(4) generation, token by token",
          "numpy-head": "(5) (1) with a NumPy head"}


def run(impl, program, threads, steps):
    script = HERE / f"{impl}_programs.py"
    out = subprocess.run([sys.executable, str(script), program, "--threads", str(threads), "--steps", str(steps)],
                         cwd=HERE, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def blas_info():
    """The BLAS kernels in use in an rnncore process (threadpoolctl), for the record."""
    code = ("import json, numpy, threadpoolctl; from rnncore import _core; print(json.dumps([(i.get('internal_api'), "
            "i.get('architecture'), i.get('version'), i.get('num_threads')) for i in threadpoolctl.threadpool_info()]"
            " + [('rnncore kernels', _core.kernel_isa())]))")
    try:
        return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout)
    except (subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        return f"unavailable ({exc})"


def agreement(program, a, b):
    if program == "generate":
        same = 0
        for x, y in zip(a["ids"], b["ids"]):
            if x != y:
                break
            same += 1
        return f"same first {same} of {len(a['ids'])} tokens"
    return f"loss {a['loss']:.5f} vs {b['loss']:.5f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--programs", nargs="+", choices=list(PROGRAMS), default=list(PROGRAMS))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--pairs", type=int, default=3, help="rnncore/PyTorch pairs per program (default 3)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every program's measured steps")
    args = p.parse_args(argv)
    print(f"BLAS: {blas_info()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}", flush=True)
    rows = []
    for threads in args.threads:
        for program in args.programs:
            steps = max(2, int(PROGRAMS[program] * args.scale))
            ratios, ours, theirs = [], [], []
            for _ in range(args.pairs):
                a = run("rnncore", program, threads, steps)
                b = run("torch", program, threads, steps)
                ratios.append(a["rate"] / b["rate"])
                ours.append(a)
                theirs.append(b)
            row = (threads, LABELS[program], statistics.median(ratios), min(ratios), max(ratios),
                   statistics.median(r["rate"] for r in ours), statistics.median(r["rate"] for r in theirs),
                   ours[0]["unit"], agreement(program, ours[0], theirs[0]))
            rows.append(row)
            print(f"  {threads} thread(s) {program}: ratios {', '.join(f'{r:.2f}' for r in ratios)}", flush=True)
    print("\n| threads | program | rnncore / PyTorch, median of pairs | range | rnncore | PyTorch | unit | agreement |")
    print("|---|---|---|---|---|---|---|---|")
    for t, label, med, lo, hi, ra, rb, unit, agree in rows:
        print(f"| {t} | {label} | **{med:.2f}x** | {lo:.2f}-{hi:.2f} | {ra:,.0f} | {rb:,.0f} | {unit} | {agree} |")


if __name__ == "__main__":
    main()

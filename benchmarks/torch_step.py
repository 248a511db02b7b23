"""A PyTorch training step with rnncore.torch's LSTM/GRU against the same step with torch.nn's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/torch_step.py
    python benchmarks/torch_step.py --cells lstm gru --threads 1 2 --pairs 7 --steps 30   # the defaults

The step is a whole PyTorch training step of a character language model: embedding
(V=96, E) -> recurrent layers (H, L) -> linear head -> cross-entropy over (T, B) ->
backward -> Adam, float32. Only the recurrent module's class differs between the two
implementations; both start from the same weights (the same ``torch.manual_seed``), so
the first loss must agree (checked before any ratio is printed).

Each measurement runs in its own process (``torch.set_num_threads`` and
``rnncore.set_num_threads`` both set to the thread count), warms up, then times
``--steps`` steps and reports their median. The two implementations alternate, which one
goes first alternating too; a pair's ratio is torch ms / rnncore ms, and the figure is the
median over ``--pairs`` pairs (with the smallest and largest ratio), so that drift in the
machine's speed cancels within a pair.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, statistics, sys, time
import torch
import rnncore
import rnncore.torch
impl, cell, threads, T, B, E, H, L, steps, warmup = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
torch.set_num_threads(threads)
rnncore.set_num_threads(threads)
V = 96
lib = rnncore.torch if impl == "rnncore" else torch.nn
Recurrent = {"lstm": lib.LSTM, "gru": lib.GRU}[cell]

class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.rnn = Recurrent(E, H, num_layers=L)
        self.head = torch.nn.Linear(H, V)
    def forward(self, x):
        y, _ = self.rnn(self.embed(x))
        return self.head(y)

torch.manual_seed(0)
model = Model()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
g = torch.Generator().manual_seed(1)
batches = [torch.randint(0, V, (T + 1, B), generator=g) for _ in range(4)]
def step(i):
    data = batches[i % len(batches)]
    opt.zero_grad()
    logits = model(data[:-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), data[1:].reshape(-1))
    loss.backward()
    opt.step()
    return loss.item()
first = step(0)
for i in range(1, warmup):
    step(i)
times = []
for i in range(steps):
    t = time.perf_counter()
    step(i)
    times.append(time.perf_counter() - t)
print(json.dumps({"first_loss": first, "ms": 1e3 * statistics.median(times)}))
"""


def run_child(impl, cell, threads, args):
    cmd = [sys.executable, "-c", CHILD, impl, cell, str(threads), *map(str, args.shape), str(args.layers),
           str(args.steps), str(args.warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{impl} {cell} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--shape", nargs=4, type=int, default=[64, 32, 64, 256], metavar=("T", "B", "E", "H"),
                   help="sequence length, batch, embedding and hidden sizes (default 64 32 64 256)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--pairs", type=int, default=7, help="process pairs per case (default 7)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per process (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    args = p.parse_args(argv)
    T, B, E, H = args.shape
    print(f"training step: Embedding(96, {E}) -> {args.layers} x {H} -> Linear -> cross-entropy -> Adam; "
          f"T={T}, B={B}, float32; {args.pairs} process pairs x {args.steps} steps")
    print("| cell | threads | rnncore ms | torch ms | torch / rnncore (median of pairs) | min | max |")
    print("|---|---|---|---|---|---|---|")
    for threads in args.threads:
        for cell in args.cells:
            ours, theirs, ratios = [], [], []
            for k in range(args.pairs):
                order = ("torch", "rnncore") if k % 2 == 0 else ("rnncore", "torch")
                res = {impl: run_child(impl, cell, threads, args) for impl in order}
                a, b = res["rnncore"]["first_loss"], res["torch"]["first_loss"]
                if abs(a - b) > 1e-4 * abs(b):
                    raise SystemExit(f"{cell}: the first losses differ (rnncore {a!r}, torch {b!r}): not the same model")
                ours.append(res["rnncore"]["ms"])
                theirs.append(res["torch"]["ms"])
                ratios.append(res["torch"]["ms"] / res["rnncore"]["ms"])
            print(f"| {cell} | {threads} | {statistics.median(ours):.2f} | {statistics.median(theirs):.2f} | "
                  f"{statistics.median(ratios):.2f} | {min(ratios):.2f} | {max(ratios):.2f} |", flush=True)


if __name__ == "__main__":
    main()

"""Memory-efficient BPTT (``checkpoint_every=k``) against the full path: the memory one
LSTM training step adds and its time.

    python benchmarks/checkpointing.py [--shape B I H] [--T 2000 20000] [--every 45 141]
                                       [--pairs 7] [--threads 2] [--allocator both]

Memory: each measurement in a fresh process (as benchmarks/memory.py): the peak resident
size over one forward + backward of a fresh float32 layer, less the resident size before
it and less the step's output y and input gradient dx (which the caller keeps); the
input and dy exist and the libraries are warmed up on a tiny problem first.

Time: one process per T running full and checkpointed training steps alternately (full,
checkpointed, full, ... for --pairs pairs, after two warm-up steps each); the ratio of
each pair, median and range. The ideal ratio is what one more forward pass costs, (full
step + its forward) / full step, with the forward timed inside the same full steps.
"sys" is the share of the steps' time the process spent in the kernel (getrusage), which
is almost all page faults: each step hands the caller a fresh y and dx (65 MiB and 4 MiB
at T=2000), and glibc returns freed blocks that large to the OS, so every step faults
them in again. On virtual machines whose host reclaims the memory a guest frees (free
page reporting), those faults cost up to ~100 MiB/s and land on one step or another at
random, moving single ratios by +-0.4. ``--allocator kept`` runs the timing process with
glibc keeping freed memory (``MALLOC_MMAP_MAX_=0``, ``MALLOC_TRIM_THRESHOLD_`` 1 TiB, the
same for both paths), which leaves the kernels' time; ``both`` (default) prints a row for
each. Run on a quiet machine, with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

MEMORY = r"""
import sys
import numpy as np
import rnncore
T, B, I, H, every = map(int, sys.argv[1:6])
x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
dy = np.ones((T, B, H), np.float32)
def status_mib(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024
tiny = rnncore.LSTM(4, 4, seed=0, checkpoint_every=2)
tiny.backward(tiny.forward(np.ones((5, 2, 4), np.float32))[0])
layer = rnncore.LSTM(I, H, seed=0, checkpoint_every=every or None)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status_mib("VmRSS")
y, _ = layer.forward(x)
dx, _ = layer.backward(dy)
print(status_mib("VmHWM") - before - (y.nbytes + dx.nbytes) / 2**20)
"""

TIME = r"""
import json, resource, sys, time
import numpy as np
import rnncore
T, B, I, H, every, pairs, threads = map(int, sys.argv[1:8])
rnncore.set_num_threads(threads)
rng = np.random.default_rng(0)
x = rng.standard_normal((T, B, I)).astype(np.float32)
dy = rng.standard_normal((T, B, H)).astype(np.float32)
layers = {"full": rnncore.LSTM(I, H, seed=0), "ckpt": rnncore.LSTM(I, H, seed=0, checkpoint_every=every)}
def step(layer):
    s = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    t = time.perf_counter()
    layer.forward(x)
    f = time.perf_counter()
    layer.backward(dy)
    end = time.perf_counter()
    return end - t, f - t, resource.getrusage(resource.RUSAGE_SELF).ru_stime - s
for _ in range(2):
    for layer in layers.values():
        step(layer)
out = {"full": [], "ckpt": [], "forward": [], "sys_full": [], "sys_ckpt": []}
for _ in range(pairs):
    for name, layer in layers.items():
        total, forward, sys_time = step(layer)
        out[name].append(total)
        out["sys_" + name].append(sys_time)
        if name == "full":
            out["forward"].append(forward)
print(json.dumps(out))
"""

# glibc keeps freed memory in the process (see the docstring)
KEPT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2 ** 40)}


def child(code, *args, env=None):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True,
                         env=None if env is None else {**os.environ, **env})
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[32, 16, 256], metavar=("B", "I", "H"))
    ap.add_argument("--T", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--every", type=int, nargs="+", default=[45, 141], help="k for each T")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--allocator", choices=["both", "default", "kept"], default="both",
                    help="time with glibc's default allocator, with freed memory kept in the process, or both")
    args = ap.parse_args()
    if len(args.every) != len(args.T):
        ap.error("--every takes one k per --T")
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    B, I, H = args.shape
    allocators = ["default", "kept"] if args.allocator == "both" else [args.allocator]
    print(f"LSTM training step, float32, B={B} I={I} H={H}, {args.threads} threads; memory the step adds "
          f"beyond y and dx (MiB), time (s), {args.pairs} pairs")
    print(f"{'T':>6} {'k':>4} {'full MiB':>9} {'ckpt MiB':>9} {'ratio':>6} {'allocator':>9} {'full s':>7} "
          f"{'ckpt s':>7} {'time ratio (range)':>20} {'ideal':>6} {'sys/wall full, ckpt':>19}")
    for T, k in zip(args.T, args.every):
        full_mib = float(child(MEMORY, T, B, I, H, 0))
        ckpt_mib = float(child(MEMORY, T, B, I, H, k))
        for allocator in allocators:
            times = json.loads(child(TIME, T, B, I, H, k, args.pairs, args.threads,
                                     env=KEPT if allocator == "kept" else None))
            ratios = [c / f for f, c in zip(times["full"], times["ckpt"])]
            ideal = statistics.median((f + fw) / f for f, fw in zip(times["full"], times["forward"]))
            sys_share = [statistics.median(s / t for s, t in zip(times["sys_" + n], times[n]))
                         for n in ("full", "ckpt")]
            print(f"{T:>6} {k:>4} {full_mib:9.1f} {ckpt_mib:9.1f} {ckpt_mib / full_mib:6.3f} {allocator:>9} "
                  f"{statistics.median(times['full']):7.3f} {statistics.median(times['ckpt']):7.3f} "
                  f"{statistics.median(ratios):8.3f} ({min(ratios):.3f}-{max(ratios):.3f}) {ideal:6.3f} "
                  f"{sys_share[0]:11.0%}, {sys_share[1]:5.0%}", flush=True)


if __name__ == "__main__":
    main()

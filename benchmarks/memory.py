"""Peak memory of one training step (forward + backward), rnncore against PyTorch.

    python benchmarks/memory.py [--shape T B I H] [--layers 1 2 4]

Each measurement runs in a fresh process: the peak resident set size (VmHWM, reset
through /proc/self/clear_refs just before) over one forward + backward of a fresh layer,
less the resident size before it; the inputs exist and the libraries are loaded and
warmed up on a tiny problem first. Linux only. For the LSTM, the activations that
backward needs are x (kept by forward), h and c ([T+1, B, H] each), the gates
([T, B, 4H]) and y, per layer; the rest of the peak is one layer's backward scratch.
"""

import argparse
import subprocess
import sys

CHILD = r"""
import sys
import numpy as np
impl, kind, T, B, I, H, L = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
dy = np.ones((T, B, H), np.float32)
def status_mib(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024
def start():  # reset the high-water mark to the current resident size
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_mib("VmRSS")
def peak_mib():
    return status_mib("VmHWM")
if impl == "native":
    import rnncore
    cls = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU}[kind]
    tiny = cls(4, 4, seed=0)
    tiny.backward(tiny.forward(np.ones((2, 2, 4), np.float32))[0])
    layer = cls(I, H, num_layers=L, seed=0)
    before = start()
    y, _ = layer.forward(x)
    layer.backward(dy)
else:
    import torch
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    tiny = cls(4, 4)
    tiny(torch.ones(2, 2, 4))[0].sum().backward()
    layer = cls(I, H, num_layers=L)
    xt = torch.from_numpy(x).requires_grad_()
    dyt = torch.from_numpy(dy)
    before = start()
    y, _ = layer(xt)
    y.backward(dyt)
print(peak_mib() - before)
"""


def measure(impl, kind, shape, layers):
    out = subprocess.run([sys.executable, "-c", CHILD, impl, kind, *map(str, shape), str(layers)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def lstm_saved_mib(T, B, I, H, layers):
    per_layer = [T * B * (I if k == 0 else H) + 2 * (T + 1) * B * H + T * B * 4 * H + T * B * H
                 for k in range(layers)]
    return sum(per_layer) * 4 / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", type=int, nargs=4, default=[64, 32, 256, 256], metavar=("T", "B", "I", "H"))
    ap.add_argument("--layers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
        impls = ["native", "torch"]
    except ImportError:
        impls = ["native"]
    T, B, I, H = args.shape
    print(f"peak RSS growth of one float32 training step, MiB (T={T} B={B} I={I} H={H})")
    print(f"{'kind':5} {'layers':>6} " + " ".join(f"{i:>8}" for i in impls) + "   LSTM saved activations")
    for kind in ("rnn", "lstm", "gru"):
        for layers in args.layers:
            row = [measure(impl, kind, args.shape, layers) for impl in impls]
            note = f"   {lstm_saved_mib(T, B, I, H, layers):8.1f}" if kind == "lstm" else ""
            print(f"{kind:5} {layers:>6} " + " ".join(f"{v:8.1f}" for v in row) + note)


if __name__ == "__main__":
    main()

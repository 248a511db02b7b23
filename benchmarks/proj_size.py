"""LSTM with a projection (``proj_size=P``): rnncore against torch.nn.LSTM(proj_size=P).

    python benchmarks/proj_size.py [--threads 1 2] [--repeats 7]

PyTorch runs LSTMs with projections through its generic per-step loop (oneDNN rejects
them). For each shape and thread count, a training step (forward + backward with every
gradient) and an inference forward, float32, both libraries in one process on the same
weights, alternating in blocks (``rnncore.bench.measure_calls``); medians; the outputs are
checked to agree first. Run on a quiet machine with ``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE``.
"""

import argparse
import warnings

import numpy as np
import torch

import rnncore
from rnncore.bench import blas_info, limit_threads, measure_calls

SHAPES = [(100, 32, 256, 256, 128), (100, 64, 512, 512, 256), (50, 1, 128, 256, 64)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    print(f"torch {torch.__version__}; BLAS: {blas_info()}")
    print("| threads | T, B, I, H, P | mode | rnncore ms | torch ms | torch / rnncore |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for threads in args.threads:
        with limit_threads(threads):
            torch.set_num_threads(threads)
            for T, B, I, H, P in SHAPES:
                ours = rnncore.LSTM(I, H, proj_size=P, seed=0)
                theirs = torch.nn.LSTM(I, H, proj_size=P)
                theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
                x = rng.standard_normal((T, B, I)).astype(np.float32)
                dy = rng.standard_normal((T, B, P)).astype(np.float32)
                tx, tdy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)
                y_ours = ours.forward(x)[0]
                y_theirs = theirs(tx)[0].detach().numpy()
                assert np.max(np.abs(y_ours - y_theirs)) <= 1e-4 * max(1.0, np.max(np.abs(y_theirs)))

                def train_ours():
                    ours.zero_grad()
                    ours.forward(x)
                    ours.backward(dy)

                def train_theirs():
                    theirs.zero_grad()
                    tx.grad = None
                    theirs(tx)[0].backward(tdy)

                def infer_ours():
                    with rnncore.no_grad():
                        ours.forward(x)

                def infer_theirs():
                    with torch.no_grad():
                        theirs(tx)

                for mode, fns in (("train", {"rnncore": train_ours, "torch": train_theirs}),
                                  ("infer", {"rnncore": infer_ours, "torch": infer_theirs})):
                    t = measure_calls(fns, args.repeats)
                    print(f"| {threads} | {T}, {B}, {I}, {H}, {P} | {mode} | {t['rnncore'] * 1e3:.3g} | "
                          f"{t['torch'] * 1e3:.3g} | {t['torch'] / t['rnncore']:.2f} |", flush=True)


if __name__ == "__main__":
    main()

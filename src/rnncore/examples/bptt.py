"""The notes' backpropagation through time at t = 3, by hand, against rnncore's backward.

000 trains the Elman network ``s_t = tanh(x_t W_x + s_{t-1} W_s)``, ``y_t = s_t W_y``
(row vectors, the state ``s`` is rnncore's ``h``) on the error at the third step,
``E_3 = 1/2 |d_3 - y_3|^2``, and writes each weight's gradient as a sum over the paths
from E_3 back to that weight:

    dE_3/dW_y = dE_3/dy_3 dy_3/dW_y                                         (one path)
    dE_3/dW_s = sum over i = 1, 2, 3 of dE_3/dy_3 dy_3/ds_3 ds_3/ds_i ds_i/dW_s
    dE_3/dW_x = sum over i = 1, 2, 3 of dE_3/dy_3 dy_3/ds_3 ds_3/ds_i ds_i/dW_x

where ds_i/dW is the immediate derivative (s_{i-1} held fixed) and ds_3/ds_i the chain of
one-step Jacobians ds_{j}/ds_{j-1} = diag(1 - s_j^2) W_s^T. ``contributions()`` computes
the three terms of each sum separately, in float64 NumPy, as written; ``run()`` checks
their sums against ``rnncore.RNN`` + ``rnncore.Linear`` with the same weights, which
hold them transposed (``weight_ih = W_x.T``, ``weight_hh = W_s.T``, ``Linear.weight =
W_y.T``, see the notation page). The initial state s_0 is not zero: with s_0 = 0 the
first state's term of dE_3/dW_s would vanish (ds_1/dW_s = s_0 (outer) ...).
"""

from __future__ import annotations

import numpy as np

import rnncore

I, H, O = 3, 4, 2  # input, state and output sizes (odd, distinct: a swapped dimension cannot pass)


def problem(seed=0):
    """Weights in the notes' orientation (row vectors: x W_x), an input sequence x_1..x_3,
    an initial state s_0 and the target d_3."""
    rng = np.random.default_rng(seed)
    return {"W_x": rng.normal(0, 0.6, (I, H)), "W_s": rng.normal(0, 0.6, (H, H)), "W_y": rng.normal(0, 0.6, (H, O)),
            "x": rng.normal(0, 1, (3, I)), "s0": rng.normal(0, 0.5, H), "d3": rng.normal(0, 1, O)}


def contributions(p):
    """The notes' equations, term by term. Returns the forward values, E_3 and, for W_y,
    W_s and W_x, the list of contributions (one for W_y, one per state i = 1, 2, 3 for
    the others)."""
    W_x, W_s, W_y, x = p["W_x"], p["W_s"], p["W_y"], p["x"]
    s = [p["s0"]]
    for t in range(3):                                        # s_t = tanh(x_t W_x + s_{t-1} W_s)
        s.append(np.tanh(x[t] @ W_x + s[-1] @ W_s))
    y3 = s[3] @ W_y                                            # y_3 = s_3 W_y
    E3 = 0.5 * np.sum((p["d3"] - y3) ** 2)
    dE_dy3 = y3 - p["d3"]                                      # dE_3/dy_3 (the 1/2 cancels the 2)
    dW_y = [np.outer(s[3], dE_dy3)]                            # dy_3/dW_y: s_3
    dE_ds3 = dE_dy3 @ W_y.T                                    # dE_3/dy_3 dy_3/ds_3
    dW_s, dW_x = [], []
    for i in (3, 2, 1):
        g = dE_ds3                                             # dE_3/ds_3 ds_3/ds_i: back from 3 to i
        for j in range(3, i, -1):
            g = (g * (1 - s[j] ** 2)) @ W_s.T                  # ds_j/ds_{j-1} = diag(1 - s_j^2) W_s^T
        dz = g * (1 - s[i] ** 2)                               # through tanh at step i
        dW_s.append(np.outer(s[i - 1], dz))                    # immediate ds_i/dW_s: s_{i-1}
        dW_x.append(np.outer(x[i - 1], dz))                    # immediate ds_i/dW_x: x_i
    return {"s": np.array(s), "y3": y3, "E3": E3, "dW_y": dW_y, "dW_s": dW_s[::-1], "dW_x": dW_x[::-1]}


def rnncore_gradients(p, backend=None):
    """E_3 and its gradients from rnncore's forward and backward, in the notes' orientation."""
    rnn = rnncore.RNN(I, H, nonlinearity="tanh", bias=False, dtype=np.float64, backend=backend)
    head = rnncore.Linear(H, O, bias=False, dtype=np.float64)
    rnn.load_state_dict({"weight_ih_l0": p["W_x"].T, "weight_hh_l0": p["W_s"].T})
    head.load_state_dict({"weight": p["W_y"].T})
    mse = rnncore.MSELoss(reduction="sum", half=True)         # the notes' 1/2 squared error
    s, _ = rnn.forward(p["x"][:, None, :], p["s0"][None, None, :])   # (T=3, B=1, H)
    y3 = head.forward(s[2])
    E3 = mse.forward(y3, p["d3"][None, :])
    ds = np.zeros_like(s)
    ds[2] = head.backward(mse.backward())                      # only E_3: the error enters at t = 3
    rnn.backward(ds)
    return {"E3": E3, "dW_y": head.grads["weight"].T, "dW_s": rnn.grads["weight_hh_l0"].T,
            "dW_x": rnn.grads["weight_ih_l0"].T}


def notation_forms(seed=0, T=3, B=2):
    """The notes' three ways of writing the same Elman network, computed as each writes it,
    against ``rnncore.RNN`` and ``rnncore.Linear`` (with biases): the largest difference
    for each, and the notes' summed loss against rnncore's default mean."""
    rng = np.random.default_rng(seed)
    rnn = rnncore.RNN(I, H, dtype=np.float64, seed=seed)
    head = rnncore.Linear(H, O, dtype=np.float64, seed=seed + 1)
    w_ih, w_hh, b_ih, b_hh = (rnn.params[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    x, h0 = rng.normal(size=(T, B, I)), rng.normal(size=(1, B, H))
    h, _ = rnn.forward(x, h0)
    y = head.forward(h)
    row, col, uwv = [h0[0]], [h0[0].T], [h0[0].T]
    W_x, W_s, W_y = w_ih.T, w_hh.T, head.weight.T                      # 000 and 003: row vectors, x W_x
    W_ax, W_aa, b_a = w_ih, w_hh, b_ih + b_hh                          # 002: columns, W_ax x + W_aa a + b_a
    U, W, V, b, c = w_ih, w_hh, head.weight, b_ih + b_hh, head.bias    # 004: b + W h + U x, o = c + V h
    for t in range(T):
        row.append(np.tanh(x[t] @ W_x + row[-1] @ W_s + (b_ih + b_hh)))
        col.append(np.tanh(W_ax @ x[t].T + W_aa @ col[-1] + b_a[:, None]))
        uwv.append(np.tanh(b[:, None] + W @ uwv[-1] + U @ x[t].T))
    out = {"000/003 s_t = tanh(x_t W_x + s_t-1 W_s + b)": np.max(np.abs(np.array(row[1:]) - h)),
           "000/003 y_t = s_t W_y + b_y": np.max(np.abs(np.array(row[1:]) @ W_y + head.bias - y)),
           "002 a_t = tanh(W_ax x_t + W_aa a_t-1 + b_a)": np.max(np.abs(np.array(col[1:]).transpose(0, 2, 1) - h)),
           "004 h_t = tanh(b + W h_t-1 + U x_t), o_t = c + V h_t":
               np.max(np.abs((V @ np.array(uwv[1:]) + c[:, None]).transpose(0, 2, 1) - y))}
    targets = rng.integers(0, O, (T, B))
    total = rnncore.SoftmaxCrossEntropy(reduction="sum").forward(y, targets)   # the notes: a sum over steps
    mean = rnncore.SoftmaxCrossEntropy().forward(y, targets)                    # rnncore's default
    out["sum / (T*B) - mean"] = abs(total / (T * B) - mean)
    return {k: float(v) for k, v in out.items()}


def run(seed=0, backend=None, verbose=False):
    p = problem(seed)
    hand, lib = contributions(p), rnncore_gradients(p, backend)
    out = {"E3 difference": abs(hand["E3"] - lib["E3"])}
    for name in ("dW_y", "dW_s", "dW_x"):
        total = sum(hand[name])
        out[f"{name} largest difference"] = float(np.max(np.abs(total - lib[name])))
        out[f"{name} largest entry"] = float(np.max(np.abs(lib[name])))
    norms = [float(np.linalg.norm(c)) for c in hand["dW_s"]]
    out.update({f"dW_s term from s_{i} (norm)": n for i, n in zip((1, 2, 3), norms)})
    if verbose:
        np.set_printoptions(precision=5, suppress=True)
        for i, c in zip((1, 2, 3), hand["dW_s"]):
            print(f"dE_3/dW_s, the path through s_{i}:\n{c}")
        print(f"their sum:\n{sum(hand['dW_s'])}\nrnncore (weight_hh_l0 gradient, transposed):\n{lib['dW_s']}")
    return out


def main(argv=None):
    import argparse

    from rnncore.examples._common import report
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default=None, help="kernel backend: native (default) or reference")
    args = p.parse_args(argv)
    report("bptt", run(args.seed, backend=args.backend, verbose=True))
    report("notation", notation_forms(args.seed))


if __name__ == "__main__":
    main()

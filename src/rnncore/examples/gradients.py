"""Vanishing and exploding gradients, measured.

``gradient_profile`` runs a cell for T steps, puts a loss on the last state only, and
backpropagates one step at a time (the one-step cells' backward), recording the norm of
dLoss/dh_t for every t: how much the loss can still learn from k steps back.

* Elman tanh at PyTorch's default initialisation: the norm decays geometrically; a few
  dozen steps back nothing is left (vanishing).
* LSTM at the same initialisation: its forget gates sit near sigmoid(0) = 0.5, so the
  cell state's path halves the gradient every step, barely better than Elman's. With a
  positive forget-gate bias (3 here; 1 is a common initialisation) the gates stay near
  1 and the gradient reaches back dozens of steps: what the LSTM was designed for.
* Elman relu with its recurrent weights scaled up: the norm grows geometrically
  (exploding), and so do the weight gradients; plain SGD then diverges, while clipping
  the global gradient norm (Pascanu et al.) keeps the same training finite.

``python -m rnncore.examples.gradients`` prints the numbers and writes gradients.png
(with matplotlib, the ``plot`` extra; gradients.csv with the same numbers without it).
"""

from __future__ import annotations

import numpy as np

import rnncore
from rnncore.examples._common import parser, report

STEPS_BACK = (0, 1, 5, 10, 20, 50, 99)


def make_cell(kind, H, scale=1.0, nonlinearity="tanh", seed=0, backend=None, forget_bias=0.0):
    if kind == "lstm":
        cell = rnncore.LSTMCell(H, H, dtype=np.float64, seed=seed, backend=backend)
        cell.params["bias_ih"][H:2 * H] += forget_bias
    else:
        cell = rnncore.RNNCell(H, H, nonlinearity=nonlinearity, dtype=np.float64, seed=seed, backend=backend)
    cell.params["weight_hh"] *= scale
    return cell


def gradient_profile(cell, T=100, B=16, seed=0):
    """Mean over the batch of ||dLoss/dh_t|| for t = T-1, T-2, ..., 0 (index k = steps
    back), with Loss = sum(w * h_T) for a fixed random w of unit norm per row."""
    rng = np.random.default_rng(seed)
    H = cell.hidden_size
    lstm = isinstance(cell, rnncore.LSTMCell)
    state = (np.zeros((B, H)), np.zeros((B, H))) if lstm else np.zeros((B, H))
    for _ in range(T):
        state = cell.forward(rng.standard_normal((B, cell.input_size)), state)
    w = rng.standard_normal((B, H))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    dstate = (w, None) if lstm else w
    norms = []
    for _ in range(T):
        dh = dstate[0] if lstm else dstate
        norms.append(float(np.mean(np.linalg.norm(dh, axis=1))))
        _, dstate = cell.backward(dstate)
    return np.array(norms)


def train_exploding(clip, steps=60, T=40, B=16, H=32, seed=0, backend=None):
    """SGD on an Elman relu RNN with scaled-up recurrent weights, learning to output the
    mean of its inputs at the last step; with or without clipping the global norm to 1.
    Returns the losses (inf/nan once diverged) and the gradient norms before clipping."""
    rng = np.random.default_rng(seed)
    rnn = rnncore.RNN(1, H, nonlinearity="relu", dtype=np.float64, seed=seed, backend=backend)
    rnn.params["weight_hh_l0"] *= 3.0
    head = rnncore.Linear(H, 1, dtype=np.float64, seed=seed + 1)
    model = rnncore.Sequential(rnn, head)
    mse = rnncore.MSELoss()
    opt = rnncore.SGD(model.params, model.grads, lr=0.01)
    losses, norms = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            x = rng.uniform(0, 1, (T, B, 1))
            model.zero_grad()
            y, _ = model.forward(x)
            losses.append(mse.forward(y[-1], x.mean(0)))
            dy = np.zeros_like(y)
            dy[-1] = mse.backward()
            model.backward(dy)
            norms.append(rnncore.clip_grad_norm(model.grads, 1.0) if clip else
                         float(np.sqrt(sum(np.sum(g * g) for g in model.grads.values()))))
            opt.step()
    return np.array(losses), np.array(norms)


def run(T=100, H=32, seed=0, plot=None, backend=None):
    profiles = {
        "Elman tanh": gradient_profile(make_cell("rnn", H, seed=seed, backend=backend), T, seed=seed),
        "LSTM": gradient_profile(make_cell("lstm", H, seed=seed, backend=backend), T, seed=seed),
        "LSTM forget bias 3": gradient_profile(make_cell("lstm", H, seed=seed, backend=backend, forget_bias=3.0), T,
                                               seed=seed),
        "Elman relu x3 weights": gradient_profile(make_cell("rnn", H, 3.0, "relu", seed, backend), T, seed=seed),
    }
    plain, plain_norms = train_exploding(False, seed=seed, backend=backend)
    clipped, clipped_norms = train_exploding(True, seed=seed, backend=backend)
    if plot:
        plot_profiles(plot, profiles)
    metrics = {}
    for name, p in profiles.items():
        for k in (10, 50):
            metrics[f"{name} ratio at {k} steps back"] = float(p[k] / p[0])
    finite = np.isfinite(plain)
    metrics["no clipping: final loss"] = float(plain[-1])
    metrics["no clipping: steps before divergence"] = int(np.argmin(finite)) if not finite.all() else len(plain)
    metrics["clipping: final loss"] = float(clipped[-1])
    metrics["clipping: largest gradient norm before clipping"] = float(np.nanmax(clipped_norms))
    return metrics, profiles


def plot_profiles(path, profiles):
    """The profiles (relative to the last step) on a log scale, as a PNG through
    matplotlib, or as CSV without it. Returns (the file written, a note when CSV)."""
    from rnncore import _plotting
    ks = np.arange(len(next(iter(profiles.values()))))
    rel = {name: p / p[0] for name, p in profiles.items()}
    return _plotting.plot_or_csv(path, {name: (ks, r) for name, r in rel.items()}, {"steps_back": ks, **rel},
                                 logy=True, title="gradient norm vs steps back", xlabel="steps back k",
                                 ylabel="|dL/dh(T-k)| / |dL/dh(T)|")


def main(argv=None):
    p = parser(__doc__, 0)
    p.add_argument("--plot", default="gradients.png",
                   help="PNG to write (default gradients.png; without matplotlib a CSV of the numbers); '' for none")
    args = p.parse_args(argv)
    metrics, profiles = run(seed=args.seed, backend=args.backend)
    print("norm of dLoss/dh_t relative to the last step, by steps back:")
    print("  steps back " + "".join(f"{k:>10d}" for k in STEPS_BACK))
    for name, prof in profiles.items():
        print(f"  {name:22s}" + "".join(f"{prof[k] / prof[0]:10.2e}" for k in STEPS_BACK))
    report("gradients", {k: v for k, v in metrics.items() if "clipping" in k})
    if args.plot:
        written, note = plot_profiles(args.plot, profiles)
        print(note or f"plot written to {written}")


if __name__ == "__main__":
    main()

"""Small helpers shared by the examples."""

from __future__ import annotations

import argparse

import numpy as np


def one_hot(ids, n, dtype=np.float32):
    """ids (...) -> (..., n) one-hot vectors."""
    out = np.zeros(ids.shape + (n,), dtype)
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return out


def parser(doc, steps, seed=0):
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=steps, help=f"training steps (default {steps})")
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--backend", default=None, help="kernel backend: native (default) or reference")
    return p


def report(name, metrics):
    print(f"{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in metrics.items()))

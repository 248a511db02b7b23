"""The applications the seed notes build toward: image captioning, the Elman network's
sequence detector, and the BPTT worked example of the notation page."""

import pathlib
import re

import numpy as np
import pytest

import rnncore
from rnncore.examples import EXAMPLES, bptt, captioning, elman

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide" / "notation.md"


def test_captioning_far_above_a_captioner_that_ignores_the_image():
    m = captioning.run(steps=800, n_test=300, n_beam=60)
    baseline = m["image-blind baseline (best constant caption)"]
    assert baseline <= 0.05                                     # ~1,000s of distinct captions
    assert m["greedy exact match"] >= 0.6, m
    assert m["beam (width 3) exact match"] >= 0.6, m
    assert m["greedy exact match"] >= 10 * baseline


def test_captioning_data_and_encoder_gradient():
    rng = np.random.default_rng(0)
    images, captions = captioning.make_data(rng, 50)
    assert images.shape == (50, 16, 16, 3) and images.dtype == np.float32
    for img, cap in zip(images, captions):
        words = captioning.caption_text(cap).split(" and ")
        assert 1 <= len(words) <= 3
        cells = [tuple(w.split()[2:]) for w in words]
        assert cells == sorted(cells, key=captioning.CELLS.index)  # reading order
        for w in words:
            colour, shape, row, col = w.split()
            assert colour in captioning.COLOURS and shape in captioning.SHAPES
            r, c = ("top", "bottom").index(row), ("left", "right").index(col)
            cell = img[8 * r:8 * r + 8, 8 * c:8 * c + 8]
            assert np.count_nonzero(cell.max(-1) > 0.4) >= 8    # the shape is drawn in its cell
    # the caption loss's gradient reaches the encoder's weights: finite differences (float64)
    model = captioning.Captioner(hidden=6, embed=5, seed=1, dtype=np.float64)
    x, caps = images[:5], captions[:5]

    def loss():
        return model.train_step(x, caps)  # forward and backward; only the loss is used here

    for g in model.grads.values():
        g.fill(0)
    loss()
    grads = {k: v.copy() for k, v in model.grads.items()}
    enc = [k for k in model.params if k.startswith("enc.")]      # the decoder's are checked elsewhere
    report = rnncore.gradcheck(loss, {k: model.params[k] for k in enc}, {k: grads[k] for k in enc}, max_entries=8,
                               rtol=1e-5)
    assert report, report
    assert np.abs(grads["enc.conv.weight"]).max() > 0


def test_elman_network_detects_the_pattern():
    m = elman.run()
    assert m["step accuracy"] >= 0.99
    assert m["patterns detected (recall)"] >= 0.99             # positives are ~9% of steps: recall matters
    assert m["detections that were patterns (precision)"] >= 0.99
    assert m["sequences without a mistake"] >= 0.95
    assert 0.05 < m["positive steps"] < 0.2


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bptt_at_t3_the_notes_terms_sum_to_rnncores_gradient(backend, seed):
    m = bptt.run(seed, backend=backend)
    assert m["E3 difference"] < 1e-14
    for name in ("dW_y", "dW_s", "dW_x"):
        assert m[f"{name} largest difference"] <= 1e-13 * m[f"{name} largest entry"], (name, m)
    for i in (1, 2, 3):
        assert m[f"dW_s term from s_{i} (norm)"] > 1e-3           # every path contributes


def test_bptt_terms_are_the_paths():
    """Cross-check the decomposition itself: each dW_s term is the gradient with the
    weight W_s varied at that step only (the unrolled copies of W_s)."""
    p = bptt.problem(3)
    terms = bptt.contributions(p)["dW_s"]
    eps = 1e-6
    for i in (1, 2, 3):
        numeric = np.zeros_like(p["W_s"])
        for a in range(bptt.H):
            for b in range(bptt.H):
                vals = []
                for sign in (1, -1):
                    s = p["s0"]
                    for t in range(3):
                        W = p["W_s"].copy()
                        if t + 1 == i:
                            W[a, b] += sign * eps
                        s = np.tanh(p["x"][t] @ p["W_x"] + s @ W)
                    vals.append(0.5 * np.sum((p["d3"] - s @ p["W_y"]) ** 2))
                numeric[a, b] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(terms[i - 1], numeric, rtol=1e-6, atol=1e-9)


def test_notation_forms_agree_with_rnncore():
    for name, diff in bptt.notation_forms().items():
        assert diff < 1e-13, name


def test_notation_page_runs_and_includes_what_exists():
    if not DOCS.exists():
        pytest.skip("docs/ not present (tests run outside a checkout)")
    page = DOCS.read_text(encoding="utf-8")
    for symbol in ("W_x", "W_s", "W_y", "W_{ax}", "W_{aa}", "W_{ya}", "b_a", "U", "V", "weight_ih_l0.T",
                   "bias_ih_l0 + bias_hh_l0", 'reduction="sum"'):
        assert symbol in page, symbol
    for target, obj in re.findall(r"```\{literalinclude\} (\S+)\n(?::language: \w+\n)?:pyobject: (\w+)", page):
        path = (DOCS.parent / target).resolve()
        assert path.exists(), target
        assert f"def {obj}(" in path.read_text(), obj
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(DOCS), "exec"), {})


def test_examples_are_listed():
    for name in ("captioning", "elman", "bptt"):
        assert name in EXAMPLES

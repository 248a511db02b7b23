"""Each architecture example learns what it claims (outcomes, not just "runs")."""

import numpy as np
import pytest

from rnncore import _plotting
from rnncore.examples import context, detector, generation, gradients, jordan, seq2seq, tagging


def test_many_to_one_sequence_detector():
    assert detector.run()["accuracy"] >= 0.99


def test_many_to_many_running_parity_tagger():
    assert tagging.run()["accuracy"] >= 0.99


def test_encoder_decoder_sorts_digits():
    m = seq2seq.run(steps=1500)
    assert m["exact-sequence accuracy"] >= 0.95


def test_encoder_decoder_reverses_digits():
    assert seq2seq.run(steps=800, task="reverse")["exact-sequence accuracy"] >= 0.95


def test_one_to_many_generation_until_end_token():
    m = generation.run()
    assert m["greedy correct starts"] == 10
    assert m["sampled (T=0.7) ending with <end>"] >= 0.95


def test_bidirectional_stack_sees_the_future_unidirectional_cannot():
    m = context.run()
    assert m["bidirectional accuracy"] >= 0.99
    assert m["unidirectional accuracy"] < 0.3  # near chance, 1/6


def test_jordan_network_free_running():
    assert jordan.run()["free-running accuracy"] >= 0.99


def test_vanishing_and_exploding_gradients(tmp_path):
    png = tmp_path / "g.png"
    m, profiles = gradients.run(plot=str(png))
    assert m["Elman tanh ratio at 50 steps back"] < 1e-10           # vanishes
    assert m["LSTM forget bias 3 ratio at 50 steps back"] > 1e-3    # carried by the cell state
    assert m["Elman relu x3 weights ratio at 50 steps back"] > 1e3  # explodes
    assert not np.isfinite(m["no clipping: final loss"]) or m["no clipping: final loss"] > 1e6
    assert np.isfinite(m["clipping: final loss"]) and m["clipping: final loss"] < 0.05
    assert m["clipping: largest gradient norm before clipping"] > 1.0  # clipping did act
    if _plotting.have_matplotlib():
        assert png.read_bytes()[:4] == b"\x89PNG"
    else:   # without the plot extra: the numbers as CSV
        assert (tmp_path / "g.csv").read_text().startswith("steps_back,Elman tanh,")
    for p in profiles.values():
        assert p.shape == (100,) and np.all(p > 0)

"""Sequence likelihood and beam search: against the softmax of the logits, exhaustive
enumeration and greedy generation."""

import itertools

import numpy as np
import pytest

import rnncore


def lm(V=4, hidden=6, cell="LSTM", dtype=np.float64, seed=0, layers=1):
    layer = getattr(rnncore, cell)(5, hidden, num_layers=layers, dtype=dtype, seed=seed + 1)
    model = rnncore.Sequential(rnncore.Embedding(V, 5, dtype=dtype, seed=seed), layer,
                               rnncore.Linear(hidden, V, dtype=dtype, seed=seed + 2))
    for name, p in model.params.items():  # sharper distributions than the default init: fewer near-ties
        p *= 3.0
    return model


def step_logprobs(model, ids, state=None):
    """log softmax of the logits after each prefix, one step at a time (float64)."""
    out = []
    for t in range(len(ids) - 1):
        logits, state = model.forward(np.array([[ids[t]]]), state)
        z = logits[0, 0].astype(np.float64)
        out.append(z[ids[t + 1]] - z.max() - np.log(np.exp(z - z.max()).sum()))
    return out


@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_score_is_the_sum_of_next_token_log_softmax(cell, dtype):
    model = lm(V=7, cell=cell, dtype=dtype, seed=3, layers=2)
    ids = np.random.default_rng(0).integers(0, 7, 11)
    expected = sum(step_logprobs(model, ids))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert rnncore.score(model, ids) == pytest.approx(expected, rel=rtol)
    assert rnncore.score(model, ids[:1]) == 0.0
    # several sequences at once, time-major
    batch = np.random.default_rng(1).integers(0, 7, (9, 4))
    got = rnncore.score(model, batch)
    assert got.shape == (4,)
    for b in range(4):
        assert got[b] == pytest.approx(sum(step_logprobs(model, batch[:, b])), rel=rtol)


def test_score_of_every_continuation_sums_to_one():
    model = lm(V=3)
    total = sum(np.exp(rnncore.score(model, np.array((2,) + rest))) for rest in itertools.product(range(3), repeat=4))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_score_with_an_initial_state():
    model = lm(V=5, seed=4)
    state = [(np.random.default_rng(2).normal(size=(1, 1, 6)), np.random.default_rng(3).normal(size=(1, 1, 6)))]
    ids = np.array([1, 4, 0, 3])
    assert rnncore.score(model, ids, state=state) == pytest.approx(sum(step_logprobs(model, ids, state)), rel=1e-12)
    assert rnncore.score(model, ids, state=state) != pytest.approx(rnncore.score(model, ids), rel=1e-6)


def all_sequences(V, n, end):
    """Every sequence a search can return: n tokens without end, or fewer than n ending with end."""
    for k in range(1, n + 1):
        for seq in itertools.product(range(V), repeat=k):
            body = seq[:-1] if end is not None else seq
            if end is not None and end in body:
                continue
            if k < n and (end is None or seq[-1] != end):
                continue
            yield seq


@pytest.mark.parametrize("end", [None, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_beam_as_wide_as_all_continuations_is_exhaustive(end, seed):
    V, n = 3, 4
    model = lm(V=V, seed=seed)
    prime = np.array([1, 0])
    seqs = list(all_sequences(V, n, end))
    exact = sorted(((rnncore.score(model, np.concatenate([prime, s])) - rnncore.score(model, prime), s)
                    for s in seqs), key=lambda e: -e[0])
    # as wide as every sequence: every one comes back, in order, with its log-probability
    got = rnncore.beam_search(model, prime, n, beam_width=len(seqs), end=end)
    assert len(got) == len(seqs)
    for (ids, lp), (lp_exact, s) in zip(got, exact):
        assert lp == pytest.approx(lp_exact, abs=1e-10)
    assert {tuple(ids) for ids, _ in got} == set(seqs)
    assert np.all(np.diff([lp for _, lp in got]) <= 0)  # best first
    # as wide as the sequences of n - 1 tokens: the most likely sequence, exactly
    best_ids, best_lp = rnncore.beam_search(model, prime, n, beam_width=V ** (n - 1), end=end)[0]
    assert tuple(best_ids) == exact[0][1]
    assert best_lp == pytest.approx(exact[0][0], abs=1e-10)


@pytest.mark.parametrize("end", [None, 0, 3])
@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_width_one_is_greedy_generation(end, cell):
    for seed in range(4):
        model = lm(V=6, cell=cell, dtype=np.float32, seed=seed)
        prime = np.array([seed % 6, 2])
        (ids, lp), = rnncore.beam_search(model, prime, 12, beam_width=1, end=end)
        greedy = rnncore.generate(model, prime, 12, temperature=0, end=end)
        np.testing.assert_array_equal(ids, greedy)
        assert ids.dtype == np.int64
        full = np.concatenate([prime, ids])
        assert lp == pytest.approx(rnncore.score(model, full) - rnncore.score(model, prime), rel=1e-5)


def test_wider_beams_find_more_likely_sequences_than_greedy_here():
    """Not guaranteed in general, so checked on fixed models where greedy is suboptimal:
    the search then returns the exhaustive optimum, and it beats greedy."""
    V, n, found = 4, 4, 0
    for seed in range(12):
        model = lm(V=V, seed=seed)
        prime = np.array([0])
        best = max((rnncore.score(model, np.concatenate([prime, s])), s) for s in itertools.product(range(V), repeat=n))
        greedy = rnncore.generate(model, prime, n, temperature=0)
        g = rnncore.score(model, np.concatenate([prime, greedy]))
        if g < best[0] - 1e-9:
            ids, lp = rnncore.beam_search(model, prime, n, beam_width=V ** (n - 1))[0]
            assert tuple(ids) == best[1] and lp > g - rnncore.score(model, prime)
            found += 1
    assert found >= 1  # the check above ran


def test_beam_search_from_a_state_conditions_on_it():
    model = lm(V=5, seed=7)
    rng = np.random.default_rng(0)
    states = [[(rng.normal(size=(1, 1, 6)) * 2, rng.normal(size=(1, 1, 6)) * 2)] for _ in range(3)]
    results = [rnncore.beam_search(model, np.array([0]), 6, beam_width=3, state=s) for s in states]
    for s, res in zip(states, results):
        ids, lp = res[0]
        prime_and_ids = np.concatenate([[0], ids])
        assert lp == pytest.approx(rnncore.score(model, prime_and_ids, state=s), abs=1e-10)
    assert len({tuple(r[0][0]) for r in results}) > 1  # different states, different captions


def test_beam_search_results_are_distinct_and_at_most_beam_width():
    model = lm(V=5, seed=5)
    res = rnncore.beam_search(model, np.array([1]), 5, beam_width=4, end=4)
    assert 1 <= len(res) <= 4
    assert len({tuple(ids) for ids, _ in res}) == len(res)
    for ids, _ in res:
        assert len(ids) == 5 or ids[-1] == 4
        assert 4 not in ids[:-1]
    assert [(len(ids), lp) for ids, lp in rnncore.beam_search(model, np.array([1]), 0)] == [(0, 0.0)]


def test_beam_search_keeps_the_model_state_untouched_between_calls():
    model = lm(V=5, seed=9)
    a = rnncore.beam_search(model, np.array([2, 3]), 6, beam_width=3, end=1)
    b = rnncore.beam_search(model, np.array([2, 3]), 6, beam_width=3, end=1)
    assert [(tuple(i), lp) for i, lp in a] == [(tuple(i), lp) for i, lp in b]


@pytest.mark.parametrize("kwargs, exc, start", [
    (dict(prime_ids=np.array([], np.int64)), ValueError, "prime_ids"),
    (dict(prime_ids=np.array([[1]])), ValueError, "prime_ids"),
    (dict(prime_ids=np.array([1.0])), TypeError, "prime_ids"),
    (dict(prime_ids=np.array([9])), ValueError, "prime_ids"),
    (dict(prime_ids=np.array([-1])), ValueError, "prime_ids"),
    (dict(prime_ids="ab"), TypeError, "prime_ids"),
    (dict(n=-1), ValueError, "n"),
    (dict(n=2.5), TypeError, "n"),
    (dict(beam_width=0), ValueError, "beam_width"),
    (dict(beam_width=True), TypeError, "beam_width"),
    (dict(end=5), ValueError, "end"),
    (dict(end=-2), ValueError, "end"),
    (dict(end="x"), ValueError, "end"),
])
def test_beam_search_bad_arguments(kwargs, exc, start):
    model = lm(V=5)
    args = dict(prime_ids=np.array([1]), n=3, beam_width=2, end=None)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        rnncore.beam_search(model, args.pop("prime_ids"), args.pop("n"), **args)
    assert str(info.value).startswith(start), info.value


@pytest.mark.parametrize("ids, exc, start", [
    (np.array([], np.int64), ValueError, "ids"),
    (np.zeros((2, 2, 2), np.int64), ValueError, "ids"),
    (np.array([0.5, 1.0]), TypeError, "ids"),
    (np.array([1, 7]), ValueError, "ids"),
    ([1, -1], ValueError, "ids"),
    (None, TypeError, "ids"),
])
def test_score_bad_arguments(ids, exc, start):
    with pytest.raises(exc) as info:
        rnncore.score(lm(V=5), ids)
    assert str(info.value).startswith(start), info.value


def test_not_a_model():
    with pytest.raises(TypeError, match="^model"):
        rnncore.score(object(), np.array([1, 2]))
    with pytest.raises(TypeError, match="^model"):
        rnncore.beam_search(None, np.array([1]), 3)

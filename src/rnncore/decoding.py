"""Sequence likelihood and beam search for models that map token ids to logits.

A *model* here is anything with ``forward(ids, state) -> (logits, state)`` where ids are
int arrays of shape (T, B) (time-major) and logits (T, B, V): a
``Sequential(Embedding, RNN/LSTM/GRU, Linear)`` language model, or the decoder of an
encoder-decoder started from a state. The state is what the model returns (for a
Sequential, one entry per recurrent layer) and is handed back in to continue; beam
search reorders it along the batch axis, which is axis 1 of every array in it
(rnncore's ``(L*D, B, H)`` states).

``score(model, ids)`` is the notes' sequence likelihood (the RNN as a directed
graphical model, 004 section 10.2.3): log p(ids[1:] | ids[0]) = sum over t >= 1 of
log p(ids[t] | ids[:t]), in nats. ``beam_search(model, prime, n)`` looks for the most
likely continuation of a prime, keeping the ``beam_width`` best partial sequences at
every step instead of greedy decoding's one.

Run models in evaluation mode (``model.eval()``) before scoring or searching: a layer
with dropout in training mode would score a randomly thinned network.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._module import no_grad


def _model(model):
    if not callable(getattr(model, "forward", None)):
        raise TypeError(f"model: expected a model with forward(ids, state) -> (logits, state), "
                        f"got {type(model).__name__}")
    return model


def _token_ids(name, value, ndims):
    if isinstance(value, (list, tuple)):
        value = np.array(value) if len(value) else np.zeros(0, np.int64)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected an integer numpy.ndarray, got {type(value).__name__}")
    if value.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer ids, got {value.dtype}")
    if value.ndim not in ndims:
        raise ValueError(f"{name}: expected a {' or '.join(f'{d}-D' for d in ndims)} array of ids, "
                         f"got shape {value.shape}")
    if value.size and value.min() < 0:
        raise ValueError(f"{name}: ids must be >= 0, got {value.min()}")
    return value.astype(np.int64)


def _log_softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _logits(model, x, state):
    out = model.forward(x, state)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("model: forward(ids, state) must return (logits, state)")
    logits, state = out
    if not isinstance(logits, np.ndarray) or logits.ndim != 3 or logits.shape[:2] != x.shape:
        raise ValueError(f"model: expected logits of shape {x.shape + ('V',)} from ids of shape {x.shape}, got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")
    if logits.shape[2] == 0:
        raise ValueError("model: the logits have no classes")
    return logits, state


def score(model, ids, *, state=None):
    """Log-likelihood of a sequence under a language model, in nats.

    ids: 1-D ids (one sequence) or 2-D (T, B) (B sequences, time-major). The first id is
    the condition: the result is sum over t = 1..T-1 of log p(ids[t] | ids[:t]) (0 for a
    single id), computed from the softmax of the model's logits in float64. state: the
    model's initial state (e.g. an encoder's), None for zeros. Returns a float for 1-D
    ids, a float64 array (B,) for 2-D."""
    model = _model(model)
    ids = _token_ids("ids", ids, (1, 2))
    one = ids.ndim == 1
    x = ids[:, None] if one else ids
    if x.shape[0] == 0:
        raise ValueError("ids: expected at least one id (the first is the condition)")
    if x.shape[0] == 1:
        total = np.zeros(x.shape[1])
        return float(total[0]) if one else total
    with no_grad():
        logits, _ = _logits(model, x[:-1], state)
    V = logits.shape[2]
    if x.max() >= V:
        raise ValueError(f"ids: every id must be in [0, {V}) (the model's classes), got {x.max()}")
    logp = _log_softmax(logits)  # (T-1, B, V)
    total = np.take_along_axis(logp, x[1:, :, None], axis=2)[..., 0].sum(axis=0)
    return float(total[0]) if one else total


def _take(state, index):
    """The state's batch entries ``index`` (axis 1 of every array in it)."""
    if state is None:
        return None
    if isinstance(state, np.ndarray):
        return state[:, index]
    if isinstance(state, (list, tuple)):
        return type(state)(_take(s, index) for s in state)
    raise TypeError(f"state: expected arrays, lists and tuples of them, got {type(state).__name__}")


def beam_search(model, prime_ids, n, beam_width=5, end=None, *, state=None):
    """The most likely continuations of ``prime_ids`` by beam search.

    Args:
        model: maps ids (T, B) to logits (T, B, V) with a state (see the module's doc).
        prime_ids: non-empty 1-D ids the continuations are conditioned on (e.g. a start
            token).
        n: the most tokens to generate (>= 0).
        beam_width: the partial sequences kept at each step.
        end: the end token, or None. A sequence that emits ``end`` is complete (``end``
            is its last id, as in ``generate``); the others run to n tokens.
        state: the model's state before the prime (batch of 1), e.g. an image's
            encoding; None for zeros.

    Returns up to ``beam_width`` pairs (ids, logprob), best first: ids (int64) the
    generated tokens after the prime, logprob their total log-probability in nats
    given the prime (no length normalisation). At every step the ``beam_width`` best
    extensions of the live sequences are kept; the search stops early once
    ``beam_width`` complete sequences score at least as well as every live one (a live
    sequence's score can only fall), so a beam as wide as the number of sequences of
    n - 1 tokens finds the most likely sequence exactly, and width 1 is greedy decoding
    (ties go to the lower token id, as argmax does)."""
    model = _model(model)
    prime = _token_ids("prime_ids", prime_ids, (1,))
    if prime.size == 0:
        raise ValueError("prime_ids: expected a non-empty 1-D array of ids")
    for name, value, low in (("n", n, 0), ("beam_width", beam_width, 1)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: expected an int >= {low}, got {type(value).__name__} {value!r}")
        if value < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {value}")
    n, beam_width = int(n), int(beam_width)
    if end is not None:
        if isinstance(end, (bool, np.bool_)) or not isinstance(end, numbers.Integral) or end < 0:
            raise ValueError(f"end: expected None or a token id >= 0, got {end!r}")
        end = int(end)
    with no_grad():
        try:
            logits, state = _logits(model, prime[:, None], state)
        except ValueError as e:  # an Embedding names its argument "ids"
            if str(e).startswith("ids:"):
                raise ValueError(f"prime_ids{str(e)[3:]}") from None
            raise
        V = logits.shape[2]
        if prime.max() >= V:
            raise ValueError(f"prime_ids: every id must be in [0, {V}) (the model's classes), got {prime.max()}")
        if end is not None and end >= V:
            raise ValueError(f"end: expected a token id in [0, {V}), got {end}")
        logp = _log_softmax(logits[-1])                 # (k, V): next-token log-probabilities per live beam
        tokens = np.zeros((1, 0), np.int64)            # (k, t): the live beams' tokens so far
        scores = np.zeros(1)                            # (k,): their log-probabilities
        done = []                                       # complete sequences: (logprob, ids)
        for t in range(n):
            cand = (scores[:, None] + logp).ravel()     # every one-token extension, beam-major
            keep = np.argsort(-cand, kind="stable")[:beam_width]
            beam, tok = np.divmod(keep, V)
            ended = tok == end if end is not None else np.zeros(len(keep), bool)
            for b, w in zip(beam[ended], tok[ended]):
                done.append((float(cand[b * V + w]), np.append(tokens[b], w)))
            live = ~ended
            tokens = np.concatenate([tokens[beam[live]], tok[live, None]], axis=1)
            scores = cand[keep[live]]
            if t == n - 1 or not live.any():
                break
            done.sort(key=lambda d: -d[0])
            del done[beam_width:]
            if len(done) == beam_width and done[-1][0] >= scores.max():
                tokens, scores = tokens[:0], scores[:0]  # a live sequence's score can only fall
                break
            state = _take(state, beam[live])
            logits, state = _logits(model, tok[live][None, :], state)
            logp = _log_softmax(logits[0])
    results = done + [(float(s), tk) for s, tk in zip(scores, tokens)]
    order = sorted(range(len(results)), key=lambda i: -results[i][0])  # stable: earlier entries win ties
    return [(results[i][1].astype(np.int64), results[i][0]) for i in order[:beam_width]]

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Text to integer arrays and time-major batches, for character-level models.

The loops here run once per character of a corpus; in Python they cost ~100 ns a
character, here a few.
"""

import numpy as np

from libc.stdint cimport int32_t, int64_t


def encode(str text, dict table, int32_t unknown):
    """Map each character of text to table[char], or to unknown when absent.

    Returns an int32 array of len(text). Code points below 65536 use a dense lookup
    built once per call; others go through the dict."""
    cdef Py_ssize_t n = len(text), i
    out = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] o = out
    dense = np.full(65536, -1, dtype=np.int32)
    cdef int32_t[::1] d = dense
    cdef Py_UCS4 ch
    cdef int32_t v
    for key, value in table.items():
        if not isinstance(key, str) or len(key) != 1:
            raise ValueError(f"table: keys must be single characters, got {key!r}")
        if ord(key) < 65536:
            d[ord(key)] = value
    for i in range(n):
        ch = text[i]
        if ch < 65536:
            v = d[ch]
        else:
            v = table.get(ch, -1)
        o[i] = unknown if v < 0 else v
    return out


def decode(const int32_t[::1] ids, list chars):
    """Inverse of encode: ids -> string, chars[i] the character of id i."""
    cdef Py_ssize_t i, n = ids.shape[0], V = len(chars)
    parts = []
    for i in range(n):
        if ids[i] < 0 or ids[i] >= V:
            raise ValueError(f"ids: id {ids[i]} at position {i} is outside the vocabulary of {V}")
        parts.append(chars[ids[i]])
    return "".join(parts)


def batchify(const int32_t[::1] ids, Py_ssize_t batch_size, Py_ssize_t steps):
    """Cut a token stream into time-major training batches for truncated BPTT.

    The stream is split into batch_size contiguous lanes (the tail that does not fill
    a lane is dropped), so that lane b of one chunk continues lane b of the previous
    chunk and the state can be carried. Returns (inputs, targets), both int32
    [n_chunks, steps, batch_size]: targets are the inputs shifted by one."""
    if batch_size <= 0 or steps <= 0:
        raise ValueError("batch_size and steps must be positive")
    cdef Py_ssize_t lane = (ids.shape[0] - 1) // batch_size
    cdef Py_ssize_t chunks = lane // steps
    if chunks == 0:
        raise ValueError(f"ids: {ids.shape[0]} tokens are too few for batch_size={batch_size}, steps={steps}")
    inputs = np.empty((chunks, steps, batch_size), dtype=np.int32)
    targets = np.empty((chunks, steps, batch_size), dtype=np.int32)
    cdef int32_t[:, :, ::1] x = inputs
    cdef int32_t[:, :, ::1] y = targets
    cdef Py_ssize_t c, t, b, pos
    for c in range(chunks):
        for t in range(steps):
            for b in range(batch_size):
                pos = b * lane + c * steps + t
                x[c, t, b] = ids[pos]
                y[c, t, b] = ids[pos + 1]
    return inputs, targets


def sample_index(const double[::1] probs, double u):
    """The index i with cumsum(probs)[i-1] <= u * sum(probs) < cumsum(probs)[i]: one draw
    from the categorical distribution probs given a uniform u in [0, 1)."""
    cdef Py_ssize_t i, n = probs.shape[0]
    cdef double total = 0, acc = 0
    if n == 0:
        raise ValueError("probs: empty")
    for i in range(n):
        if not probs[i] >= 0:
            raise ValueError(f"probs: entry {i} is {probs[i]} (expected finite and >= 0)")
        total += probs[i]
    if not 0 < total < float("inf"):
        raise ValueError("probs: the total must be positive and finite")
    u *= total
    for i in range(n):
        acc += probs[i]
        if u < acc:
            return i
    for i in range(n - 1, -1, -1):  # u rounded up to the total: the last possible index
        if probs[i] > 0:
            return i

"""Character vocabularies and the text-to-batches pipeline (Cython loops in ``_text``)."""

from __future__ import annotations

import numpy as np

from . import _text

UNKNOWN = "\ufffd"  # the replacement character stands for any character not in the vocabulary


class Vocab:
    """Characters <-> integer ids. Id 0 is the unknown token; the rest are the sorted
    characters of the text it was built from."""

    def __init__(self, chars):
        chars = [c for c in chars if c != UNKNOWN]
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars: expected distinct single characters")
        self.chars = [UNKNOWN] + list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        """int32 ids of the characters of text (unknown characters -> 0)."""
        return _text.encode(text, self.index, 0)

    def decode(self, ids):
        return _text.decode(np.ascontiguousarray(ids, dtype=np.int32), self.chars)


def batchify(ids, batch_size, steps):
    """Time-major (inputs, targets) chunks [n_chunks, steps, batch_size] for truncated
    BPTT: lane b of chunk k+1 continues lane b of chunk k."""
    return _text.batchify(np.ascontiguousarray(ids, dtype=np.int32), batch_size, steps)

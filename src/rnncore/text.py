"""Character vocabularies and the text-to-batches pipeline (Cython loops in ``_text``)."""

from __future__ import annotations

import numpy as np

from . import _text

UNKNOWN = "\ufffd"  # the replacement character stands for any character not in the vocabulary
END = "\x03"  # end of text


class Vocab:
    """Characters <-> integer ids. Id 0 is the unknown token, id 1 the end token; the
    rest are the sorted characters of the text it was built from."""

    UNKNOWN_ID, END_ID = 0, 1

    def __init__(self, chars):
        chars = [c for c in chars if c not in (UNKNOWN, END)]
        if len(set(chars)) != len(chars) or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("chars: expected distinct single characters")
        self.chars = [UNKNOWN, END] + list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def encode(self, text, end=False):
        """int32 ids of the characters of text (unknown characters -> 0), followed by the
        end token if end."""
        ids = _text.encode(text, self.index, self.UNKNOWN_ID)
        return np.append(ids, np.int32(self.END_ID)) if end else ids

    def decode(self, ids, end=""):
        """The text of ids; the end token is written as ``end`` (default: nothing)."""
        chars = list(self.chars)
        chars[self.END_ID] = end
        return _text.decode(np.ascontiguousarray(ids, dtype=np.int32), chars)


def batchify(ids, batch_size, steps):
    """Time-major (inputs, targets) chunks [n_chunks, steps, batch_size] for truncated
    BPTT: lane b of chunk k+1 continues lane b of chunk k."""
    return _text.batchify(np.ascontiguousarray(ids, dtype=np.int32), batch_size, steps)

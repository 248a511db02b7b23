"""Vocabularies and the text-to-batches pipeline (Cython loops in ``_text``).

Characters (``Vocab``, with the end token at every line end: ``char_stream``) and words
(``tokenize``, ``WordVocab`` with ``<unk>`` for words outside a vocabulary capped by size
and ``<eos>`` at sentence ends), as the notes' language model (002) prepares its data.
"""

from __future__ import annotations

import collections
import re

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

    def encode_text(self, text):
        """The ids of char_stream(text): every line ended by the end token."""
        return self.encode(char_stream(text))

    def decode(self, ids, end=""):
        """The text of ids; the end token is written as ``end`` (default: nothing)."""
        chars = list(self.chars)
        chars[self.END_ID] = end
        return _text.decode(np.ascontiguousarray(ids, dtype=np.int32), chars)


def batchify(ids, batch_size, steps):
    """Time-major (inputs, targets) chunks [n_chunks, steps, batch_size] for truncated
    BPTT: lane b of chunk k+1 continues lane b of chunk k."""
    return _text.batchify(np.ascontiguousarray(ids, dtype=np.int32), batch_size, steps)


# --- lines and words: where the end token goes ---------------------------------------------

def lines(text):
    """The non-blank lines of text, without their line breaks (``\\r\\n`` too)."""
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def char_stream(text):
    """The text as a character-level model is trained on it: every non-blank line followed
    by the end token instead of its line break (so a model learns where a line, for
    the shipped text a verse, ends, and sampling until the end token stops there)."""
    return "".join(line + END for line in lines(text))


UNK, EOS = "<unk>", "<eos>"
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]")
_SENTENCE_END = frozenset(".?!")
_CLOSING = frozenset("\"'\u2019\u201d)]}")
_NO_SPACE_BEFORE = frozenset(",.;:?!)]}\u2019\u201d%")
_NO_SPACE_AFTER = frozenset("([{\u201c\u2018")


def tokenize(text, eos=True):
    """Split text into words (runs of letters and digits, with inner apostrophes: "don't",
    "LORD's") and punctuation marks, case kept. With eos, ``<eos>`` follows every sentence:
    after . ? or ! (and any closing quotes or brackets after it), and at the end of each
    paragraph (a blank line, or the end of the text) that did not end with one."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        tokens = _WORD.findall(para)
        if not eos:
            out.extend(tokens)
            continue
        i, quote_open = 0, False
        while i < len(tokens):
            out.append(tokens[i])
            quote_open ^= tokens[i] == '"'
            if tokens[i] in _SENTENCE_END:
                while i + 1 < len(tokens):  # closing quotes and brackets stay with their sentence
                    nxt = tokens[i + 1]
                    if not (nxt in _SENTENCE_END or (nxt in _CLOSING and (nxt != '"' or quote_open))):
                        break
                    i += 1
                    out.append(nxt)
                    quote_open ^= nxt == '"'
                out.append(EOS)
            i += 1
        if out and out[-1] != EOS:
            out.append(EOS)
    return out


def detokenize(tokens, eos="\n"):
    """Tokens back to text: single spaces between words, none before closing punctuation
    or after opening brackets and quotes (straight double quotes alternate between opening
    and closing); ``<eos>`` is written as ``eos`` (default a line break)."""
    parts, glue, quote_open = [], True, False
    for tok in tokens:
        if tok == EOS:
            parts.append(eos)
            glue = True
            continue
        closing = tok in _NO_SPACE_BEFORE or (tok == '"' and quote_open)
        if not glue and not closing:
            parts.append(" ")
        parts.append(tok)
        glue = tok in _NO_SPACE_AFTER or (tok == '"' and not quote_open)
        if tok == '"':
            quote_open = not quote_open
    return "".join(parts)


class WordVocab:
    """Words <-> integer ids for a word-level model. Id 0 is ``<unk>`` (every word not in
    the vocabulary), id 1 ``<eos>`` (end of sentence); the rest are words, most frequent
    first."""

    UNKNOWN_ID, END_ID = 0, 1

    def __init__(self, words):
        words = list(words)
        if any(not isinstance(w, str) or not w or w in (UNK, EOS) for w in words):
            raise ValueError("words: expected non-empty strings other than <unk> and <eos>")
        if len(set(words)) != len(words):
            raise ValueError("words: expected distinct words")
        self.words = [UNK, EOS] + words
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_tokens(cls, tokens, size):
        """The ``size`` - 2 most frequent tokens (ties: the first seen first) plus ``<unk>``
        and ``<eos>``: ``size`` ids in all (fewer when the tokens have fewer words)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 3:
            raise ValueError(f"size: expected an int >= 3 (<unk>, <eos> and a word), got {size!r}")
        counts = collections.Counter(t for t in tokens if t not in (UNK, EOS))
        return cls(w for w, _ in counts.most_common(size - 2))

    def __len__(self):
        return len(self.words)

    def encode(self, tokens):
        """int32 ids of tokens (words not in the vocabulary -> ``<unk>``)."""
        get = self.index.get
        return np.fromiter((get(t, self.UNKNOWN_ID) for t in tokens), np.int32)

    def encode_text(self, text):
        """The ids of tokenize(text): sentences ended by ``<eos>``."""
        return self.encode(tokenize(text))

    def decode(self, ids, end="\n"):
        """Text of ids (detokenized); ``<eos>`` is written as ``end``."""
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.words)):
            raise ValueError(f"ids: every id must be in [0, {len(self.words)})")
        return detokenize([self.words[i] for i in ids.tolist()], eos=end)

"""Word tokenisation, the capped vocabulary with <unk> and <eos>, and the end token at line
ends in the character-level text."""

import numpy as np
import pytest

from rnncore.text import EOS, UNK, END, Vocab, WordVocab, char_stream, detokenize, lines, tokenize


def test_tokenize_words_punctuation_and_sentence_ends():
    text = ("Genesis 1\n\nIn the beginning God created the heaven. And the earth was without form, "
            "and void; and darkness was upon the LORD's deep.\nAnd God said, \"Let there be light!\" And there was")
    toks = tokenize(text)
    assert toks[:3] == ["Genesis", "1", EOS]                              # a paragraph ends a sentence
    assert toks[3:10] == ["In", "the", "beginning", "God", "created", "the", "heaven"]
    assert toks[10:12] == [".", EOS]
    assert "LORD's" in toks and "," in toks and ";" in toks
    i = toks.index("!")
    assert toks[i:i + 3] == ["!", '"', EOS]                               # the closing quote stays with its sentence
    assert toks[-1] == EOS                                                # the text's end ends the last sentence
    assert toks.count(EOS) == 5
    assert EOS not in tokenize(text, eos=False)


def test_detokenize_inverts_tokenize_up_to_spacing():
    text = 'And he said, "Go (now)." Then: it was so; and they went!'
    out = detokenize(tokenize(text), eos=" ")
    assert out.split() == ['And', 'he', 'said,', '"Go', '(now)."', 'Then:', 'it', 'was', 'so;', 'and', 'they', 'went!']
    assert detokenize(["a", EOS, "b"], eos="|") == "a|b"


def test_word_vocab_capped_by_frequency_with_unk_and_eos():
    toks = tokenize("a b a c a b d. e a.")
    v = WordVocab.from_tokens(toks, 5)
    assert v.words == [UNK, EOS, "a", "b", "."]                           # most frequent first, ties: first seen
    assert len(v) == 5
    ids = v.encode(toks)
    assert ids.dtype == np.int32
    assert list(ids) == [2, 3, 2, 0, 2, 3, 0, 4, 1, 0, 2, 4, 1]
    assert v.decode(ids) == "a b a <unk> a b <unk>.\n<unk> a.\n"
    assert list(v.encode_text("a z.")) == [2, 0, 4, 1]
    assert len(WordVocab.from_tokens(toks, 100)) == 2 + 6                  # fewer words than the cap


@pytest.mark.parametrize("size", [2, 0, 2.5, True, None])
def test_word_vocab_bad_size(size):
    with pytest.raises(ValueError, match="^size"):
        WordVocab.from_tokens(["a"], size)


def test_word_vocab_bad_words_and_ids():
    with pytest.raises(ValueError, match="^words"):
        WordVocab(["a", "a"])
    with pytest.raises(ValueError, match="^words"):
        WordVocab(["a", EOS])
    with pytest.raises(ValueError, match="^ids"):
        WordVocab(["a"]).decode([3])


def test_char_stream_puts_the_end_token_at_every_line_end():
    text = "Genesis 1\n\nIn the beginning.\r\nAnd God said.\n\n\n"
    assert lines(text) == ["Genesis 1", "In the beginning.", "And God said."]
    assert char_stream(text) == f"Genesis 1{END}In the beginning.{END}And God said.{END}"
    v = Vocab.from_text(char_stream(text).replace(END, ""))
    ids = v.encode_text(text)
    assert np.count_nonzero(ids == Vocab.END_ID) == 3
    assert v.decode(ids, end="\n") == "Genesis 1\nIn the beginning.\nAnd God said.\n"

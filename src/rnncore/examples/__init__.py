"""Runnable examples of the seed notes' architectures, each training in seconds on data
it generates: ``python -m rnncore.examples.<name>``.

detector     many-to-one: flag sequences in which a pattern occurred
tagging      many-to-many: tag every position with the running parity
seq2seq      encoder-decoder: sort a digit sequence (teacher forcing, greedy decoding)
generation   one-to-many: generate a sequence from a start token, sampling until <end>
context      bidirectional and stacked layers: a task that needs the future
jordan       output-to-hidden (Jordan) recurrence trained with teacher forcing
gradients    vanishing and exploding gradients, measured, and what clipping does
elman        the notes' Elman network (tanh) as a sequence detector
captioning   image captioning: a convolutional encoder, an LSTM decoder, greedy and beam search
bptt         the notes' BPTT equations at t = 3, term by term, against rnncore's backward

Each module has ``run(...)`` returning its metrics (the tests call it) and ``main()``.
"""

EXAMPLES = ("detector", "tagging", "seq2seq", "generation", "context", "jordan", "gradients", "elman", "captioning",
            "bptt")

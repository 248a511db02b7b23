"""The main job's command line: bad options and inputs end with one line and exit status
2, a run never replaces another's files unless asked, early stopping keeps the best
checkpoint, the word level, and the end token at line ends."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from rnncore import checkpoint
from rnncore._plotting import written_path
from rnncore.__main__ import LanguageModel
from rnncore.__main__ import main as lm_main
from rnncore.text import Vocab

TINY = ["--hidden", "32", "--layers", "1", "--embed", "8", "--batch", "8", "--bptt", "16", "--quiet",
        "--sample-every", "0", "--lr", "0.01"]


def cli(args, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "rnncore", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def texts(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 100)
    (tmp_path / "short.txt").write_text("too short\n")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return tmp_path


@pytest.mark.parametrize("args, option", [
    (["--text", "missing.txt"], "--text: no such file"),
    (["--text", "latin1.txt"], "--text: latin1.txt is not UTF-8"),
    (["--text", "short.txt"], "--text: short.txt gives"),
    (["--text", "a_dir"], "--text: a_dir is a directory"),
    (["--steps", "-5"], "--steps: expected an integer >= 1"),
    (["--steps", "ten"], "--steps: expected an integer >= 1"),
    (["--hidden", "0"], "--hidden: expected an integer >= 1"),
    (["--batch", "1.5"], "--batch: expected an integer >= 1"),
    (["--lr", "nan"], "--lr: expected a number > 0"),
    (["--lr", "-1"], "--lr: expected a number > 0"),
    (["--dropout", "1"], "--dropout: expected a number in [0, 1)"),
    (["--temperature", "-0.5"], "--temperature: expected a number >= 0"),
    (["--level", "words"], "--level: invalid choice"),
    (["--vocab-size", "100"], "--vocab-size: only for --level word"),
    (["--level", "word", "--vocab-size", "2"], "--vocab-size: expected an integer >= 3"),
    (["--resume"], "--resume: no checkpoint at rnncore-lm.npz"),
    (["--resume", "--checkpoint", "bad.npz"], "--resume: bad.npz"),
    (["--resume", "--overwrite"], "--overwrite: --resume continues"),
    (["--checkpoint", "no/such/folder/lm.npz"], "--checkpoint: the folder no/such/folder does not exist"),
    (["--plot", "rnncore-lm.npz"], "--plot: rnncore-lm.npz is also the checkpoint's file name"),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_options_and_inputs_exit_2_with_one_line(texts, args, option):
    r = cli(args + ["--steps", "1"] if "--steps" not in args else args, texts, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"python -m rnncore: error: {option}"), lines[0]
    assert r.stdout == ""
    assert not (texts / "rnncore-lm.npz").exists()


def test_a_second_run_does_not_replace_the_first(tmp_path):
    plot = written_path("rnncore-loss.png")     # the PNG, or its CSV without matplotlib
    first = cli(TINY + ["--steps", "3"], tmp_path)
    assert first.returncode == 0, first.stderr
    files = {name: (tmp_path / name).read_bytes() for name in ("rnncore-lm.npz", "rnncore-lm.best.npz", plot)}
    second = cli(TINY + ["--steps", "4", "--seed", "1"], tmp_path)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr.startswith("python -m rnncore: error: --checkpoint: rnncore-lm.npz exists")
    assert "--resume" in second.stderr and "--overwrite" in second.stderr
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data, name     # untouched
    # each of the run's files is protected, not only the checkpoint
    os.remove(tmp_path / "rnncore-lm.npz")
    r = cli(TINY + ["--steps", "4"], tmp_path)
    assert r.returncode == 2 and "rnncore-lm.best.npz exists" in r.stderr
    os.remove(tmp_path / "rnncore-lm.best.npz")
    r = cli(TINY + ["--steps", "4"], tmp_path)
    assert r.returncode == 2 and f"--plot: {plot} exists" in r.stderr
    # asked to: --overwrite starts a new run over them
    r = cli(TINY + ["--steps", "4", "--seed", "1", "--overwrite"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert LanguageModel.load(str(tmp_path / "rnncore-lm.npz"), None).cfg["seed"] == 1
    assert (tmp_path / plot).read_bytes() != files[plot]


def test_resume_refuses_to_change_the_model_or_the_text(tmp_path):
    (tmp_path / "a.txt").write_text("abc def\n" * 400)
    (tmp_path / "b.txt").write_text("xyz uvw\n" * 400)
    assert cli(TINY + ["--steps", "2", "--text", "a.txt"], tmp_path).returncode == 0
    r = cli(TINY + ["--steps", "4", "--resume", "--hidden", "64"], tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("python -m rnncore: error: --hidden: the run in rnncore-lm.npz "
                                                     "has hidden 32"), r.stderr
    r = cli(TINY + ["--steps", "4", "--resume", "--text", "b.txt"], tmp_path)
    assert r.returncode == 2 and "--text: b.txt is not the text" in r.stderr, r.stderr
    # without --text it continues on its own text; --steps, --lr may change
    r = cli(TINY + ["--steps", "4", "--resume", "--lr", "0.02"], tmp_path)
    assert r.returncode == 0, r.stderr
    lm = LanguageModel.load(str(tmp_path / "rnncore-lm.npz"), None)
    assert lm.step == 4 and lm.cfg["lr"] == 0.02 and "a" in lm.vocab.chars and "x" not in lm.vocab.chars


def overfitting_text(path, seed=0):
    """Random letters: nothing to learn beyond their frequencies, so the validation loss
    stops improving soon and rises as the model memorises the training text."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefgh"))
    path.write_text("\n".join("".join(rng.choice(letters, 40)) for _ in range(150)) + "\n")


def test_early_stopping_keeps_the_best_checkpoint_beside_the_last(tmp_path, capsys):
    overfitting_text(tmp_path / "random.txt")
    ck = tmp_path / "lm.npz"
    lm_main(["--text", str(tmp_path / "random.txt"), "--hidden", "128", "--layers", "1", "--embed", "16",
             "--batch", "4", "--bptt", "32", "--lr", "0.01", "--quiet", "--sample-every", "0", "--steps", "2000",
             "--checkpoint-every", "10", "--patience", "3", "--checkpoint", str(ck), "--plot", ""])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "stopped early: 3 evaluations without improvement" in line, line
    last, best = LanguageModel.load(str(ck), None), LanguageModel.load(str(tmp_path / "lm.best.npz"), None)
    assert last.step < 2000                                      # stopped before --steps
    hist = np.array(last.history)
    evals = hist[~np.isnan(hist[:, 2])]
    assert len(evals) >= 4 and evals[-1, 0] == last.step
    i = int(np.argmin(evals[:, 2]))
    assert evals[i, 0] == best.step == last.best_step            # the best checkpoint is the best validation's
    assert last.step == best.step + 3 * 10                       # three evaluations later
    assert np.all(evals[i + 1:, 2] >= evals[i, 2])
    assert best.best_val == pytest.approx(evals[i, 2]) and last.bad_evals == 3
    assert not all(np.array_equal(best.model.params[k], v) for k, v in last.model.params.items())
    assert f"best {evals[i, 2]:.3f} at step {best.step}" in line
    # the best checkpoint is a whole run: evaluating it gives its recorded validation
    assert math.isclose(best.best_val, evals[i, 2])


def test_early_stopping_record_survives_resume(tmp_path, capsys):
    overfitting_text(tmp_path / "random.txt", seed=1)
    common = ["--text", str(tmp_path / "random.txt"), "--hidden", "64", "--layers", "1", "--embed", "8", "--batch",
              "4", "--bptt", "32", "--lr", "0.02", "--quiet", "--sample-every", "0", "--checkpoint-every", "10",
              "--patience", "2", "--plot", ""]
    lm_main(common + ["--steps", "200", "--checkpoint", str(tmp_path / "a.npz")])
    lm_main(common + ["--steps", "30", "--checkpoint", str(tmp_path / "b.npz")])
    lm_main(common + ["--steps", "200", "--checkpoint", str(tmp_path / "b.npz"), "--resume"])
    capsys.readouterr()
    for name in ("a", "a.best"):
        one = LanguageModel.load(str(tmp_path / f"{name}.npz"), None)
        two = LanguageModel.load(str(tmp_path / f"{name.replace('a', 'b')}.npz"), None)
        assert (one.step, one.best_step, one.bad_evals) == (two.step, two.best_step, two.bad_evals)
        for k, v in one.model.params.items():
            np.testing.assert_array_equal(two.model.params[k], v, err_msg=k)
    assert one.step < 200


def test_character_level_text_has_the_end_token_at_line_ends_and_samples_end(tmp_path, capsys):
    words = ["red", "green", "blue", "cat", "dog", "sat", "ran", "the", "a"]
    rng = np.random.default_rng(0)
    text = "\n".join(" ".join(rng.choice(words, 3)) for _ in range(600)) + "\n"
    (tmp_path / "lines.txt").write_text(text)
    ck = tmp_path / "lm.npz"
    lm_main(TINY + ["--text", str(tmp_path / "lines.txt"), "--hidden", "64", "--steps", "300", "--checkpoint",
                    str(ck), "--plot", ""])
    capsys.readouterr()
    lm = LanguageModel.load(str(ck), None)
    assert "\n" not in lm.vocab.chars                             # line breaks became end tokens
    ids = lm.vocab.encode_text(text)
    assert np.count_nonzero(ids == Vocab.END_ID) == 600
    lm.model.eval()
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(20):
        out = lm.sample("", 60, 0.7, rng)
        ended += len(out) < 30                                    # a three-word line, then the end token
    assert ended >= 18
    import rnncore
    gen = rnncore.generate(lm.model, lm.prime_ids("the "), 60, temperature=0, end=Vocab.END_ID)
    assert gen[-1] == Vocab.END_ID and len(gen) < 30


def test_word_level_language_model_beats_the_unigram_baseline(tmp_path, capsys):
    ck = tmp_path / "w.npz"
    lm_main(["--level", "word", "--vocab-size", "400", "--hidden", "64", "--layers", "1", "--embed", "32",
             "--batch", "16", "--bptt", "16", "--steps", "150", "--lr", "0.01", "--dropout", "0.1", "--quiet",
             "--sample-every", "0", "--checkpoint-every", "50", "--checkpoint", str(ck), "--plot", ""])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    val = float(line.split("validation ")[1].split()[0])
    unigram = float(line.split("unigram baseline ")[1].split()[0])
    ppl = float(line.split("perplexity ")[1].split()[0])
    assert ppl == pytest.approx(2 ** val, rel=1e-3)
    assert val < unigram - 0.5, line
    lm = LanguageModel.load(str(ck), None)
    assert lm.cfg["level"] == "word" and len(lm.vocab) == 400
    assert lm.vocab.words[:2] == ["<unk>", "<eos>"]
    # the model (with its Dropout layers) in evaluation mode is deterministic; samples end at <eos>
    assert type(lm.model[1]).__name__ == "Dropout" and type(lm.model[3]).__name__ == "Dropout"
    s = lm.sample("And", 50, 0.0, None)
    assert s.startswith("And")
    data, meta = checkpoint.load(str(ck))
    assert meta["words"][:2] == ["<unk>", "<eos>"] and len(meta["words"]) == 400


def test_interrupt_exits_130_and_keeps_the_last_checkpoint(tmp_path):
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "rnncore", *TINY, "--steps", "1000000", "--checkpoint-every", "5"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "rnncore-lm.npz").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (tmp_path / "rnncore-lm.npz").exists()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().endswith("(--resume continues from it)")
    lm = LanguageModel.load(str(tmp_path / "rnncore-lm.npz"), None)   # intact
    assert lm.step % 5 == 0 and lm.step >= 5
    assert not list(tmp_path.glob(".tmp-*"))

"""The main job: a tiny configuration learns well below the unigram entropy, and a run
resumed from its checkpoint continues exactly where it stopped."""

import numpy as np

from rnncore import _plotting
from rnncore.__main__ import LanguageModel
from rnncore.__main__ import main as lm_main

TINY = ["--hidden", "64", "--layers", "1", "--embed", "16", "--batch", "16", "--bptt", "32", "--quiet",
        "--sample-every", "0", "--lr", "0.005"]


def final_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_tiny_model_learns_well_below_unigram(tmp_path, capsys):
    ck, png = tmp_path / "lm.npz", tmp_path / "loss.png"
    lm_main(TINY + ["--steps", "300", "--checkpoint", str(ck), "--plot", str(png)])
    line = final_line(capsys)
    val = float(line.split("validation ")[1].split()[0])
    unigram = float(line.split("unigram baseline ")[1].split(")")[0])
    assert val < unigram - 1.2, line
    if _plotting.have_matplotlib():
        assert png.read_bytes()[:4] == b"\x89PNG"
    else:   # without the plot extra: the numbers as CSV
        assert (tmp_path / "loss.csv").read_text().startswith("step,train_bits_per_char,")
    with np.load(ck, allow_pickle=False) as f:  # a plain, pickle-free archive
        assert "__manifest__" in f.files and any(k.startswith("param.") for k in f.files)


def test_resume_continues_the_same_run(tmp_path, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    common = TINY + ["--checkpoint-every", "10", "--plot", ""]
    lm_main(common + ["--steps", "30", "--checkpoint", str(a)])
    lm_main(common + ["--steps", "20", "--checkpoint", str(b)])
    lm_main(common + ["--steps", "30", "--checkpoint", str(b), "--resume"])
    capsys.readouterr()
    one, two = LanguageModel.load(str(a), None), LanguageModel.load(str(b), None)
    assert one.step == two.step == 30
    for k, v in one.model.params.items():
        np.testing.assert_array_equal(two.model.params[k], v, err_msg=k)
    np.testing.assert_array_equal(np.array(one.history), np.array(two.history))


def test_checkpoint_is_written_atomically(tmp_path, capsys):
    ck = tmp_path / "c.npz"
    lm_main(TINY + ["--steps", "5", "--checkpoint", str(ck), "--plot", ""])
    assert ck.exists() and not list(tmp_path.glob(".tmp-*"))

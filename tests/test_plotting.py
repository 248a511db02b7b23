"""Plots through matplotlib (the plot extra) and, without it, the numbers as CSV with a
one-line note on how to get the plot: for the helper, the main job and the gradients
example."""

import numpy as np
import pytest

from rnncore import _plotting
from rnncore.__main__ import main as lm_main
from rnncore.examples import gradients

TINY = ["--hidden", "16", "--layers", "1", "--embed", "8", "--batch", "4", "--bptt", "16", "--quiet",
        "--sample-every", "0", "--steps", "12", "--checkpoint-every", "6"]


@pytest.fixture
def no_matplotlib(monkeypatch):
    def missing():
        raise ImportError("No module named 'matplotlib'")
    monkeypatch.setattr(_plotting, "_import_matplotlib", missing)
    assert not _plotting.have_matplotlib()


def test_line_plot_draws_every_series(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib import colors
    from matplotlib.image import imread
    path = tmp_path / "p.png"
    _plotting.line_plot(path, {"a": ([0, 1, 2, 3], [1.0, 0.5, 0.25, 0.1]), "b": ([0, 3], [0.2, 2.0]),
                               "with nan": ([0, 1, 2], [np.nan, 0.3, -1.0])},
                        logy=True, title="Test", xlabel="x", ylabel="y")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)[..., :3]
    assert img.shape == (440, 720, 3)
    for cycle in ("C0", "C1", "C2"):        # matplotlib's first three line colours: each series drawn
        rgb = np.array(colors.to_rgb(cycle))
        assert (np.abs(img - rgb).max(-1) < 0.02).sum() > 30, cycle
    assert not list(tmp_path.glob(".tmp-*"))   # written to a temporary file and renamed


def test_without_matplotlib_the_numbers_go_to_csv(tmp_path, no_matplotlib):
    path = tmp_path / "curve.png"
    written, note = _plotting.plot_or_csv(str(path), {"a": ([0, 1], [2, 3])},
                                          {"x": [0, 1, 2], "y": [0.5, np.nan, 1e-9]})
    assert written == str(tmp_path / "curve.csv") and not path.exists()
    assert (tmp_path / "curve.csv").read_text() == "x,y\n0,0.5\n1,\n2,1e-09\n"
    assert "\n" not in note and 'pip install "rnncore[plot]"' in note and str(path) in note
    assert _plotting.csv_path("out.svg") == "out.svg.csv"


def test_loss_curve_csv_has_the_history(tmp_path, no_matplotlib):
    history = [(1, 4.0, np.nan), (2, 3.5, 3.6), (3, 3.0, np.nan)]
    written, _ = _plotting.loss_curve(str(tmp_path / "loss.png"), history, 4.3, 3)
    with open(written) as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    assert rows[0] == ["step", "train_bits_per_char", "validation_bits_per_char", "unigram_bits_per_char"]
    assert rows[1:] == [["1", "4", "", "4.3"], ["2", "3.5", "3.6", "4.3"], ["3", "3", "", "4.3"]]


def test_main_job_without_matplotlib_writes_csv_and_says_how(tmp_path, capsys, no_matplotlib):
    png = tmp_path / "loss.png"
    lm_main(TINY + ["--checkpoint", str(tmp_path / "c.npz"), "--plot", str(png)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].endswith(f"loss history {tmp_path / 'loss.csv'}")
    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 1 + 12 and not png.exists()


def test_main_job_without_matplotlib_not_quiet(tmp_path, capsys, no_matplotlib):
    lm_main([a for a in TINY if a != "--quiet"] + ["--checkpoint", str(tmp_path / "c.npz"),
                                                   "--plot", str(tmp_path / "loss.png")])
    out = capsys.readouterr().out.strip().splitlines()
    notes = [line for line in out if "matplotlib" in line]
    assert len(notes) == 1 and 'pip install "rnncore[plot]"' in notes[0]


def test_main_job_plot_with_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    lm_main(TINY + ["--checkpoint", str(tmp_path / "c.npz"), "--plot", str(png)])
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(f"plot {png}")
    assert png.read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "loss.csv").exists()


def test_gradients_example_plot_or_csv(tmp_path, no_matplotlib):
    profiles = {"a": np.array([2.0, 1.0, 0.5]), "b": np.array([1.0, 3.0, 9.0])}
    written, note = gradients.plot_profiles(str(tmp_path / "g.png"), profiles)
    assert written.endswith("g.csv") and note
    assert (tmp_path / "g.csv").read_text().splitlines() == ["steps_back,a,b", "0,1,1", "1,0.5,3", "2,0.25,9"]

"""Plots through matplotlib (the optional ``plot`` extra), drawn on its Agg canvas (no
display, no pyplot state), and the same numbers as CSV when matplotlib is missing.

Used by the main job (the loss curve) and ``rnncore.examples.gradients``.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np

INSTALL_HINT = 'pip install "rnncore[plot]"'


def have_matplotlib():
    try:
        _import_matplotlib()
    except ImportError:
        return False
    return True


def _import_matplotlib():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    return Figure, FigureCanvasAgg


def _write_atomically(path, suffix, write):
    """Call write(file object) on a temporary file beside path, then rename it to path:
    an interrupted write leaves an existing file as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def line_plot(path, series, *, title="", xlabel="", ylabel="", logy=False, markers=()):
    """Draw named series ``{name: (x, y)}`` as lines and save a PNG at path.

    Non-finite points are left out (and, with ``logy``, non-positive ones); the series
    named in ``markers`` (and any single point) get a marker at each point. Raises
    ImportError when matplotlib is not installed."""
    Figure, FigureCanvasAgg = _import_matplotlib()
    fig = Figure(figsize=(7.2, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (x, y) in series.items():
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if logy else True)
        ax.plot(x[ok], y[ok], label=name, marker="o" if name in markers or ok.sum() == 1 else None)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    _write_atomically(path, ".png", lambda f: fig.savefig(f, format="png"))


def write_csv(path, columns):
    """Write ``{header: values}`` (equal lengths) as CSV; NaN is an empty field."""
    names = list(columns)
    cols = [np.asarray(v, np.float64) for v in columns.values()]
    lines = [",".join(names)]
    for row in zip(*cols):
        lines.append(",".join("" if not math.isfinite(v) else f"{v:.10g}" for v in row))
    data = ("\n".join(lines) + "\n").encode()
    _write_atomically(path, ".csv", lambda f: f.write(data))


def csv_path(path):
    """The CSV written instead of the PNG path when matplotlib is missing."""
    root, ext = os.path.splitext(path)
    return (root if ext.lower() == ".png" else path) + ".csv"


def written_path(path):
    """The file plot_or_csv(path, ...) writes: path itself, or its CSV without matplotlib."""
    return path if have_matplotlib() else csv_path(path)


def plot_or_csv(path, series, columns, **labels):
    """The PNG at path through matplotlib, or without it the numbers (``columns``) as
    CSV beside it. Returns (the file written, a one-line note when it is the CSV)."""
    if have_matplotlib():
        line_plot(path, series, **labels)
        return path, None
    out = csv_path(path)
    write_csv(out, columns)
    return out, (f"matplotlib is not installed: wrote the numbers to {out}; {INSTALL_HINT} "
                 f"and run again for the plot {path}")


def loss_curve(path, history, baseline, last_step, *, title="character LSTM", unit="char"):
    """The main job's loss curve: training loss (smoothed over about 1/100 of the run),
    validation loss and the unigram baseline in bits per token (``unit``: char or word),
    against the step. history holds (step, train bits, validation bits or NaN) rows."""
    hist = np.array(history, np.float64).reshape(-1, 3)
    series = {}
    if len(hist):
        w = max(1, len(hist) // 100)
        smoothed = np.convolve(hist[:, 1], np.ones(w) / w, mode="valid")
        series["train"] = (hist[w - 1:, 0], smoothed)
        ok = ~np.isnan(hist[:, 2])
        series["validation"] = (hist[ok, 0], hist[ok, 2])
    series["unigram baseline"] = ([0, max(last_step, 1)], [baseline, baseline])
    columns = {"step": hist[:, 0], f"train_bits_per_{unit}": hist[:, 1],
               f"validation_bits_per_{unit}": hist[:, 2], f"unigram_bits_per_{unit}": np.full(len(hist), baseline)}
    name = {"char": "character"}.get(unit, unit)
    return plot_or_csv(path, series, columns, title=title, xlabel="step", ylabel=f"bits per {name}",
                       markers=("validation",))

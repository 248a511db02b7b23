"""The documentation builds with warnings as errors, and the build fails when a name of
``rnncore.__all__`` is missing from the API reference (CI also builds it, as a step)."""

import pathlib

import pytest

import rnncore

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

# Sphinx and its extensions warn about their own deprecations (napoleon in Sphinx 9); the
# build's own warnings are what -W turns into a failure.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def build(out, capsys):
    from sphinx.cmd.build import build_main
    rc = build_main(["-E", "-W", "--keep-going", "-q", "-b", "dummy", str(DOCS), str(out)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


@pytest.mark.skipif(not DOCS.is_dir(), reason="the docs sources are not here (an installed wheel's tests)")
def test_docs_build_without_warnings(tmp_path, capsys):
    rc, log = build(tmp_path, capsys)
    assert rc == 0, log


@pytest.mark.skipif(not DOCS.is_dir(), reason="the docs sources are not here (an installed wheel's tests)")
def test_docs_build_fails_for_an_undocumented_public_name(tmp_path, capsys, monkeypatch):
    from rnncore.examples import gradients     # documented there, but not this function
    monkeypatch.setattr(rnncore, "make_cell", gradients.make_cell, raising=False)
    monkeypatch.setattr(rnncore, "__all__", [*rnncore.__all__, "make_cell"])
    rc, log = build(tmp_path, capsys)
    assert rc != 0
    assert "rnncore.make_cell is in rnncore.__all__ but the API reference does not document it" in log

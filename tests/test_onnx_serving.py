"""The main job's model served by ONNX Runtime: ``python -m rnncore --export-onnx``
writes a graph whose logits and states equal the rnncore model's, and the README's
serving snippet runs on it and samples text."""

import json
import pathlib
import re

import numpy as np
import pytest

import rnncore
import rnncore.onnx
from rnn_testing import rel_err
from rnncore.__main__ import LanguageModel
from rnncore.__main__ import main as lm_main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TINY = ["--hidden", "32", "--layers", "2", "--embed", "8", "--batch", "4", "--bptt", "16", "--quiet",
        "--sample-every", "0", "--steps", "20", "--checkpoint-every", "10", "--plot", ""]
README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    lm_main(TINY + ["--checkpoint", str(d / "lm.npz"), "--export-onnx", str(d / "rnncore-lm.onnx")])
    return d


def test_exported_main_job_model_equals_rnncore(trained):
    lm = LanguageModel.load(str(trained / "lm.npz"), None)
    sess = ort.InferenceSession(str(trained / "rnncore-lm.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["ids", "h0", "c0"]
    assert [o.name for o in sess.get_outputs()] == ["y", "h_n", "c_n"]
    chars = json.loads(sess.get_modelmeta().custom_metadata_map["vocabulary"])
    assert chars == lm.vocab.chars
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(chars), (9, 3))
    h0, c0 = (rng.standard_normal((2, 3, 32)).astype(np.float32) for _ in range(2))
    got = sess.run(None, {"ids": ids, "h0": h0, "c0": c0})
    lm.model.eval()
    with rnncore.no_grad():
        logits, [(h, c)] = lm.model.forward(ids, [(h0, c0)])
    for a, b in zip(got, (logits, h, c)):
        assert rel_err(a, b) <= 1e-5
    back = rnncore.onnx.load(trained / "rnncore-lm.onnx")
    for k, v in lm.model.params.items():
        np.testing.assert_array_equal(back.params[k], v, err_msg=k)


def readme_snippet():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Serving with ONNX"):]
    section = section[section.index("python -m rnncore --export-onnx rnncore-lm.onnx"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_serving_snippet_samples_text(trained, monkeypatch, capsys):
    code = readme_snippet()
    assert "onnxruntime" in code and "rnncore-lm.onnx" in code
    monkeypatch.chdir(trained)
    exec(compile(code, "README.md (serving snippet)", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("The ") and len(out.strip()) > 4


def test_export_onnx_is_checked_before_training(tmp_path, capsys):
    ck = tmp_path / "lm.npz"
    with pytest.raises(SystemExit) as exit_:
        lm_main(TINY + ["--checkpoint", str(ck), "--export-onnx", str(tmp_path / "missing" / "m.onnx")])
    assert exit_.value.code == 2
    assert "error: --export-onnx: path: the directory" in capsys.readouterr().err
    assert not ck.exists()      # nothing trained, nothing written


def test_export_onnx_without_the_onnx_package(tmp_path, monkeypatch, capsys):
    def missing():
        raise ImportError('rnncore.onnx needs the onnx package: pip install "rnncore[onnx]"')
    monkeypatch.setattr(rnncore.onnx, "_require_onnx", missing)
    with pytest.raises(SystemExit) as exit_:
        lm_main(TINY + ["--checkpoint", str(tmp_path / "lm.npz"), "--export-onnx", str(tmp_path / "m.onnx")])
    assert exit_.value.code == 2
    assert 'error: --export-onnx: rnncore.onnx needs the onnx package: pip install "rnncore[onnx]"' \
        in capsys.readouterr().err
    assert not (tmp_path / "lm.npz").exists()

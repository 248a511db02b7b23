"""The typed stubs (rnncore/_core.pyi) against the compiled module, with mypy's stubtest:
every function of rnncore._core is in the stubs and every stub is in the module; for the
recurrent cells' functions (which carry text signatures) the argument names, order, kinds
and defaults agree as well."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rnncore
from rnncore import _core

pytest.importorskip("mypy")


def under_a_sanitizer():
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps") or under_a_sanitizer(),
                    reason="stubtest runs mypy: checked in the plain run, not under AddressSanitizer")
def test_stubs_match_the_compiled_module():
    package = Path(rnncore.__file__).parent
    assert (package / "_core.pyi").is_file() and (package / "py.typed").is_file()
    env = dict(os.environ)
    if "site-packages" not in str(package):  # a source checkout: point mypy at it
        env["MYPYPATH"] = str(package.parent)
    allowlist = Path(__file__).with_name("stubtest-allowlist.txt")
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "rnncore._core", "--allowlist", str(allowlist)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru", "indrnn"])
def test_cell_functions_carry_their_signatures(cell):
    """So that stubtest (and help(), inspect) compare them argument by argument."""
    for fn in ("forward", "backward", "step_forward", "step_backward"):
        sig = inspect.signature(getattr(_core, f"{cell}_{fn}"))
        params = list(sig.parameters)
        assert params[0] in ("x", "dy", "dh")
        assert ("out" in params) == (fn in ("forward", "backward"))
        if fn in ("forward", "backward"):
            assert sig.parameters["out"].kind is inspect.Parameter.KEYWORD_ONLY

"""Threads, determinism, memory, checkpoints."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import rnncore
from rnncore import checkpoint

KINDS = {"rnn": rnncore.RNN, "lstm": rnncore.LSTM, "gru": rnncore.GRU, "indrnn": rnncore.IndRNN}


def train_steps(layer, seed, steps=3):
    """A few forward/backward/update steps; returns the final weights and outputs."""
    rng = np.random.default_rng(seed)
    opt = rnncore.SGD(layer.params, layer.grads, lr=0.1)
    outs = []
    for _ in range(steps):
        x = rng.standard_normal((12, 9, layer.input_size)).astype(np.float32)
        opt.zero_grad()
        y, _ = layer.forward(x, lengths=rng.integers(1, 13, 9))
        layer.backward(np.ones_like(y))
        opt.step()
        outs.append(y.copy())
    return [p.copy() for p in layer.params.values()] + outs


# ---- threads ---------------------------------------------------------------------------

def test_threads_training_separate_layers_match_serial_runs():
    rnncore.set_num_threads(2)
    make = [lambda i=i: KINDS[k](16, 48, num_layers=2, bidirectional=True, seed=i)
            for i, k in enumerate(["lstm", "gru", "rnn", "indrnn", "lstm", "gru", "rnn"])]
    serial = [train_steps(m(), seed=i) for i, m in enumerate(make)]
    results, errors = [None] * len(make), []

    def work(i):
        try:
            results[i] = train_steps(make[i](), seed=i)
        except Exception as exc:
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(make))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for got, want in zip(results, serial):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("obj", [rnncore.LSTM(3, 4), rnncore.GRUCell(3, 4), rnncore.Linear(3, 4)],
                         ids=["layer", "cell", "linear"])
def test_a_module_shared_between_threads_is_refused_clearly(obj):
    """While one thread is inside forward, another gets RuntimeError (not corrupted state)."""
    x = np.zeros((2, 1, 3) if isinstance(obj, rnncore.LSTM) else (1, 3), np.float32)
    assert obj._busy.acquire(blocking=False)  # as if another thread were inside
    try:
        with pytest.raises(RuntimeError, match="another thread"):
            obj.forward(x)
    finally:
        obj._busy.release()
    obj.forward(x)  # free again


def test_concurrent_use_of_one_layer_never_corrupts():
    layer = rnncore.GRU(8, 32, seed=0)
    x = np.random.default_rng(0).standard_normal((20, 4, 8)).astype(np.float32)
    want, _ = layer.forward(x)
    want = want.copy()
    refused, wrong = [], []

    def work():
        for _ in range(50):
            try:
                y, _ = layer.forward(x)
                if not np.array_equal(y, want):
                    wrong.append(1)
            except RuntimeError:
                refused.append(1)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not wrong  # every call either refused or right


# ---- determinism -----------------------------------------------------------------------

DETERMINISM = """
import hashlib, numpy as np, rnncore
rnncore.set_num_threads({threads})
h = hashlib.sha256()
for kind in ("RNN", "LSTM", "GRU", "IndRNN"):
    layer = getattr(rnncore, kind)(16, 64, num_layers=2, bidirectional=True, dropout=0.3, seed=5)
    rng = np.random.default_rng(1)
    opt = rnncore.Adam(layer.params, layer.grads)
    for _ in range(3):
        x = rng.standard_normal((30, 12, 16)).astype(np.float32)
        opt.zero_grad()
        y, _ = layer.forward(x, lengths=rng.integers(0, 31, 12))
        dx, _ = layer.backward(np.ones_like(y))
        opt.step()
        h.update(y.tobytes()); h.update(dx.tobytes())
    for p in layer.params.values():
        h.update(p.tobytes())
print(h.hexdigest())
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_bits_across_processes(threads):
    env = dict(os.environ)
    digests = {subprocess.run([sys.executable, "-c", DETERMINISM.format(threads=threads)], env=env,
                              capture_output=True, text=True, check=True, timeout=120).stdout.strip()
               for _ in range(2)}
    assert len(digests) == 1, digests


# ---- memory ----------------------------------------------------------------------------

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to read resident memory")
def under_address_sanitizer():
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(under_address_sanitizer(),
                    reason="AddressSanitizer keeps freed memory in quarantine: resident size means nothing there")
def test_ten_thousand_calls_keep_memory_flat():
    layer = rnncore.LSTM(8, 32, num_layers=2, seed=0)
    cell = rnncore.GRUCell(8, 32, seed=0)
    x = np.random.default_rng(0).standard_normal((10, 4, 8)).astype(np.float32)
    dy = np.ones((10, 4, 32), np.float32)

    def calls(n):
        for _ in range(n):
            layer.zero_grad()
            layer.forward(x)
            layer.backward(dy)
            h = cell.forward(x[0])
            cell.backward(h)

    calls(1000)
    before = rss_bytes()
    calls(10000)
    growth = rss_bytes() - before
    assert growth < 4 * 2 ** 20, f"resident memory grew by {growth / 2 ** 20:.1f} MiB over 10,000 calls"


# ---- checkpoints -----------------------------------------------------------------------

def test_model_checkpoint_round_trip(tmp_path):
    a = rnncore.Sequential(rnncore.Embedding(10, 4, seed=0), rnncore.LSTM(4, 6, num_layers=2, seed=1),
                           rnncore.Linear(6, 10, seed=2))
    b = rnncore.Sequential(rnncore.Embedding(10, 4, seed=3), rnncore.LSTM(4, 6, num_layers=2, seed=4),
                           rnncore.Linear(6, 10, seed=5))
    path = tmp_path / "m.npz"
    a.save(path, meta={"epoch": 3})
    assert b.load(path)["epoch"] == 3
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    with np.load(path, allow_pickle=False) as f:
        assert "__manifest__" in f.files
    with pytest.raises(KeyError, match="missing"):
        rnncore.GRU(4, 6).load(path)


def corrupt(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "flipped":
        i = data.index(b"param") + 200  # inside the first array's bytes
        data[i] ^= 0xFF
    elif how == "empty":
        data = b""
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped", "empty"])
def test_damaged_checkpoints_are_refused(tmp_path, how):
    arrays = {"param.w": np.arange(4000, dtype=np.float32).reshape(40, 100), "b": np.ones(3)}
    path = tmp_path / "c.npz"
    checkpoint.save(path, arrays, {"k": 1})
    loaded, meta = checkpoint.load(path)
    assert meta == {"k": 1} and set(loaded) == set(arrays)
    corrupt(path, how)
    with pytest.raises(rnncore.CheckpointError, match=str(path)):
        checkpoint.load(path)


def test_foreign_and_pickled_archives_are_refused(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(rnncore.CheckpointError, match="no manifest"):
        checkpoint.load(plain)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(rnncore.CheckpointError):
        checkpoint.load(pickled)
    with pytest.raises(TypeError, match="pickle"):
        checkpoint.save(tmp_path / "x.npz", {"w": np.array([None], dtype=object)})


def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    checkpoint.save(path, {"w": np.zeros(3)}, {"v": 1})

    def failing_savez(f, **kw):
        f.write(b"partial")
        raise KeyboardInterrupt  # interrupted mid-write

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"w": np.ones(3)}, {"v": 2})
    monkeypatch.undo()
    arrays, meta = checkpoint.load(path)  # the previous checkpoint, intact
    assert meta == {"v": 1} and not arrays["w"].any()
    assert not list(tmp_path.glob(".tmp-*"))

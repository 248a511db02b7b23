"""rnncore.distributed: data parallelism over torch.distributed (gloo on 127.0.0.1).

Two local processes per test, started with their own timeouts and always killed at the
end: ranks built with different seeds start equal; averaged gradients equal a single
process's on the concatenated batch (equal and unequal shares); parameters after N steps
equal a single process's to rounding and are bit-identical across ranks; a rank that is
killed, or hangs, while the other averages gives the survivor a DistributedError within
a bounded time; the main job runs data-parallel under torchrun, writes one checkpoint,
matches the single-process run and resumes exactly."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import rnncore
import rnncore.distributed as rd

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("this PyTorch build has no torch.distributed", allow_module_level=True)

START_TIMEOUT = 180.0  # seconds for a group of processes to finish (torch imports on a loaded 2-core machine)
ENV = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
ENV.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",  # the workers import this file's helpers
           PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.abspath(__file__))]
                                      + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
if os.path.exists("/sys/class/net/lo"):
    ENV["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only, whatever this machine's hostname resolves to

PRELUDE = """
import datetime, json, os, sys, time
import numpy as np
import torch
import rnncore
import rnncore.distributed as rd
rank, world, store, timeout, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
# joining may wait for a slow starter; the collectives of `group` give up after `timeout`
assert rd.init(float(sys.argv[6]), init_method="file://" + store, rank=rank, world_size=world)
group = torch.distributed.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout))
"""


class Ranks:
    """world processes running PRELUDE + body, stdout and stderr in files; every one
    still alive is killed on exit."""

    def __init__(self, tmp_path, body, world=2, timeout=60.0):
        self.dir, self.world = tmp_path, world
        script = tmp_path / "worker.py"
        script.write_text(PRELUDE + textwrap.dedent(body))
        self.procs = []
        for r in range(world):
            with open(tmp_path / f"rank{r}.out", "w") as out, open(tmp_path / f"rank{r}.err", "w") as err:
                self.procs.append(subprocess.Popen(
                    [sys.executable, str(script), str(r), str(world), str(tmp_path / "store"), str(timeout),
                     str(tmp_path), str(START_TIMEOUT)], stdout=out, stderr=err, env=ENV, cwd=tmp_path))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()

    def output(self, r):
        return (self.dir / f"rank{r}.out").read_text() + (self.dir / f"rank{r}.err").read_text()

    def wait(self, r, timeout=START_TIMEOUT):
        try:
            return self.procs[r].wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"rank {r} did not finish within {timeout:.0f} s:\n{self.output(r)}")

    def wait_all(self):
        deadline = time.monotonic() + START_TIMEOUT
        for r in range(self.world):
            code = self.wait(r, max(1.0, deadline - time.monotonic()))
            assert code == 0, f"rank {r} exited with {code}:\n{self.output(r)}"

    def wait_for_file(self, name, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not (self.dir / name).exists():
            for r, p in enumerate(self.procs):
                if p.poll() is not None:
                    pytest.fail(f"rank {r} exited early with {p.returncode}:\n{self.output(r)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not appear within {timeout:.0f} s")
            time.sleep(0.05)


# ---- without processes: the launcher's environment, lanes, errors ------------------------------------
def test_lanes_share_a_batch_in_rank_order():
    for n in range(1, 12):
        for w in range(1, n + 1):
            parts = [rd.lanes(n, r, w) for r in range(w)]
            assert [i for s in parts for i in range(n)[s]] == list(range(n))
            sizes = [s.stop - s.start for s in parts]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    with pytest.raises(ValueError, match="^n: 1 lanes cannot be shared among 2"):
        rd.lanes(1, 0, 2)
    with pytest.raises(ValueError, match="^rank"):
        rd.lanes(4, 2, 2)
    with pytest.raises(ValueError, match="^n"):
        rd.lanes(0, 0, 1)


def test_environment_helpers(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert not rd.launched() and rd.rank() == 0 and rd.world_size() == 1 and rd.is_main()
    assert rd.init() is False  # a single process: nothing to join
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert rd.launched() and rd.rank() == 1 and rd.world_size() == 3 and not rd.is_main()
    assert rd.lanes(7) == slice(3, 5)
    assert rd.default_threads() >= 1
    with pytest.raises(ValueError, match="^timeout: expected a positive"):
        rd.init(0)
    monkeypatch.setenv("RNNCORE_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="^RNNCORE_DIST_TIMEOUT"):
        rd.init()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="^WORLD_SIZE"):
        rd.launched()


def test_without_a_process_group():
    with pytest.raises(RuntimeError, match="^DataParallel: no process group"):
        rd.DataParallel(rnncore.Linear(2, 2))
    with pytest.raises(RuntimeError, match="^barrier: no process group"):
        rd.barrier()


def test_importing_rnncore_distributed_or_the_main_job_does_not_import_torch(tmp_path):
    code = ("import sys, rnncore.distributed, rnncore.__main__ as m\n"
            "m.main(['--steps', '2', '--hidden', '8', '--layers', '1', '--embed', '4', '--batch', '2', '--bptt', '8',"
            " '--quiet', '--sample-every', '0', '--plot', '', '--checkpoint', 'c.npz'])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=START_TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c.npz").exists()


# ---- two processes -------------------------------------------------------------------------------------------
def build(seed):
    return rnncore.Sequential(rnncore.Embedding(7, 4, dtype=np.float64, seed=seed),
                              rnncore.LSTM(4, 6, num_layers=2, dtype=np.float64, seed=seed + 1),
                              rnncore.Linear(6, 7, dtype=np.float64, seed=seed + 2))


def batches():
    return np.random.default_rng(0).integers(0, 7, size=(5, 9, 5))  # (steps, T + 1, B)


def grads_on(model, data):
    xent = rnncore.SoftmaxCrossEntropy()
    model.zero_grad()
    logits, _ = model.forward(data[:-1])
    loss = xent.forward(logits, data[1:])
    model.backward(xent.backward())
    return loss


EQUALITY = """
import torch
from test_distributed import batches, build, grads_on
model = build(10 + 10 * rank)  # a different model on each rank
np.savez(f"{out}/built{rank}.npz", **model.params)
dp = rd.DataParallel(model, bucket_mb=600 / 2 ** 20)  # 600-byte buckets: packed ones and arrays reduced in place
np.savez(f"{out}/start{rank}.npz", **model.params)
data = batches()
# equal shares (4 lanes: 2 each), every rank weighs the same
grads_on(dp, data[0, :, rd.lanes(4)])
dp.average_gradients()
np.savez(f"{out}/equal{rank}.npz", **dp.grads)
# unequal shares (5 lanes: 3 and 2), weighted by lanes; the loss averaged alongside
mine = rd.lanes(5)
loss = grads_on(dp, data[0, :, mine])
(mean_loss,) = dp.average_gradients(weight=mine.stop - mine.start, values=[loss])
np.savez(f"{out}/weighted{rank}.npz", loss=mean_loss, **dp.grads)
opt = rnncore.Adam(dp.params, dp.grads, lr=0.05)
for step in range(len(data)):
    grads_on(dp, data[step, :, mine])
    dp.average_gradients(weight=mine.stop - mine.start)
    rnncore.clip_grad_norm(dp.grads, 1.0)
    opt.step()
np.savez(f"{out}/trained{rank}.npz", **dp.params)
# bad use: an average with a non-positive weight; ranks that built different models
errors = []
try:
    dp.average_gradients(weight=0)
except ValueError as exc:
    errors.append(str(exc))
try:
    rd.DataParallel(rnncore.Linear(3, 2 + rank))
except ValueError as exc:
    errors.append(str(exc))
json.dump(errors, open(f"{out}/errors{rank}.json", "w"))
# rnncore.torch modules under torch's own DistributedDataParallel
import rnncore.torch
torch.manual_seed(3)
net = rnncore.torch.GRU(3, 4, num_layers=2, dtype=torch.float64)
ddp = torch.nn.parallel.DistributedDataParallel(net)
x = torch.from_numpy(np.random.default_rng(1).standard_normal((6, 4, 3)))
ddp(x[:, rd.lanes(4)])[0].square().mean().backward()
np.savez(f"{out}/ddp{rank}.npz", **{n: p.grad.numpy() for n, p in net.named_parameters()})
rd.shutdown()
"""


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def assert_close(a, b, tol, what):
    err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


@pytest.mark.slow
def test_data_parallel_equals_a_single_process_on_the_whole_batch(tmp_path):
    with Ranks(tmp_path, EQUALITY) as ranks:
        ranks.wait_all()
    built = [load(tmp_path / f"built{r}.npz") for r in range(2)]
    start = [load(tmp_path / f"start{r}.npz") for r in range(2)]
    assert any(not np.array_equal(built[0][k], built[1][k]) for k in built[0])  # different seeds...
    for k in built[0]:  # ...and both ranks start from rank 0's weights
        np.testing.assert_array_equal(start[0][k], built[0][k], err_msg=k)
        np.testing.assert_array_equal(start[1][k], built[0][k], err_msg=k)
    data = batches()
    single = build(10)
    for name, lanes in (("equal", 4), ("weighted", 5)):
        loss = grads_on(single, data[0, :, :lanes])
        got = [load(tmp_path / f"{name}{r}.npz") for r in range(2)]
        for k, g in single.grads.items():
            np.testing.assert_array_equal(got[0][k], got[1][k], err_msg=f"{name} {k}: ranks differ")
            assert_close(got[0][k], g, 1e-12, f"{name} {k}")
        if name == "weighted":
            assert abs(float(got[0]["loss"]) - loss) <= 1e-12 * abs(loss)
    opt = rnncore.Adam(single.params, single.grads, lr=0.05)
    for step in range(len(data)):
        grads_on(single, data[step, :, :5])
        rnncore.clip_grad_norm(single.grads, 1.0)
        opt.step()
    trained = [load(tmp_path / f"trained{r}.npz") for r in range(2)]
    for k, p in single.params.items():
        np.testing.assert_array_equal(trained[0][k], trained[1][k], err_msg=f"{k}: ranks differ")
        assert_close(trained[0][k], p, 1e-10, f"after {len(data)} steps: {k}")
        assert not np.array_equal(p, built[0][k])  # it moved
    for r in range(2):
        errors = json.loads((tmp_path / f"errors{r}.json").read_text())
        assert len(errors) == 2 and errors[0].startswith("weight: expected a positive"), errors
        assert errors[1].startswith("module: rank 1's parameters differ from rank 0's"), errors
    from rnncore.torch import GRU
    torch.manual_seed(3)
    net = GRU(3, 4, num_layers=2, dtype=torch.float64)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((6, 4, 3)))
    net(x)[0].square().mean().backward()
    ddp = [load(tmp_path / f"ddp{r}.npz") for r in range(2)]
    for n, p in net.named_parameters():
        assert_close(ddp[0][n], p.grad.numpy(), 1e-12, f"DistributedDataParallel {n}")


FAILURE = """
model = rnncore.Linear(3, 2, seed=rank)
dp = rd.DataParallel(model, group=group)
for _ in range(3):
    dp.average_gradients()
if rank == 1:
    open(f"{out}/ready", "w").close()
    time.sleep(600)  # stops taking part: the test kills this process, or leaves it hanging
try:
    start = time.time()
    while True:
        dp.average_gradients()
except rd.DistributedError as exc:
    print(json.dumps({"error": str(exc), "at": time.time(), "waited": time.time() - start}))
    sys.exit(3)
"""


def survivor_report(ranks):
    code = ranks.wait(0, 120)
    assert code == 3, f"rank 0 exited with {code}, expected a DistributedError:\n{ranks.output(0)}"
    report = json.loads((ranks.dir / "rank0.out").read_text().strip().splitlines()[-1])
    assert report["error"].startswith("average_gradients: the collective over 2 processes failed")
    assert "died, was killed or stopped responding" in report["error"]
    return report


@pytest.mark.slow
def test_a_killed_rank_gives_the_survivor_an_error_within_seconds(tmp_path):
    """The survivor's collective timeout is 60 s; a killed peer's closed connections are
    noticed long before that."""
    with Ranks(tmp_path, FAILURE, timeout=60.0) as ranks:
        ranks.wait_for_file("ready")
        time.sleep(0.5)  # rank 0 is now waiting in an all-reduce
        killed_at = time.time()
        ranks.procs[1].send_signal(signal.SIGKILL)
        report = survivor_report(ranks)
    assert report["at"] - killed_at < 20.0, report


@pytest.mark.slow
def test_a_hung_rank_gives_the_survivor_an_error_after_the_timeout(tmp_path):
    """A peer that stays alive but stops taking part: the all-reduce gives up after the
    process group's timeout (3 s here), not never."""
    with Ranks(tmp_path, FAILURE, timeout=3.0) as ranks:
        ranks.wait_for_file("ready")
        ready_at = time.time()
        report = survivor_report(ranks)
        assert ranks.procs[1].poll() is None  # still hanging: killed on leaving the with block
    assert 2.0 <= report["waited"] and report["at"] - ready_at < 3.0 + 30.0, report


# ---- the main job under torchrun ---------------------------------------------------------------------------
JOB = ["--hidden", "24", "--layers", "2", "--embed", "8", "--batch", "5", "--bptt", "12", "--lr", "0.01",
       "--checkpoint-every", "3", "--sample-every", "3", "--sample-length", "20"]


def torchrun(tmp_path, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--max-restarts", "0", "-m", "rnncore", *args]
    # its own session: torchrun and its workers are killed together if it does not finish
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish within {START_TIMEOUT:.0f} s:\n{stdout}\n{stderr}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, f"torchrun failed:\n{stdout}\n{stderr}"
    return stdout


@pytest.mark.slow
def test_main_job_runs_data_parallel_under_torchrun_and_resumes(tmp_path):
    from importlib import resources

    from rnncore import checkpoint
    from rnncore.__main__ import main as lm_main

    text = tmp_path / "text.txt"
    corpus = resources.files("rnncore.data").joinpath("corpus.txt").read_text(encoding="utf-8")
    text.write_text(corpus[:30000], encoding="utf-8")
    common = JOB + ["--text", str(text)]
    out = torchrun(tmp_path, *common, "--steps", "6", "--checkpoint", "dp.npz", "--plot", "dp.png")
    lines = out.strip().splitlines()
    finals = [l for l in lines if l.startswith("validation ")]
    assert len(finals) == 1 and "after 6 steps" in finals[0], out  # rank 0 alone prints
    assert sum("data parallel" in l for l in lines) == 1 and "x 2 processes" in out
    assert sum(l.startswith("--- sample") for l in lines) == 2
    assert (tmp_path / "dp.png").read_bytes()[:4] == b"\x89PNG"
    # one checkpoint (and its best-validation companion), written by rank 0 alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp.best.npz", "dp.npz", "dp.png", "text.txt"]
    dp, meta = checkpoint.load(tmp_path / "dp.npz")
    assert meta["step"] == 6 and dp["state.h"].shape == (2, 5, 24)  # the carried state of all 5 lanes

    # the same run in one process: the same model to rounding
    lm_main(common + ["--steps", "6", "--checkpoint", str(tmp_path / "one.npz"), "--plot", "", "--quiet"])
    one, _ = checkpoint.load(tmp_path / "one.npz")
    for k, v in one.items():
        if v.dtype.kind == "f" and k != "history":
            assert_close(dp[k], v, 1e-4, k)
    assert checkpoint.load(tmp_path / "dp.best.npz")[1]["step"] == meta["best_step"]
    np.testing.assert_allclose(dp["history"][:, 1], one["history"][:, 1], rtol=1e-5)

    # stopped after 3 steps and resumed (under torchrun): where the uninterrupted run ends, bit for bit
    torchrun(tmp_path, *common, "--steps", "3", "--checkpoint", "r.npz", "--plot", "")
    shutil.copy(tmp_path / "r.npz", tmp_path / "r1.npz")
    torchrun(tmp_path, *common, "--steps", "6", "--checkpoint", "r.npz", "--plot", "", "--resume")
    resumed, meta = checkpoint.load(tmp_path / "r.npz")
    assert meta["step"] == 6
    for k, v in dp.items():
        np.testing.assert_array_equal(resumed[k], v, err_msg=k)
    # and the data-parallel checkpoint resumes in one process (every lane's state is in it)
    lm_main(common + ["--steps", "6", "--checkpoint", str(tmp_path / "r1.npz"), "--plot", "", "--quiet", "--resume"])
    single, _ = checkpoint.load(tmp_path / "r1.npz")
    for k, v in dp.items():
        if v.dtype.kind == "f" and k != "history":
            assert_close(single[k], v, 1e-4, f"resumed in one process: {k}")

"""Tensor parallelism under msrun: 2 workers on a tiny Llama (4 heads, 2 KV heads) against one process."""
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import PTQ
from mindspore_ptq.io import save_quantized
from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.io.sharding import manifest_path, merge
from mindspore_ptq.app.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from ms_infra.checkpoint import read_checkpoint, save_checkpoint_atomic
from tests.conftest import REPO_ROOT, build_tiny, tiny_weights
from tests.distributed.tp_worker import GENERATED, GENERATION_PROMPT, REPRODUCIBLE
from tests.network_helpers.test_helper_errors import TINY_YAML

WORKERS = 2
APPROACH = "a8w8c8"
RNG = np.random.default_rng(3)
CALIBRATION = RNG.integers(1, 90, (4, 1, 24)).astype(np.int32)
PROBE = RNG.integers(1, 90, (1, 20)).astype(np.int32)

# Only the tests that launch workers skip without msrun (through `tp_run`, or marked).
NO_MSRUN = "msrun is not installed beside this python"
needs_msrun = pytest.mark.skipif(shutil.which("msrun", path=os.path.dirname(sys.executable)) is None, reason=NO_MSRUN)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_yaml(directory, model_parallel, checkpoint):
    data = yaml.safe_load(yaml.safe_dump(TINY_YAML))
    data.update(load_checkpoint=str(checkpoint), parallel_config={"model_parallel": model_parallel})
    path = directory / f"tiny_mp{model_parallel}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def tp_run(tmp_path_factory):
    """Launch the worker with msrun once; returns (work dir, rank-0 results, float checkpoint)."""
    if shutil.which("msrun", path=os.path.dirname(sys.executable)) is None:
        pytest.skip(NO_MSRUN)
    work = tmp_path_factory.mktemp("tp")
    checkpoint = save_checkpoint_atomic(tiny_weights(), work / "tiny.ckpt")
    np.savez(work / "data.npz", calibration=CALIBRATION, probe=PROBE)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    command = ["msrun", f"--worker_num={WORKERS}", f"--local_worker_num={WORKERS}", f"--master_port={free_port()}",
               f"--log_dir={work / 'logs'}", "--join=True", "--cluster_time_out=120",
               str(REPO_ROOT / "tests" / "distributed" / "tp_worker.py"),
               str(write_yaml(work, WORKERS, checkpoint)), str(work), APPROACH]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    logs = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted((work / "logs").glob("worker_*")))
    assert done.returncode == 0 and (work / "tp_results.npz").is_file(), f"msrun failed:\n{logs}"
    return work, dict(np.load(work / "tp_results.npz")), checkpoint


def test_float_logits_with_tp2_equal_tp1(tp_run):
    _, results, _ = tp_run
    expected = build_tiny()(Tensor(PROBE)).asnumpy()
    np.testing.assert_allclose(results["float_logits"], expected, atol=1e-4, rtol=1e-4)


def test_merged_quantized_checkpoint_equals_the_single_process_one(tp_run, tmp_path):
    work, results, _ = tp_run
    network = build_tiny()
    config = approach_config(APPROACH, **REPRODUCIBLE)
    ptq = PTQ(config)
    ptq.apply(network, None, list(CALIBRATION))
    ptq.convert(network)
    np.testing.assert_allclose(results["quant_logits"], network(Tensor(PROBE)).asnumpy(), atol=1e-3, rtol=1e-3)
    single = read_checkpoint(save_quantized(network, tmp_path / "single.ckpt", config, float_dtype=ms.float32))
    merged = read_checkpoint(merge(manifest_path(work / f"{APPROACH}.ckpt")))
    assert set(merged) == set(single)
    for name, value in single.items():  # bit for bit: int8 weights, scales, zero points, float weights
        np.testing.assert_array_equal(merged[name].asnumpy(), value.asnumpy(), err_msg=name)


def test_merged_checkpoint_deploys_with_one_process(tp_run):
    work, results, checkpoint = tp_run
    helper = MFParallelLlama2Helper(str(write_yaml(work, 1, checkpoint)))
    network = load_network(helper, work / f"{APPROACH}.ckpt")
    np.testing.assert_allclose(network(Tensor(PROBE)).asnumpy(), results["quant_logits"], atol=1e-3, rtol=1e-3)


def test_graph_generation_with_tp2_equals_one_process(tp_run):
    """Greedy GRAPH_MODE generation: both ranks produce the same tokens as one process on the merged checkpoint."""
    work, results, checkpoint = tp_run
    per_rank = [np.load(work / f"generated_rank{rank}.npy") for rank in range(WORKERS)]
    helper = MFParallelLlama2Helper(str(write_yaml(work, 1, checkpoint)))
    ms.set_context(mode=ms.GRAPH_MODE)
    network = load_network(helper, work / f"{APPROACH}.ckpt")
    prompt = PROBE[0, :GENERATION_PROMPT]
    single = network.generate([prompt], max_new_tokens=GENERATED, eos_token_id=-1)[0]
    assert len(single) == GENERATION_PROMPT + GENERATED and np.array_equal(single[:GENERATION_PROMPT], prompt)
    for rank, tokens in enumerate(per_rank):
        np.testing.assert_array_equal(tokens, single, err_msg=f"rank {rank}")


def test_missing_rank_file_is_named(tp_run, tmp_path):
    work, _, _ = tp_run
    for item in work.glob(f"{APPROACH}*"):
        if item.name != f"{APPROACH}.ckpt":  # the shards, their manifest and config; not an earlier merge
            shutil.copy(item, tmp_path / item.name)
    (tmp_path / f"{APPROACH}_rank1.ckpt").unlink()
    with pytest.raises(FileNotFoundError, match=f"{APPROACH}_rank1.ckpt"):
        merge(manifest_path(tmp_path / f"{APPROACH}.ckpt"))


def test_worker_count_must_match_model_parallel(tmp_path):
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, 2, tmp_path / "unused.ckpt")))
    with pytest.raises(ValueError, match="1 worker\\(s\\) are running .* launch msrun with --worker_num=2"):
        helper.set_context(ms.PYNATIVE_MODE)
    with pytest.raises(ValueError, match="model_parallel is 2 but 1 worker"):
        helper.create_network()


def test_model_parallel_must_divide_heads(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(TINY_YAML))
    data["parallel_config"] = {"model_parallel": 3}
    path = tmp_path / "mp3.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="model_parallel \\(3\\) does not divide model_config.num_heads"):
        MFParallelLlama2Helper(str(path))




@needs_msrun
def test_launcher_fails_loudly_with_the_failing_log_tail(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("raise ValueError('the calibration file is missing')\n")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], "WORKERS": "1",
           "PYTHON": sys.executable, "LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run(["bash", str(REPO_ROOT / "example" / "ptq" / "msrun.sh"), str(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "the calibration file is missing" in done.stderr and "last 40 lines" in done.stderr

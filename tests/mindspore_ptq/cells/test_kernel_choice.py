"""Deployed cells run the kernels their backend picks: the CPU kernels here (not the portable fallback), with the
portable path's outputs, and the Ascend bindings are built for BackendTarget.ASCEND."""
import shutil

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import PTQ, BackendTarget, PTQMode
from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.cells.linear import WeightQuantLinear
from mindspore_ptq.io import save_quantized
from mindspore_ptq.kernels import kernels_available
from mindspore_ptq.kernels.ascend import AscendA8W8DynamicMatMul, AscendW8MatMul
from mindspore_ptq.kernels.cpu import kernel_calls
from ms_infra.checkpoint import load_checkpoint_into
from tests.conftest import build_tiny

RNG = np.random.default_rng(5)
CALIBRATION = [RNG.integers(1, 90, (1, 40)).astype(np.int32) for _ in range(3)]
PROBE = Tensor(RNG.integers(1, 90, (1, 24)).astype(np.int32))
# Relative tolerance against the portable path: W8 sums in another order (float), A8W8 is integer arithmetic.
TOLERANCE = {"a16w8": 1e-5, "a8w8c8": 1e-5, "a8w8c8_per_token": 1e-5, "c8": 1e-5}


def deployed(name, backend, checkpoint):
    network = build_tiny(seed=7)
    config = approach_config(name, mode=PTQMode.DEPLOY, backend=backend)
    ptq = PTQ(config)
    ptq.apply(network)
    ptq.convert(network)
    load_checkpoint_into(network, checkpoint)
    return network


def linears(network):
    return [cell for _, cell in network.cells_and_names() if isinstance(cell, WeightQuantLinear)]


@pytest.fixture(scope="module", params=sorted(TOLERANCE))
def checkpoint(request, tmp_path_factory):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network = build_tiny()
    ptq = PTQ(approach_config(request.param))
    ptq.apply(network, None, CALIBRATION)
    ptq.convert(network)
    return request.param, save_quantized(network, tmp_path_factory.mktemp(request.param) / "q.ckpt",
                                         ptq.quantized_config)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler: the portable path is the one that runs")
def test_cpu_kernels_run_in_graph_mode_and_match_the_portable_path(checkpoint):
    name, path = checkpoint
    if name == "c8":
        pytest.skip("c8 has no int8 linears (its decode attention kernel is tested below)")
    assert kernels_available()
    portable, fast = deployed(name, BackendTarget.PORTABLE, path), deployed(name, BackendTarget.NONE, path)
    assert all(cell.kernel is None for cell in linears(portable))
    assert linears(fast) and all(cell.kernel is not None for cell in linears(fast))
    ms.set_context(mode=ms.GRAPH_MODE)
    expected = portable(PROBE).asnumpy()
    calls = kernel_calls()
    got = fast(PROBE).asnumpy()
    assert kernel_calls() > calls  # the kernels ran, not a fallback
    np.testing.assert_allclose(got, expected, atol=TOLERANCE[name] * np.abs(expected).max())


def test_ascend_backend_builds_the_ascend_bindings(tmp_path):
    network = build_tiny()
    ptq = PTQ(approach_config("a16w8"))
    ptq.apply(network)
    ptq.convert(network)
    path = save_quantized(network, tmp_path / "a16w8.ckpt", ptq.quantized_config)
    kernels = {type(cell.kernel) for cell in linears(deployed("a16w8", BackendTarget.ASCEND, path))}
    assert kernels == {AscendW8MatMul}
    network = build_tiny()
    ptq = PTQ(approach_config("a8w8c8_per_token", mode=PTQMode.DEPLOY, backend=BackendTarget.ASCEND))
    ptq.apply(network)
    kernels = {type(c.wrapper.quantized.kernel) for c in ptq.cells if c.kind == "linear"}
    assert kernels == {AscendA8W8DynamicMatMul}


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler: the portable path is the one that runs")
def test_int8_kv_cache_decode_steps_attend_with_the_kernel_like_the_portable_path(checkpoint):
    """Decode steps of a C8 network whose layers run their cells read the int8 cache's valid prefix in the
    attention kernel; logits as portable."""
    name, path = checkpoint
    if not name.endswith("c8"):
        pytest.skip("no int8 KV cache")
    portable, fast = deployed(name, BackendTarget.PORTABLE, path), deployed(name, BackendTarget.NONE, path)
    for layer in fast.model.layers:  # as for a layer the decode-layer kernel cannot run (cells.decode_layer)
        layer.fused_decode = False
    caches = [cell for _, cell in fast.cells_and_names() if getattr(cell, "fused_decode", False)]
    assert len(caches) == 2 and all(hasattr(cache, "key_cache") for cache in caches)  # one per decoder layer
    ms.set_context(mode=ms.GRAPH_MODE)
    prompt = list(PROBE.asnumpy()[0, :10])
    logits = []
    for network in (portable, fast):
        network.generate([prompt], max_new_tokens=1, eos_token_id=-1)  # prefill the cache
        steps = [network(Tensor([[tok]], ms.int32), Tensor([len(prompt) + 1 + i], ms.int32)).asnumpy()
                 for i, tok in enumerate((5, 17, 33))]
        logits.append(np.stack(steps))
    calls = kernel_calls()
    np.testing.assert_array_equal(fast.generate([prompt], max_new_tokens=4, eos_token_id=-1)[0],
                                  portable.generate([prompt], max_new_tokens=4, eos_token_id=-1)[0])
    assert kernel_calls() > calls
    np.testing.assert_allclose(logits[1], logits[0], atol=1e-4 * np.abs(logits[0]).max())

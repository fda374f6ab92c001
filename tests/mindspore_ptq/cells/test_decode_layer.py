"""A decoder layer's decode step as one kernel call (cells.decode_layer, kernels/decode_layer.cpp) against the
layer's own cells on the portable path: the same logits, the same KV cache contents (int8 caches bit-exact), the
same greedy tokens, in GRAPH_MODE and PyNative; the kernel is what runs, and layers it cannot run keep their cells."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import PTQ, BackendTarget, PTQMode
from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.cells.decode_layer import FusedDecodeLayer, fuse_decode_layers
from mindspore_ptq.cells.kronecker_rotation import KroneckerRotation
from mindspore_ptq.cells.linear import WeightQuantLinear
from mindspore_ptq.io import save_quantized
from mindspore_ptq.kernels.cpu import kernel_calls
from ms_infra.checkpoint import load_checkpoint_into
from tests.conftest import TINY_ARGS, build_tiny
from tests.mindspore_ptq.kernels.test_cpu_kernels import needs_kernels

RNG = np.random.default_rng(11)
CALIBRATION = [RNG.integers(1, 90, (1, 40)).astype(np.int32) for _ in range(3)]
PROMPT = [int(t) for t in RNG.integers(1, 90, 13)]
STEPS = (5, 17, 33, 2, 71)
# fp32: the float network; the others: formats of every kind (W8; A8W8 static with the wo smoothing multiply and a
# float w2; A8W8 per token; float linears over an int8 cache).
APPROACHES = ("fp32", "a16w8", "a8w8c8", "a8w8c8_per_token", "c8")

pytestmark = needs_kernels


def quantized_checkpoint(name, folder):
    network = build_tiny()
    ptq = PTQ(approach_config(name))
    ptq.apply(network, None, CALIBRATION)
    ptq.convert(network)
    return save_quantized(network, folder / f"{name}.ckpt", ptq.quantized_config)


def deployed(name, backend, checkpoint):
    network = build_tiny()
    if name == "fp32":
        if backend is BackendTarget.NONE:
            fuse_decode_layers(network.model.layers.cells_and_names())
        return network
    ptq = PTQ(approach_config(name, mode=PTQMode.DEPLOY, backend=backend))
    ptq.apply(network)
    ptq.convert(network)
    load_checkpoint_into(network, checkpoint)
    return network


def decode_steps(network):
    """Prefill PROMPT, then the logits of each decode step of STEPS and the caches after them."""
    network.generate([PROMPT], max_new_tokens=1, eos_token_id=-1)
    logits = [network(Tensor([[token]], ms.int32), Tensor([len(PROMPT) + 1 + i], ms.int32)).asnumpy()
              for i, token in enumerate(STEPS)]
    caches = {p.name: p.asnumpy() for p in network.get_parameters() if p.name.endswith(("key_cache", "value_cache"))}
    return np.stack(logits), caches


@pytest.fixture(scope="module", params=APPROACHES)
def approach(request, tmp_path_factory):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    name = request.param
    return name, None if name == "fp32" else quantized_checkpoint(name, tmp_path_factory.mktemp(name))


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE], ids=["graph", "pynative"])
def test_fused_decode_equals_the_layer_cells(approach, mode):
    name, checkpoint = approach
    portable, fused = deployed(name, BackendTarget.PORTABLE, checkpoint), deployed(name, BackendTarget.NONE, checkpoint)
    assert not any(layer.fused_decode for layer in portable.model.layers)
    assert all(layer.fused_decode for layer in fused.model.layers)
    ms.set_context(mode=mode)
    expected_logits, expected_caches = decode_steps(portable)
    logits, caches = decode_steps(fused)
    np.testing.assert_allclose(logits, expected_logits, atol=1e-5 * np.abs(expected_logits).max())
    for key, expected in expected_caches.items():
        if expected.dtype == np.int8:  # the step's key/value encoded like the portable cache: exactly
            np.testing.assert_array_equal(caches[key], expected, err_msg=key)
        else:
            np.testing.assert_allclose(caches[key], expected, atol=1e-5 * np.abs(expected).max(), err_msg=key)
    np.testing.assert_array_equal(fused.generate([PROMPT], max_new_tokens=6, eos_token_id=-1)[0],
                                  portable.generate([PROMPT], max_new_tokens=6, eos_token_id=-1)[0])


def test_a_decode_step_is_one_kernel_call_per_layer(approach):
    """Each decode step makes one kernel call per decoder layer, plus the quantized lm_head's own."""
    name, checkpoint = approach
    network = deployed(name, BackendTarget.NONE, checkpoint)
    ms.set_context(mode=ms.GRAPH_MODE)
    network.generate([PROMPT], max_new_tokens=2, eos_token_id=-1)  # compiles both graphs
    head_kernels = sum(1 for _, cell in network.lm_head.cells_and_names()
                       if isinstance(cell, WeightQuantLinear) and cell.kernel is not None)
    calls = kernel_calls()
    network(Tensor([[7]], ms.int32), Tensor([len(PROMPT) + 2], ms.int32)).asnumpy()
    assert kernel_calls() - calls == TINY_ARGS.num_layers + head_kernels


def test_layers_the_kernel_cannot_run_keep_their_cells():
    network = build_tiny()
    layer = network.model.layers[1]
    half = TINY_ARGS.ffn_hidden_size // 2
    layer.feed_forward.set_down_input_rotation(KroneckerRotation(np.eye(2), np.eye(half)))
    assert FusedDecodeLayer.unsupported(layer) == "w2's input is rotated online"
    assert fuse_decode_layers(network.model.layers.cells_and_names()) == 1
    assert network.model.layers[0].fused_decode and not layer.fused_decode
    ptq = PTQ(approach_config("a16w8"))
    ptq.apply(network)  # calibrating wrappers in place: no decode format
    assert FusedDecodeLayer.unsupported(network.model.layers[0]) == \
        "LinearQuantWrapper runs format None, which the kernel does not"


def test_a_per_token_int8_cache_keeps_the_layer_cells(tmp_path):
    """No kernel reads the per-token cache format: DEPLOY keeps every layer's cells (and still decodes)."""
    checkpoint = quantized_checkpoint("c8_per_token", tmp_path)
    network = deployed("c8_per_token", BackendTarget.NONE, checkpoint)
    layer = network.model.layers[0]
    assert not layer.fused_decode
    assert FusedDecodeLayer.unsupported(layer) == \
        "PerTokenInt8StaticKVCache runs format 'int8_per_token', which the kernel does not"
    assert len(network.generate([PROMPT], max_new_tokens=3, eos_token_id=-1)[0]) == len(PROMPT) + 3


def test_a_length_outside_the_cache_is_an_error():
    network = build_tiny()
    fuse_decode_layers(network.model.layers.cells_and_names())
    network.generate([PROMPT], max_new_tokens=1, eos_token_id=-1)
    with pytest.raises(RuntimeError):
        network(Tensor([[3]], ms.int32), Tensor([TINY_ARGS.seq_length + 1], ms.int32)).asnumpy()

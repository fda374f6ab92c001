"""The incremental paths (prefill + decode, GRAPH_MODE, padded batches) agree with the full forward."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from tests.conftest import TINY_ARGS, build_tiny

PROMPTS = [[5, 17, 33, 2, 9, 41, 7], [12, 3], [60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70], [8, 44, 20, 1]]


def test_prefill_and_decode_logits_equal_full_forward():
    net = build_tiny()
    tokens = PROMPTS[0] + [11, 23, 35, 47]
    full = net(Tensor([tokens], ms.int32)).asnumpy()[0]
    prompt = len(PROMPTS[0])
    padded = np.zeros((1, 16), np.int32)
    padded[0, :prompt] = PROMPTS[0]
    steps = [net(Tensor(padded), Tensor([prompt], ms.int32)).asnumpy()[0]]
    for position in range(prompt, len(tokens)):
        steps.append(net(Tensor([[tokens[position]]], ms.int32), Tensor([position + 1], ms.int32)).asnumpy()[0])
    np.testing.assert_allclose(np.stack(steps), full[prompt - 1:], atol=1e-5)


def test_padded_batch_of_four_equals_one_by_one():
    batched = build_tiny(TINY_ARGS.__class__(**{**TINY_ARGS.__dict__, "batch_size": 4}))
    single = build_tiny()
    together = batched.generate(PROMPTS, max_new_tokens=10, eos_token_id=-1)
    alone = [single.generate([p], max_new_tokens=10, eos_token_id=-1)[0] for p in PROMPTS]
    for got, expected in zip(together, alone):
        np.testing.assert_array_equal(got, expected)


def test_stop_ends_a_row_early_and_keeps_its_prefix():
    net = build_tiny()
    full = net.generate([PROMPTS[0]], max_new_tokens=10, eos_token_id=-1)[0]
    stopped = net.generate([PROMPTS[0]], max_new_tokens=10, eos_token_id=-1, stop=lambda new: len(new) == 3)[0]
    np.testing.assert_array_equal(stopped, full[: len(PROMPTS[0]) + 3])


def test_graph_mode_generation_equals_pynative():
    net = build_tiny()
    pynative = net.generate([PROMPTS[2]], max_new_tokens=20, eos_token_id=-1)[0]
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = build_tiny().generate([PROMPTS[2]], max_new_tokens=20, eos_token_id=-1)[0]
    np.testing.assert_array_equal(graph, pynative)


def test_graph_mode_real_model_equals_pynative(smollm2_artifacts):
    from network_helpers import MFParallelLlama2Helper
    helper = MFParallelLlama2Helper(str(smollm2_artifacts["yaml"]))
    prompt = helper.create_tokenizer()("Passage: The Normans were the people who gave their name to Normandy."
                                       "\nQuestion: Who gave their name to Normandy?\nAnswer:",
                                       add_special_tokens=False)["input_ids"]
    network = helper.create_network()
    pynative = network.generate([prompt], max_new_tokens=8)[0]
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = network.generate([prompt], max_new_tokens=8)[0]
    assert len(graph) > len(prompt)
    np.testing.assert_array_equal(graph, pynative)


def test_generate_rejects_too_many_prompts_and_no_room():
    net = build_tiny()
    with pytest.raises(ValueError, match="batch_size is 1"):
        net.generate(PROMPTS[:2], max_new_tokens=2)
    with pytest.raises(ValueError, match="no room to generate"):
        net.generate([list(range(1, 65))], max_new_tokens=2)

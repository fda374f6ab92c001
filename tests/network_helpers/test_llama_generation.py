"""The incremental paths (prefill + decode, GRAPH_MODE, padded batches) agree with the full forward."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from network_helpers.llama.generation import choose_tokens, chunk_starts, prefill
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


@pytest.mark.parametrize("chunk", [16, 24, 64], ids=["three-chunks", "last-chunk-pulled-back", "one-chunk"])
def test_chunked_prefill_logits_equal_the_full_forward(chunk):
    """Prefill of a 60-token prompt in chunks (24: starts 0, 24, 40, the last one overlapping), then decode."""
    net = build_tiny()
    tokens = list(np.random.default_rng(3).integers(1, 90, 63))
    prompt = 60
    full = net(Tensor([tokens], ms.int32)).asnumpy()[0]
    assert chunk_starts(prompt, chunk, TINY_ARGS.seq_length)[-1] + chunk <= TINY_ARGS.seq_length
    steps = [prefill(net, np.array([tokens[:prompt]], np.int32), np.array([prompt], np.int32), chunk)[0]]
    for position in range(prompt, len(tokens)):
        steps.append(net(Tensor([[tokens[position]]], ms.int32), Tensor([position + 1], ms.int32)).asnumpy()[0])
    np.testing.assert_allclose(np.stack(steps), full[prompt - 1:], atol=1e-5)


def test_chunked_prefill_of_a_ragged_batch_takes_each_rows_last_token():
    batched = build_tiny(TINY_ARGS.__class__(**{**TINY_ARGS.__dict__, "batch_size": 2}))
    single = build_tiny()
    rows = [list(range(1, 31)), list(range(40, 45))]  # 30 and 5 tokens: their last tokens in different chunks
    batch = np.zeros((2, 30), np.int32)
    for i, row in enumerate(rows):
        batch[i, :len(row)] = row
    logits = prefill(batched, batch, np.array([30, 5], np.int32), 16)
    for row, got in zip(rows, logits):
        np.testing.assert_allclose(got, single(Tensor([row], ms.int32)).asnumpy()[0, -1], atol=1e-5)


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


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (3, 1.0), (0, 0.5)], ids=["all", "top-k", "nucleus"])
def test_sampling_keeps_a_valid_candidate_set(top_k, top_p):
    """top_p=1.0 keeps every token even when the float cumulative sum ends just below 1 (it used to crash)."""
    net = build_tiny()
    out = net.generate([PROMPTS[0]], max_new_tokens=6, do_sample=True, top_k=top_k, top_p=top_p, eos_token_id=-1)[0]
    new = out[len(PROMPTS[0]):]
    assert len(new) == 6 and ((0 <= new) & (new < TINY_ARGS.vocab_size)).all()


def test_top_p_one_over_a_large_flat_vocabulary_samples_a_real_token():
    """49152 equal float32 probabilities sum to just below 1.0, which used to keep one token too many."""
    logits = np.zeros((1, 49152), np.float32)
    assert np.cumsum(np.full(49152, 1 / 49152, np.float32))[-1] < 1.0  # the condition that crashed
    tokens = choose_tokens(logits, np.random.default_rng(0), True, 1.0, 0, 1.0)
    assert tokens.shape == (1,) and 0 <= tokens[0] < 49152


def test_every_prefill_chunk_has_the_same_width_so_graph_mode_compiles_one_graph():
    """A narrower last chunk would be a new input shape, hence a new GRAPH_MODE graph (and its memory) per
    prompt length."""
    net, widths = build_tiny(), []

    class Recording:
        args = net.args

        def __call__(self, ids, lengths, starts):
            widths.append(ids.shape[1])
            return net(ids, lengths, starts)

    for length in (5, 20, 37, 60):
        prefill(Recording(), np.ones((1, length), np.int32), np.array([length], np.int32), 16)
    assert set(widths) == {16} and len(widths) == 1 + 2 + 3 + 4

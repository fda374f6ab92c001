"""Stored reference logits give the KL and top-1 of the network they came from, exactly; they are refused for
other windows, and a store that fails part-way leaves nothing behind."""
import numpy as np
import pytest
import mindspore as ms

from mindspore_ptq.evaluation import (NetworkReference, StoredReference, check_logits_folder, evaluate_perplexity,
                                      logits_writer)

VOCAB = 11


class TableNetwork:
    """logits[t] = a fixed random row per token id, plus noise scaled by `wobble` (a 'quantized' twin)."""

    def __init__(self, wobble=0.0, seed=0):
        rng = np.random.default_rng(seed)
        self.table = rng.normal(size=(VOCAB, VOCAB)).astype(np.float32)
        self.noise = rng.normal(size=(VOCAB, VOCAB)).astype(np.float32) * wobble

    def __call__(self, ids):
        ids = ids.asnumpy()
        return ms.Tensor((self.table + self.noise)[ids])


WINDOWS = np.random.default_rng(1).integers(0, VOCAB, size=(3, 9)).astype(np.int32)


def test_stored_logits_give_the_reference_networks_kl_and_top1_exactly(tmp_path):
    reference, quantized = TableNetwork(), TableNetwork(wobble=0.3)
    with logits_writer(tmp_path / "ref", WINDOWS) as record:
        stored_run = evaluate_perplexity(reference, WINDOWS, record=record)
    live = evaluate_perplexity(quantized, WINDOWS, NetworkReference(reference))
    stored = evaluate_perplexity(quantized, WINDOWS, StoredReference(tmp_path / "ref", WINDOWS))
    assert live["kl"] > 0.01 and live["top1"] < 100  # the twin does differ
    assert (stored["kl"], stored["top1"], stored["ppl"]) == (live["kl"], live["top1"], live["ppl"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref"]
    assert stored_run["ppl"] == evaluate_perplexity(reference, WINDOWS)["ppl"]  # recording changes nothing


def test_stored_logits_are_refused_for_other_windows(tmp_path):
    with logits_writer(tmp_path / "ref", WINDOWS) as record:
        evaluate_perplexity(TableNetwork(), WINDOWS, record=record)
    other = WINDOWS.copy()
    other[1, 4] = (other[1, 4] + 1) % VOCAB
    for windows in (other, WINDOWS[:2]):
        with pytest.raises(ValueError, match="was computed on other windows"):
            StoredReference(tmp_path / "ref", windows)


def test_a_store_that_fails_part_way_leaves_nothing_and_keeps_the_old_one(tmp_path):
    with logits_writer(tmp_path / "ref", WINDOWS) as record:
        evaluate_perplexity(TableNetwork(), WINDOWS, record=record)
    before = (tmp_path / "ref" / "logits.npy").read_bytes()

    def dies_after_one(index, logits):
        if index == 1:
            raise RuntimeError("killed")
        record(index, logits)

    with pytest.raises(RuntimeError, match="killed"):
        with logits_writer(tmp_path / "ref", WINDOWS) as record:
            evaluate_perplexity(TableNetwork(wobble=1.0), WINDOWS, record=dies_after_one)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref"]  # no temp folder
    assert (tmp_path / "ref" / "logits.npy").read_bytes() == before


def test_a_folder_without_stored_logits_is_named_with_its_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--reference_logits .* holds no stored reference logits \(window_ids"):
        check_logits_folder(tmp_path, "--reference_logits")

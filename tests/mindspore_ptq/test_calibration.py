"""Calibration sees valid tokens only: right padding is cut off before the observers."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import PTQ
from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.calibration import without_padding
from ms_infra.checkpoint import is_runtime_state
from tests.conftest import TINY_ARGS, build_tiny
from tests.mindspore_ptq.test_ptq import CALIBRATION

PAD = TINY_ARGS.pad_token_id  # the calibration tokens are 1..89


def padded(rows, width):
    """`rows` (1-D arrays) right-padded with PAD into one (len(rows), width) array."""
    batch = np.full((len(rows), width), PAD, np.int32)
    for i, row in enumerate(rows):
        batch[i, :len(row)] = row
    return batch


def test_without_padding_cuts_each_row_after_its_last_token_and_keeps_unpadded_batches():
    full = Tensor(np.array([[5, 6, 7]], np.int32))
    samples = without_padding([full, Tensor(padded([[1, 2], [3, 4, 5, 6], []], 6))], PAD)
    assert samples[0] is full
    assert [s.asnumpy().tolist() for s in samples[1:]] == [[[1, 2]], [[3, 4, 5, 6]]]  # the all-pad row is dropped
    assert all(s.dtype == ms.int32 for s in samples)
    with pytest.raises(ValueError, match="every calibration sample is padding"):
        without_padding([Tensor(padded([[]], 4))], PAD)


def calibrated_parameters(batches):
    """Every stored parameter of the tiny network quantized as a8w8c8 on `batches`; the pad token's embedding is
    made 50x larger, so pad positions seen by an observer would widen its range."""
    network = build_tiny()
    embedding = network.model.tok_embeddings.embedding_weight
    values = embedding.asnumpy()
    values[PAD] *= 50
    embedding.set_data(Tensor(values))
    ptq = PTQ(approach_config("a8w8c8"))
    ptq.apply(network, None, batches)
    ptq.convert(network)
    return {p.name: p.asnumpy() for p in network.get_parameters() if not is_runtime_state(p.name)}


def test_padding_calibration_batches_leaves_every_observed_range_and_parameter_unchanged():
    rows = [sample[0][: 40 - 3 * i] for i, sample in enumerate(CALIBRATION)]  # four lengths
    unpadded = calibrated_parameters([row[None] for row in rows])
    padded_singles = calibrated_parameters([padded([row], 64) for row in rows])  # batch size 1, padded to 64
    padded_pairs = calibrated_parameters([padded(rows[:2], 48), padded(rows[2:], 48)])  # ragged batches of two
    for name, value in unpadded.items():
        np.testing.assert_array_equal(padded_singles[name], value, err_msg=name)
        np.testing.assert_array_equal(padded_pairs[name], value, err_msg=name)
    assert any(name.endswith("input_scale") for name in unpadded)  # static activation ranges were compared

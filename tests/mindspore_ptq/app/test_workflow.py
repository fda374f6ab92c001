"""Calibration sample mixing."""
from mindspore_ptq.app.workflow import interleave


def test_interleave_alternates_and_keeps_the_longer_tail():
    assert interleave([1, 2, 3, 4], ["a", "b"]) == [1, "a", 2, "b", 3, 4]
    assert interleave([1], ["a", "b", "c"]) == [1, "a", "b", "c"]
    assert interleave([1, 2], []) == [1, 2]

"""Comparing two checkpoints: int8 values counted by steps, float values by relative difference."""
import numpy as np
import pytest

from mindspore_ptq.io.sharding import compare
from ms_infra.checkpoint import save_checkpoint_atomic


def test_compare_counts_int8_steps_and_relative_float_differences(tmp_path):
    weight = np.arange(-60, 60, dtype=np.int8).reshape(8, 15)
    scale = np.linspace(1.0, 2.0, 8).astype(np.float32)
    changed_weight, changed_scale = weight.copy(), scale.copy()
    changed_weight[0, :3] += np.array([1, -1, 2], np.int8)
    changed_scale[4] += 0.01
    first = save_checkpoint_atomic({"w": weight, "s": scale}, tmp_path / "a.ckpt")
    second = save_checkpoint_atomic({"w": changed_weight, "s": changed_scale}, tmp_path / "b.ckpt")
    report = compare(first, second)
    assert report["int8"] == (3, weight.size, 2)
    assert report["float"][1] == "s"
    assert report["float"][0] == pytest.approx(0.01 / 2.0, rel=1e-4)
    assert compare(first, first) == {"int8": (0, weight.size, 0), "float": (0.0, None)}


def test_compare_names_parameters_held_by_one_checkpoint_only(tmp_path):
    first = save_checkpoint_atomic({"w": np.ones(3, np.float32)}, tmp_path / "a.ckpt")
    second = save_checkpoint_atomic({"v": np.ones(3, np.float32)}, tmp_path / "b.ckpt")
    with pytest.raises(ValueError, match="hold different parameters"):
        compare(first, second)

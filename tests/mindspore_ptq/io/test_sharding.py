"""Merging per-rank checkpoints (the manifest checked first, no input overwritten) and comparing two checkpoints:
int8 values counted by steps, float values by relative difference."""
import json

import numpy as np
import pytest

from mindspore_ptq.io import config_path_for
from mindspore_ptq.io.sharding import compare, manifest_path, merge, rank_path, write_manifest
from ms_infra.checkpoint import read_checkpoint, save_checkpoint_atomic

SHARDS = [{"w": np.arange(6, dtype=np.float32).reshape(2, 3) + 10 * rank, "b": np.ones(3, np.float32)}
          for rank in range(2)]


@pytest.fixture
def sharded(tmp_path):
    """Two rank files of m.ckpt ('w' split along axis 0, 'b' replicated), their manifest and a PTQ config."""
    base = tmp_path / "m.ckpt"
    for rank, shard in enumerate(SHARDS):
        save_checkpoint_atomic(shard, rank_path(base, rank))
    config_path_for(base).write_text("weight_quant_dtype: Int8\n")
    return write_manifest(base, 2, {"w": 0})


def test_merge_concatenates_sharded_parameters_and_copies_the_config(sharded, tmp_path):
    merged = read_checkpoint(merge(sharded))
    np.testing.assert_array_equal(merged["w"].asnumpy(), np.concatenate([s["w"] for s in SHARDS]))
    np.testing.assert_array_equal(merged["b"].asnumpy(), SHARDS[0]["b"])
    merge(sharded, tmp_path / "other" / "x.ckpt")
    assert config_path_for(tmp_path / "other" / "x.ckpt").read_text() == "weight_quant_dtype: Int8\n"


def test_merge_replaces_its_output_only_with_overwrite(sharded, tmp_path):
    merge(sharded)
    with pytest.raises(FileExistsError, match="m.ckpt exists; pass --overwrite"):
        merge(sharded)
    merge(sharded, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt", "m.ptq.yaml", "m.shards.json", "m_rank0.ckpt",
                                                          "m_rank1.ckpt"]


@pytest.mark.parametrize("output", ["m_rank1.ckpt", "m.shards.json", "m.ptq.yaml"])
def test_merge_refuses_to_write_over_one_of_its_inputs(sharded, tmp_path, output):
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=f"output .*{output} is also an input"):
        merge(sharded, tmp_path / output, overwrite=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("change, message", [
    (lambda m: "{not json", "is not valid JSON"),
    (lambda m: "[1, 2]", "must be a JSON object, got list"),
    (lambda m: json.dumps({k: v for k, v in m.items() if k != "files"}),
     "lacks 'files' (the per-rank checkpoint files: a JSON list)"),
    (lambda m: json.dumps({**m, "world": "2"}), "has a str for 'world' (the number of ranks: a JSON int)"),
    (lambda m: json.dumps({**m, "files": m["files"][:1]}), "'files' must name 2 rank files"),
    (lambda m: json.dumps({**m, "world": 0, "files": []}), "'world' (the number of ranks) must be >= 1, got 0"),
    (lambda m: json.dumps({**m, "axes": {"w": "rows"}}), "'axes' must map parameter names to axes"),
], ids=["not-json", "not-an-object", "no-files", "world-type", "files-count", "no-ranks", "axes"])
def test_a_corrupt_manifest_is_named_with_what_is_wrong(sharded, change, message):
    sharded.write_text(change(json.loads(sharded.read_text())))
    with pytest.raises(ValueError, match="shard manifest .*m.shards.json") as error:
        merge(sharded)
    assert message in str(error.value)
    assert not (sharded.parent / "m.ckpt").exists()


def test_a_missing_rank_file_is_named(sharded):
    rank_path(sharded.parent / "m.ckpt", 1).unlink()
    with pytest.raises(FileNotFoundError, match="m_rank1.ckpt"):
        merge(manifest_path(sharded.parent / "m.ckpt"))


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

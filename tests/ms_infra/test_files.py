"""Atomic outputs: a set of files appears whole or not at all, and outputs are checked before work starts."""
import os

import pytest

from ms_infra.files import atomic_set, check_inputs, check_outputs, read_yaml_mapping


def test_atomic_set_renames_every_file_when_the_block_succeeds(tmp_path):
    first, second = tmp_path / "a.ckpt", tmp_path / "sub" / "a.ptq.yaml"
    with atomic_set([first, second]) as (temp_first, temp_second):
        temp_first.write_text("weights")
        temp_second.write_text("config")
        assert temp_first.suffix == ".ckpt" and not first.exists()
    assert first.read_text() == "weights" and second.read_text() == "config"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.ckpt", "a.ptq.yaml", "sub"]


def test_atomic_set_leaves_old_files_and_no_temp_file_when_the_block_fails(tmp_path):
    first, second = tmp_path / "a.ckpt", tmp_path / "a.ptq.yaml"
    first.write_text("old weights")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_set([first, second]) as (temp_first, _):
            temp_first.write_text("new weights")
            raise RuntimeError("disk full")
    assert first.read_text() == "old weights" and not second.exists()
    assert sorted(os.listdir(tmp_path)) == ["a.ckpt"]


def test_check_outputs_names_each_culprit(tmp_path):
    source = tmp_path / "model.ckpt"
    source.write_text("float")
    with pytest.raises(ValueError, match="model.ckpt is also an input"):
        check_outputs([source], overwrite=True, inputs=[source])
    with pytest.raises(FileExistsError, match="model.ckpt exists; pass --overwrite"):
        check_outputs([source])
    check_outputs([source], overwrite=True)
    check_outputs([tmp_path / "new" / "deeper" / "out.json"])  # folders that do not exist yet are fine


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_check_outputs_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(PermissionError, match="not writable"):
        check_outputs([folder / "out.json"])


def test_check_outputs_refuses_a_folder_as_output_and_a_file_as_folder(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(IsADirectoryError, match="results is a directory; name a file"):
        check_outputs([tmp_path / "results"], overwrite=True)
    with pytest.raises(NotADirectoryError, match="notes.txt is a file, not a folder"):
        check_outputs([tmp_path / "notes.txt" / "deeper" / "out.json"])


def test_check_inputs_names_the_flag_of_a_missing_file_or_a_folder(tmp_path):
    (tmp_path / "data.json").write_text("{}")
    check_inputs({"--dataset_path": tmp_path / "data.json", "--shots_path": None})
    with pytest.raises(FileNotFoundError, match="--dataset_path .*none.json not found"):
        check_inputs({"--dataset_path": tmp_path / "none.json"})
    with pytest.raises(IsADirectoryError, match="--load_checkpoint .* is a directory"):
        check_inputs({"--load_checkpoint": tmp_path})


@pytest.mark.parametrize("text, message", [
    ("a: [1\n", "is not valid YAML: line 2, column 1: expected ',' or ']'"),
    ("- a\n", "must be a YAML mapping, got list"),
    ("", "must be a YAML mapping, got nothing"),
    ("\xff\xfe", "is not valid YAML"),
], ids=["syntax", "list", "empty", "not-text"])
def test_read_yaml_mapping_names_the_file_and_the_problem_in_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match="config .*c.yaml") as error:
        read_yaml_mapping(path, "config")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_read_yaml_mapping_reads_a_mapping_and_names_a_missing_file(tmp_path):
    (tmp_path / "c.yaml").write_text("a: 1\n")
    assert read_yaml_mapping(tmp_path / "c.yaml", "config") == {"a": 1}
    with pytest.raises(FileNotFoundError, match="config not found: .*none.yaml"):
        read_yaml_mapping(tmp_path / "none.yaml", "config")

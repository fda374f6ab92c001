"""Atomic outputs: a set of files appears whole or not at all, and outputs are checked before work starts."""
import os

import pytest

from ms_infra.files import atomic_set, check_outputs


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

"""The bench's resumable steps: --reuse keeps a finished step and redoes one that died part-way."""
import json
import sys
from types import SimpleNamespace

from mindspore_ptq.app.cli.bench import _step

# a stand-in step: writes {"squad": ..., "speed": ...} to argv[1] (with --overwrite, which it records)
WRITER = ("import json, sys; json.dump({'squad': 1, 'speed': 2, 'overwrite': '--overwrite' in sys.argv}, "
          "open(sys.argv[1], 'w'))")


def step(tmp_path, reuse):
    output = tmp_path / "squad.json"
    args = SimpleNamespace(reuse=reuse, overwrite=False)
    return _step([sys.executable, "-c", WRITER, output], output, tmp_path / "squad.log", args,
                 needs=("squad", "speed"))


def test_reuse_keeps_a_finished_step(tmp_path):
    (tmp_path / "squad.json").write_text(json.dumps({"squad": "kept", "speed": "kept"}))
    assert step(tmp_path, reuse=True) == {"squad": "kept", "speed": "kept"}


def test_reuse_redoes_a_step_that_left_only_its_first_part(tmp_path):
    (tmp_path / "squad.json").write_text(json.dumps({"squad": "partial"}))  # died before its speed part
    assert step(tmp_path, reuse=True) == {"squad": 1, "speed": 2, "overwrite": True}


def test_without_reuse_the_step_runs(tmp_path):
    assert step(tmp_path, reuse=False) == {"squad": 1, "speed": 2, "overwrite": False}


def test_skip_float_forward_drops_only_the_yardstick_pass(monkeypatch, tmp_path):
    from mindspore_ptq.app.cli import bench
    commands = []
    monkeypatch.setattr(bench, "_step", lambda command, *rest, **kwargs: commands.append(command))
    for skip in (False, True):
        args = SimpleNamespace(config="c.yaml", calib_samples=2, squad_dir="sq", calib_text_windows=0,
                               skip_float_forward=skip)
        bench._quantize(args, "a8w8c8", tmp_path)
    with_yardstick, without = commands
    assert "--time_float_forward" in with_yardstick and "--time_float_forward" not in without
    assert [part for part in with_yardstick if part != "--time_float_forward"] == without


def test_reuse_redoes_a_step_whose_stored_files_are_gone(tmp_path):
    (tmp_path / "squad.json").write_text(json.dumps({"squad": "kept", "speed": "kept"}))
    output, args = tmp_path / "squad.json", SimpleNamespace(reuse=True, overwrite=False)
    command = [sys.executable, "-c", WRITER, output]
    (tmp_path / "logits").mkdir()
    assert _step(command, output, tmp_path / "squad.log", args, files=[tmp_path / "logits"])["squad"] == "kept"
    (tmp_path / "logits").rmdir()  # e.g. the fp32 row's stored logits deleted to free disk
    assert _step(command, output, tmp_path / "squad.log", args, files=[tmp_path / "logits"])["overwrite"] is True

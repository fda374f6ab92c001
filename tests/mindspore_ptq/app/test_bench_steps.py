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

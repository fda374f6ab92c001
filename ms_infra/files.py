"""Output files written atomically: a temp file beside the target and a rename, never a half-written file;
files that belong together written as a set; inputs and outputs checked before long work starts; YAML files read
with errors that name them."""
import contextlib
import json
import os
from pathlib import Path

import yaml


def write_text_atomic(path, text):
    """Write `text` to `path` via a temp file beside it and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json_atomic(path, data, indent=2):
    """Write `data` as JSON to `path` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent))


def temp_path_for(path):
    """A hidden temp name beside `path` that keeps its suffix (MindSpore appends .ckpt to other names)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_set(paths):
    """Yield temp paths for `paths`; when the block succeeds every temp file is renamed onto its path, one
    after the other; when it fails no target is touched and no temp file is left."""
    paths = [Path(p) for p in paths]
    temps = [temp_path_for(p) for p in paths]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
        for temp, path in zip(temps, paths):
            os.replace(temp, path)
    finally:
        for temp in temps:
            if temp.exists():
                temp.unlink()


def check_outputs(paths, overwrite=False, inputs=()):
    """Before any long work: each output must not be one of the `inputs` (the files being read), must not
    exist unless `overwrite`, and must have a writable folder. Raises naming the culprit."""
    inputs = {Path(p).resolve() for p in inputs if p}
    for path in map(Path, paths):
        if path.resolve() in inputs:
            raise ValueError(f"output {path} is also an input of this command; choose another output path")
        if path.is_dir():
            raise IsADirectoryError(f"output {path} is a directory; name a file")
        if path.exists() and not overwrite:
            raise FileExistsError(f"output {path} exists; pass --overwrite to replace it")
        folder = next(parent for parent in [path.parent, *path.parent.parents] if parent.exists())
        if not folder.is_dir():
            raise NotADirectoryError(f"cannot write output {path}: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"cannot write output {path}: {folder} is not writable")


def check_inputs(named):
    """Before any long work: each input ({'--flag': path}; None or '' is skipped) must be an existing file. Raises
    naming the flag and the path."""
    for name, path in named.items():
        if not path:
            continue
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{name} {path} is a directory; name a file")
        if not path.is_file():
            raise FileNotFoundError(f"{name} {path} not found")


def _yaml_problem(err):
    """A YAML error in one line: where, and what."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + (getattr(err, "problem", None) or str(err).splitlines()[0])


def read_yaml_mapping(path, what):
    """The mapping in the YAML file `path`; a missing file, a syntax error (with its line and column) or anything
    but a mapping raises naming `what` (e.g. 'PTQ config') and the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}" + (" (a directory)" if path.is_dir() else ""))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{what} {path} is not valid YAML: {_yaml_problem(err)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must be a YAML mapping, got "
                         f"{'nothing' if data is None else type(data).__name__}")
    return data

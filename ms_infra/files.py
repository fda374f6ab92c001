"""Output files written atomically: a temp file beside the target and a rename, never a half-written file."""
import json
import os
from pathlib import Path


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

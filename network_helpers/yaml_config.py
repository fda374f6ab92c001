"""The MindFormers YAML format read without MindFormers: a mapping with MindFormerConfig's attribute access.

It holds what the file says (with `base_config` files merged under it, as MindFormers does) and nothing more:
MindFormerConfig also fills its run-mode templates (training, profiling and context defaults), which the
helper does not read; where a YAML leaves out a key the helper reads, the helper's own default applies.
"""
from pathlib import Path

from ms_infra.files import read_yaml_mapping

BASE_CONFIG = "base_config"


class YamlConfig(dict):
    """A dict whose keys are also attributes, nested mappings included; a missing key reads None."""

    def __init__(self, mapping=(), **kwargs):
        super().__init__()
        for key, value in dict(mapping, **kwargs).items():
            self[key] = YamlConfig(value) if isinstance(value, dict) else value

    def __getattr__(self, key):
        if key.startswith("__"):  # copy, pickle and friends look up special names
            raise AttributeError(key)
        return self.get(key)

    def __setattr__(self, key, value):
        self[key] = value

    def __delattr__(self, key):
        del self[key]


def _merged(base, override):
    """`override` on top of `base`, mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merged(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def _read(path):
    data = read_yaml_mapping(path, "YAML config")
    bases = data.pop(BASE_CONFIG, None)
    if bases is None:
        return data
    merged = {}
    for base in bases if isinstance(bases, list) else [bases]:  # relative to the file that names them
        merged.update(_read(Path(path).parent / base))
    return _merged(merged, data)


def read_config(path):
    """The YamlConfig of the YAML file `path`; a missing file, a syntax error (line and column) or a file that is
    not a mapping raises naming the file, a `base_config` file included."""
    return YamlConfig(_read(path))

"""Which cells are quantized how: the registry says what can be, the config and blacklist say what is."""
import difflib

from .cell_plan import CellPlan, blacklist_entry
from .cells.registry import wrapper_for
from .kinds import KINDS


def _plan(path, relative_path, kind, config, foldable):
    entry = blacklist_entry(path, config.opname_blacklist)
    if entry is not None:
        return CellPlan(path, kind, skip_reason=f"opname_blacklist entry {entry!r}")
    part, field_name = KINDS[kind].enabled_by
    if not getattr(config, part).enabled:
        return CellPlan(path, kind, skip_reason=f"{field_name} is None")
    return KINDS[kind].plan(path, relative_path, config, foldable)


def plan_cells(container, prefix, config, smooth_groups=(), only=None):
    """[(relative path, plan, wrapper class, float cell)] for the registered cells under `container`, skipped
    ones included (their plan says why).

    prefix: the container's full name; only: restrict to these relative paths.
    """
    foldable = {linear for _, linears in smooth_groups for linear in linears}
    plans = []
    for relative_path, cell in container.cells_and_names():
        if not relative_path or (only is not None and relative_path not in only):
            continue
        wrapper_cls = wrapper_for(cell)
        if wrapper_cls is None:
            continue
        path = f"{prefix}.{relative_path}" if prefix else relative_path
        plans.append((relative_path, _plan(path, relative_path, wrapper_cls.kind, config, foldable), wrapper_cls,
                      cell))
    return plans


def quantizable_paths(network, layout):
    """{full name: name inside its decoder layer (or the head path)} of the registered cells that PTQ plans."""
    paths = {f"{name}.{relative}": relative for name, layer in layout.decoder_layers(network)
             for relative, cell in layer.cells_and_names() if relative and wrapper_for(cell) is not None}
    paths.update({path: path for path, cell in network.cells_and_names()
                  if path in layout.head_paths + layout.embedding_paths and wrapper_for(cell) is not None})
    return paths


def check_name_patterns(network, layout, config):
    """Every opname_blacklist and layer_overrides entry (a name substring) must match a quantizable cell: a typo
    would otherwise quantize a cell meant to stay float, or the reverse, without a word. Raises naming the entry,
    the nearest cell names and the names it could match."""
    paths = quantizable_paths(network, layout)
    entries = [("opname_blacklist", entry) for entry in config.opname_blacklist]
    entries += [("layer_overrides", pattern) for pattern, _ in config.layer_overrides]
    unmatched = [(field, entry) for field, entry in entries if not any(entry in path for path in paths)]
    if not unmatched:
        return
    names = sorted(set(paths.values()))
    problems = []
    for field, entry in unmatched:
        near = difflib.get_close_matches(entry, names + [name.rsplit(".", 1)[-1] for name in names], 2, 0.5)
        problems.append(f"{field} entry {entry!r} matches no quantizable cell"
                        + (f" (did you mean {' or '.join(map(repr, dict.fromkeys(near)))}?)" if near else ""))
    outside = layout.head_paths + layout.embedding_paths
    in_layers = sorted({relative for path, relative in paths.items() if path not in outside})
    heads = [path for path in paths if path in outside]
    raise ValueError(f"{'; '.join(problems)}. Entries are substrings of full cell names: the quantizable cells are "
                     f"{layout.layers_path}.<i>.{{{', '.join(in_layers)}}}" + "".join(f" and {h}" for h in heads))

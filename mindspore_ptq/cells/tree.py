"""Finding and replacing cells by dotted path, keeping full parameter names."""


def get_cell(root, path):
    """The sub-cell of `root` at dotted `path` ('' is root itself)."""
    cell = root
    for part in filter(None, path.split(".")):
        cell = cell[int(part)] if part.isdigit() else getattr(cell, part)
    return cell


def replace_cell(root, path, new_cell, name_prefix=None):
    """Put `new_cell` at `path` under `root`; its parameters are named `<name_prefix or path>.<local name>`."""
    parent_path, _, attr = path.rpartition(".")
    local_names = [(name, param) for name, param in new_cell.parameters_and_names()]
    setattr(get_cell(root, parent_path), attr, new_cell)
    prefix = name_prefix or path
    for name, param in local_names:
        param.name = f"{prefix}.{name}"
    return new_cell

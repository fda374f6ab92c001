"""The per-layer report of a PTQ run: what was quantized how, what stayed float and why, and the calibration
facts behind it (activation ranges, smoothing factors, each linear's output error on the calibration data)."""
import math
import re

from .kinds import KINDS

_COLUMNS = (("name", "{}"), ("scheme", "{}"), ("note", "{}"), ("act_min", "{:.3g}"), ("act_max", "{:.3g}"),
            ("smooth_min", "{:.3g}"), ("smooth_max", "{:.3g}"), ("relative_output_mse", "{:.2e}"))


def layer_report(cells, skipped, layers_path):
    """One record per registered cell, in network order: {'name', 'kind', 'quantized', ...}.

    cells: CalibratedCells from calibration or deploy; skipped: plans of cells left float; layers_path: where the
    decoder layers are (the layout's), whose cells come first, in layer order.
    """
    records = [{"name": cell.wrapper.name, "kind": cell.kind, "quantized": True, **KINDS[cell.kind].facts(cell)}
               for cell in cells]
    records += [{"name": plan.path, "kind": plan.kind, "quantized": False, "scheme": "float",
                 "reason": plan.skip_reason} for plan in skipped]
    for record in records:
        record.update(_position(record["name"], layers_path))
    return sorted(records, key=lambda r: network_order(r["name"], layers_path))


def _position(name, layers_path):
    """{'layer': decoder layer index, 'cell': path inside the layer} for a cell under `layers_path`, else {}."""
    if not name.startswith(f"{layers_path}."):
        return {}
    index, _, cell = name[len(layers_path) + 1:].partition(".")
    return {"layer": int(index), "cell": cell} if index.isdigit() else {}


def network_order(name, layers_path):
    """Sort key: cells under `layers_path` first, with numbers compared as numbers (layer 10 after layer 9)."""
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return (not name.startswith(f"{layers_path}."), natural)


def _cell(record, key, fmt):
    """Formatted value; 'note' is where smoothing went, or why the cell stayed float."""
    value = record.get("smoothing") or record.get("reason") if key == "note" else record.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return fmt.format(value)


def format_report(records):
    """A fixed-width text table of the records (float cells show why they stayed float)."""
    rows = [[key for key, _ in _COLUMNS]] + [[_cell(r, key, fmt) for key, fmt in _COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]
    quantized = sum(r["quantized"] for r in records)
    lines.append(f"{quantized} of {len(records)} quantizable cells quantized")
    return "\n".join(lines)

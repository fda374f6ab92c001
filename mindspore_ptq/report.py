"""The per-layer report of a PTQ run: what was quantized how, what stayed float and why, and the calibration
facts behind it (activation ranges, smoothing factors, each linear's output error on the calibration data)."""
import math
from pathlib import Path

from network_helpers.checkpoint_io import write_json_atomic

_COLUMNS = (("name", "{}"), ("scheme", "{}"), ("note", "{}"), ("act_min", "{:.3g}"), ("act_max", "{:.3g}"),
            ("smooth_min", "{:.3g}"), ("smooth_max", "{:.3g}"), ("relative_output_mse", "{:.2e}"))


def layer_report(wrapped, skipped):
    """One record per registered cell, in network order: {'name', 'kind', 'quantized', ...}.

    wrapped: [(container, path, wrapper)] from calibration or deploy; skipped: plans of cells left float.
    """
    records = [{"name": wrapper.name, "kind": wrapper.kind, "quantized": True, **wrapper.stats()}
               for _, _, wrapper in wrapped]
    records += [{"name": plan.path, "kind": plan.kind, "quantized": False, "scheme": "float",
                 "reason": plan.skip_reason} for plan in skipped]
    return sorted(records, key=lambda r: _network_order(r["name"]))


def _network_order(name):
    """model.layers.10.x sorts after model.layers.9.x; cells outside the decoder layers come last."""
    parts = name.split(".")
    return (0, int(parts[2]), name) if name.startswith("model.layers.") and parts[2].isdigit() else (1, 0, name)


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


def save_report(records, path):
    """Write the records as JSON atomically; returns the path."""
    return write_json_atomic(path, records, indent=1)


def report_path_for(checkpoint):
    """a8w8c8.ckpt -> a8w8c8.report.json"""
    return Path(checkpoint).with_suffix(".report.json")

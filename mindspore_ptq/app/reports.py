"""The per-layer report as a file beside the checkpoint."""
from pathlib import Path

from ms_infra.files import write_json_atomic


def save_report(records, path):
    """Write the records as JSON atomically; returns the path."""
    return write_json_atomic(path, records, indent=1)


def report_path_for(checkpoint):
    """a8w8c8.ckpt -> a8w8c8.report.json"""
    return Path(checkpoint).with_suffix(".report.json")

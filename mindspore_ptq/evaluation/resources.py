"""Memory facts of this process and of a network: resident set size (current and peak) and parameter bytes."""
import resource
from pathlib import Path

from ms_infra.checkpoint import is_runtime_state

_MB = 2 ** 20


def _status_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb():
    """Current resident set size."""
    return _status_kb("VmRSS") / 1024


def reset_peak_rss():
    """Make the peak RSS restart from the current RSS (Linux >= 4.0: clear_refs 5); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    """Peak resident set size since the process started or since `reset_peak_rss()`."""
    try:
        return _status_kb("VmHWM") / 1024
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parameter_memory_mb(network):
    """{'weights': MB of the stored parameters, 'kv_cache': MB of the KV cache buffers}, as held in memory."""
    sizes = {"weights": 0.0, "kv_cache": 0.0}
    for param in network.get_parameters():
        kind = "kv_cache" if is_runtime_state(param.name) else "weights"
        sizes[kind] += param.size * param.itemsize / _MB
    return sizes

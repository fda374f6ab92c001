"""Benchmark plots (matplotlib, written as PNG): accuracy vs checkpoint size, per-layer quantization error."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
import numpy as np  # noqa: E402


_MARKERS = "osD^vPX*<>"


def plot_accuracy_vs_size(rows, path):
    """F1 and perplexity of every row against its checkpoint size."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, (label, value) in zip(axes, (("SQuAD F1 (200 dev questions)", lambda r: r["squad"]["f1"]),
                                           ("perplexity (64×512 dev windows)", lambda r: r["perplexity"]["ppl"]))):
        for (name, row), marker in zip(rows.items(), _MARKERS):
            axis.scatter(row["size_mb"], value(row), s=60, marker=marker, label=name, alpha=0.8)
        axis.set(xlabel="checkpoint size (MB)", ylabel=label)
        axis.grid(alpha=0.3)
    axes[1].legend(loc="best")
    figure.suptitle("accuracy vs checkpoint size")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def layer_error_matrix(records, key="relative_output_mse"):
    """(decoder layer × linear) matrix of `key` (NaN where not measured, e.g. float linears), column names.
    Records place themselves by their 'layer' and 'cell' (mindspore_ptq.report)."""
    linears = [r for r in records if r["kind"] == "linear" and "layer" in r]
    columns = list(dict.fromkeys(r["cell"] for r in linears))
    matrix = np.full((1 + max(r["layer"] for r in linears), len(columns)), np.nan)
    for record in linears:
        if record.get(key) is not None:
            matrix[record["layer"], columns.index(record["cell"])] = record[key]
    return matrix, columns


_LABELS = {"relative_output_mse": "log10 relative output MSE of the linear (calibration data)",
           "sensitivity": "log10 decoder-layer output MSE with only this linear quantized"}


def plot_layer_errors(reports, path, key="relative_output_mse"):
    """One heat map per approach that measured `key`: its log10 for each decoder linear (grey: not measured, e.g.
    left float). Returns the path, or None if no approach measured it."""
    reports = {name: records for name, records in reports.items() if any(r.get(key) is not None for r in records)}
    if not reports:
        return None
    figure, axes = plt.subplots(1, len(reports), figsize=(3.2 * len(reports) + 1, 6), squeeze=False)
    image = None
    for axis, (name, records) in zip(axes[0], reports.items()):
        matrix, columns = layer_error_matrix(records, key)
        axis.set_facecolor("0.85")
        image = axis.imshow(np.log10(matrix), aspect="auto", cmap="magma_r", vmin=-6, vmax=-1)
        axis.set_xticks(range(len(columns)), [c.split(".")[-1] for c in columns])
        axis.set_yticks(range(0, len(matrix), max(1, len(matrix) // 10)))
        axis.set(title=name, xlabel="linear", ylabel="decoder layer")
    figure.colorbar(image, ax=axes[0].tolist(), label=_LABELS[key])
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path

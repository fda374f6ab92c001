"""The layer-by-layer calibration loop: catch the first decoder layer's inputs for every sample, then per layer
wrap -> observe -> the steps' on_layer hooks -> feed the layer's outputs (quantized, or float:
config.calibration_inputs) to the next."""
import numpy as np
import mindspore as ms

from .algorithms.output_error import measure_output_errors
from .algorithms.quantizers import deployed_cell
from .cells.tree import get_cell, replace_cell
from .config import CalibrationInputs
from .kinds import KINDS
from .layer_policy import check_name_patterns, plan_cells
from .lifecycle import CalibratedCell
from .log import logger, progress

ERROR_SAMPLES = 8  # calibration samples on which each linear's output error is measured (it costs a float pass)


def wrap_cells(container, prefix, config, smooth_groups=(), only=None):
    """Put a calibrating wrapper in place of each planned cell.

    Returns ([CalibratedCell], [plans of the registered cells that stay float]).
    """
    cells, skipped = [], []
    for relative_path, plan, wrapper_cls, cell in plan_cells(container, prefix, config, smooth_groups, only):
        if plan.quantized:
            wrapper = replace_cell(container, relative_path, wrapper_cls(plan.path, cell, plan))
            cells.append(CalibratedCell(container, relative_path, wrapper))
        else:
            skipped.append(plan)
    return cells, skipped


def _run_samples(cell, inputs, description):
    return [cell(*args) for args in progress(inputs, desc=description, unit="sample", leave=False)]


def _run_quantized(layer, cells, inputs, description):
    """Run the quantized layer on every sample, measuring each linear's output error on the first ERROR_SAMPLES."""
    outputs = measure_output_errors(cells, lambda: _run_samples(layer, inputs[:ERROR_SAMPLES], description))
    return outputs + _run_samples(layer, inputs[ERROR_SAMPLES:], description)


def without_padding(batches, pad_token_id):
    """The calibration samples with their right padding cut off, so that observers see valid tokens only: a
    batch (B, S) with a row ending in `pad_token_id` is split into its rows, each cut after its last other token
    (as generation reads a right-padded prompt), and rows of padding alone are dropped. Attention is causal, so
    the valid tokens' activations are those of the unpadded sample. A batch without padding is kept whole."""
    samples, cut = [], 0
    for batch in batches:
        ids = batch.asnumpy()
        if not (ids[:, -1] == pad_token_id).any():
            samples.append(batch)
            continue
        for row in ids:
            valid = np.flatnonzero(row != pad_token_id)
            if valid.size:
                samples.append(ms.Tensor(row[None, :valid[-1] + 1], batch.dtype))
            cut += row.size - (valid[-1] + 1 if valid.size else 0)
    if batches and not samples:
        raise ValueError(f"every calibration sample is padding (pad_token_id {pad_token_id})")
    if cut:
        logger.info("calibration: %d pad tokens cut from the samples (%d samples of valid tokens)", cut, len(samples))
    return samples


def calibrate(network, layout, batches, config, steps):
    """Quantize `network` in place from calibration `batches` (input id Tensors; none for weight-only RTN),
    calling each step's on_layer hook per decoder layer and its on_head hook for the head cells. Right padding
    is cut off first (`without_padding`).

    Returns ([CalibratedCell], skipped plans); every wrapper already runs its quantized form.
    """
    check_name_patterns(network, layout, config)
    batches = without_padding(batches, layout.pad_token_id(network))
    inputs = [layout.first_layer_inputs(network, ids) for ids in batches]
    on_float = config.calibration.inputs is CalibrationInputs.FLOAT
    done, skipped = [], []
    for name, layer in progress(layout.decoder_layers(network), desc="calibrate", unit="layer"):
        cells, layer_skipped = wrap_cells(layer, name, config, layout.smooth_groups)
        outputs = _run_samples(layer, inputs, f"{name} observe")
        if not on_float:
            outputs = None  # keep one set of hidden states beside the inputs
        for step in steps:
            step.on_layer(cells, layer, inputs)
        if on_float:
            _run_quantized(layer, cells, inputs[:ERROR_SAMPLES], f"{name} quantized")  # the error only
        else:
            outputs = _run_quantized(layer, cells, inputs, f"{name} quantized")
        for cell in cells:
            cell.wrapper.release_samples()
        inputs = [(out,) + tuple(args[1:]) for out, args in zip(outputs, inputs)]
        done.extend(cells)
        skipped.extend(layer_skipped)
    head_cells, head_skipped = wrap_cells(network, "", config, only=layout.head_paths)
    if head_cells:
        head_inputs = [(layout.head_inputs(network, args[0]),) for args in inputs]
        for cell in head_cells:
            _run_samples(get_cell(network, cell.path), head_inputs, f"{cell.path} observe")
        for step in steps:
            step.on_head(head_cells, network, head_inputs)
        for cell in head_cells:
            cell.wrapper.release_samples()
        done.extend(head_cells)
    embedding_cells, embedding_skipped = wrap_cells(network, "", config, only=layout.embedding_paths)
    for cell in embedding_cells:  # weight-only, from the table alone; the layers calibrated on float embeddings
        KINDS[cell.kind].quantize(cell.wrapper)
    return done + embedding_cells, skipped + head_skipped + embedding_skipped


def build_deploy_structure(network, layout, config):
    """Wrap every planned cell with an empty deployed cell (DEPLOY mode: parameters come from a checkpoint).

    Returns ([CalibratedCell], skipped plans) like `calibrate`."""
    check_name_patterns(network, layout, config)
    done, skipped = [], []
    for name, container in layout.decoder_layers(network) + [("", network)]:
        only = layout.head_paths + layout.embedding_paths if container is network else None
        groups = () if container is network else layout.smooth_groups
        cells, container_skipped = wrap_cells(container, name, config, groups, only)
        for cell in cells:
            deployed_cell(cell.wrapper)
        done.extend(cells)
        skipped.extend(container_skipped)
    return done, skipped

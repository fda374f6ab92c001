"""The layer-by-layer calibration loop: catch the first decoder layer's inputs for every sample, then per layer
wrap -> run -> process -> feed the layer's outputs (quantized, or float: config.calibration_inputs) to the next."""
from .algorithms.sensitivity import measure_sensitivity
from .cells.tree import get_cell, replace_cell
from .config import CalibrationInputs
from .layer_policy import plan_cells
from .log import progress

ERROR_SAMPLES = 8  # calibration samples on which each linear's output error is measured (it costs a float pass)


def wrap_cells(container, prefix, config, smooth_groups=(), only=None):
    """Put a calibrating wrapper in place of each planned cell.

    Returns ({relative path: wrapper}, [plans of the registered cells that stay float]).
    """
    wrappers, skipped = {}, []
    for relative_path, plan, wrapper_cls, cell in plan_cells(container, prefix, config, smooth_groups, only):
        if plan.quantized:
            wrappers[relative_path] = replace_cell(container, relative_path, wrapper_cls(plan.path, cell, plan))
        else:
            skipped.append(plan)
    return wrappers, skipped


def _process(container, wrappers, pipeline):
    for step in pipeline:
        step.process(container, wrappers)


def _run_samples(cell, inputs, description):
    return [cell(*args) for args in progress(inputs, desc=description, unit="sample", leave=False)]


def _run_quantized(layer, wrappers, inputs, description):
    """Run the quantized layer on every sample, measuring each linear's output error on the first ERROR_SAMPLES."""
    for wrapper in wrappers.values():
        wrapper.track_error(True)
    outputs = _run_samples(layer, inputs[:ERROR_SAMPLES], description)
    for wrapper in wrappers.values():
        wrapper.track_error(False)
    return outputs + _run_samples(layer, inputs[ERROR_SAMPLES:], description)


def calibrate(network, layout, batches, config, pipeline):
    """Quantize `network` in place from calibration `batches` (input id Tensors; none for weight-only RTN).

    Returns ([(container, relative path, wrapper)], skipped plans); every wrapper already runs its quantized
    form. Each linear's output error against its float form is measured on the first samples, and
    with `config.sensitivity_samples` its sensitivity (see algorithms.sensitivity).
    """
    inputs = [layout.first_layer_inputs(network, ids) for ids in batches]
    on_float = config.calibration_inputs is CalibrationInputs.FLOAT
    done, skipped = [], []
    for name, layer in progress(layout.decoder_layers(network), desc="calibrate", unit="layer"):
        wrappers, layer_skipped = wrap_cells(layer, name, config, layout.smooth_groups)
        outputs = _run_samples(layer, inputs, f"{name} observe")
        if not on_float:
            outputs = None  # keep one set of hidden states beside the inputs
        _process(layer, wrappers, pipeline)
        if config.sensitivity_samples:
            measure_sensitivity(layer, wrappers, inputs[:config.sensitivity_samples])
        if on_float:
            _run_quantized(layer, wrappers, inputs[:ERROR_SAMPLES], f"{name} quantized")  # the error only
        else:
            outputs = _run_quantized(layer, wrappers, inputs, f"{name} quantized")
        for wrapper in wrappers.values():
            wrapper.release_samples()
        inputs = [(out,) + tuple(args[1:]) for out, args in zip(outputs, inputs)]
        done.extend((layer, path, wrapper) for path, wrapper in wrappers.items())
        skipped.extend(layer_skipped)
    head_wrappers, head_skipped = wrap_cells(network, "", config, only=layout.head_paths)
    if head_wrappers:
        head_inputs = [(layout.head_inputs(network, args[0]),) for args in inputs]
        for path in head_wrappers:
            _run_samples(get_cell(network, path), head_inputs, f"{path} observe")
        _process(network, head_wrappers, pipeline)
        for wrapper in head_wrappers.values():
            wrapper.release_samples()
        done.extend((network, path, wrapper) for path, wrapper in head_wrappers.items())
    return done, skipped + head_skipped


def build_deploy_structure(network, layout, config):
    """Wrap every planned cell with an empty deployed cell (DEPLOY mode: parameters come from a checkpoint).

    Returns ([(container, relative path, wrapper)], skipped plans) like `calibrate`."""
    done, skipped = [], []
    containers = layout.decoder_layers(network) + [("", network)]
    for name, container in containers:
        only = layout.head_paths if container is network else None
        groups = () if container is network else layout.smooth_groups
        wrappers, container_skipped = wrap_cells(container, name, config, groups, only)
        for path, wrapper in wrappers.items():
            wrapper.build_empty()
            done.append((container, path, wrapper))
        skipped.extend(container_skipped)
    return done, skipped

"""The layer-by-layer calibration loop: catch the first decoder layer's inputs for every sample, then per layer
wrap -> run -> process -> feed the quantized layer's outputs to the next layer."""
import logging

from tqdm import tqdm

from .cells.tree import get_cell, replace_cell
from .layer_policy import plan_cells

logger = logging.getLogger(__name__)


def wrap_cells(container, prefix, config, smooth_groups=(), only=None):
    """Put a calibrating wrapper in place of each planned cell; returns {relative path: wrapper}."""
    wrappers = {}
    for relative_path, plan, wrapper_cls, cell in plan_cells(container, prefix, config, smooth_groups, only):
        wrappers[relative_path] = replace_cell(container, relative_path, wrapper_cls(plan.path, cell, plan))
    return wrappers


def _process(container, wrappers, pipeline):
    for step in pipeline:
        step.process(container, wrappers)


def calibrate(network, layout, batches, config, pipeline, progress=True):
    """Quantize `network` in place from calibration `batches` (input id Tensors; none for weight-only RTN);
    returns all wrappers as [(container, relative path, wrapper)], each already running its quantized form."""
    inputs = [layout.first_layer_inputs(network, ids) for ids in batches]
    done = []
    for name, layer in tqdm(layout.decoder_layers(network), desc="calibrate", unit="layer", disable=not progress):
        wrappers = wrap_cells(layer, name, config, layout.smooth_groups)
        for args in inputs:
            layer(*args)
        _process(layer, wrappers, pipeline)
        inputs = [(layer(*args),) + tuple(args[1:]) for args in inputs]
        done.extend((layer, path, wrapper) for path, wrapper in wrappers.items())
    head_wrappers = wrap_cells(network, "", config, only=layout.head_paths)
    if head_wrappers:
        head_inputs = [layout.head_inputs(network, args[0]) for args in inputs]
        for path in head_wrappers:
            for x in head_inputs:
                get_cell(network, path)(x)
        _process(network, head_wrappers, pipeline)
        done.extend((network, path, wrapper) for path, wrapper in head_wrappers.items())
    return done


def build_deploy_structure(network, layout, config):
    """Wrap every planned cell with an empty deployed cell (DEPLOY mode: parameters come from a checkpoint)."""
    done = []
    containers = layout.decoder_layers(network) + [("", network)]
    for name, container in containers:
        only = layout.head_paths if container is network else None
        groups = () if container is network else layout.smooth_groups
        for path, wrapper in wrap_cells(container, name, config, groups, only).items():
            wrapper.build_empty()
            done.append((container, path, wrapper))
    return done

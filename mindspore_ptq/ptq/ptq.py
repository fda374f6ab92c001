"""PTQ: post-training quantization of a network, following the CompAlgo lifecycle."""
from dataclasses import replace

import mindspore as ms

from network_helpers.layouts import layout_for

from ..algorithms import build_steps
from ..calibration import build_deploy_structure, calibrate
from ..cell_plan import kernel_backend_for
from ..cells.decode_layer import fuse_decode_layers
from ..cells.tree import replace_cell
from ..comp_algo import CompAlgo
from ..config import PTQConfig, PTQMode
from ..kernels.select import decode_layer_kernel_available
from ..log import logger
from ..report import format_report, layer_report


def _calibration_batches(datasets):
    """Input id Tensors from a MindSpore dataset (column 'input_ids') or an iterable of arrays."""
    if datasets is None:
        raise ValueError("PTQ with activation or KV-cache quantization needs a calibration dataset "
                         "(apply(network, helper, datasets))")
    if hasattr(datasets, "create_dict_iterator"):
        rows = [item["input_ids"] for item in datasets.create_dict_iterator(output_numpy=True)]
    else:
        rows = list(datasets)
    if not rows:
        raise ValueError("the calibration dataset is empty")
    return [ms.Tensor(row.reshape(1, -1) if row.ndim == 1 else row, ms.int32) for row in rows]


class PTQ(CompAlgo):
    """Round-to-nearest int8 weights (A16W8), SmoothQuant A8W8 and int8 KV cache (C8), chosen by PTQConfig.

    QUANTIZE: `apply(network, helper, datasets)` runs the algorithm steps the config selects
    (`algorithms.STEPS`) around a layer-by-layer calibration in PyNative; `convert(network)` puts the int8 cells
    in place. DEPLOY: `apply(network)` builds the same int8 structure empty, `convert(network)` puts it in place
    (with the CPU kernels, each decoder layer then runs a decode step as one kernel call: cells.decode_layer),
    and `load_checkpoint` fills it.

    After `apply`: `report` holds one record per quantizable cell (see mindspore_ptq.report), logged at INFO as
    a table; `plan` is the mixed-precision plan the steps chose (fallback), and `quantized_config` the config
    with that plan in its layer_overrides: save that one with the checkpoint so DEPLOY rebuilds the same cells.
    `summaries` holds what each step decided ({'fallback': {...}}); `fallback` is its fallback entry.
    """

    def __init__(self, config: PTQConfig):
        if not isinstance(config, PTQConfig):
            raise TypeError(f"PTQ needs a PTQConfig, got {type(config).__name__}")
        super().__init__(config)
        self.cells = []
        self.report = []
        self.plan = ()
        self.summaries = {}
        self._layout = None

    @property
    def fallback(self):
        return self.summaries.get("fallback", {})

    @property
    def quantized_config(self):
        """The config to save with the checkpoint: `config` with the chosen plan ahead of its layer_overrides."""
        return replace(self.config, layer_overrides=self.plan + self.config.layer_overrides)

    def _check_kv_cache(self):
        if self.config.kv_cache.enabled and not any(cell.kind == "kv_cache" for cell in self.cells):
            raise ValueError("kvcache_quant_dtype=int8 but the network has no (non-blacklisted) KV cache cell "
                             "registered for quantization")

    def apply(self, network, network_helper=None, datasets=None):
        if self.cells:
            raise RuntimeError("this PTQ instance was already applied; create a new PTQ for another network")
        layout = network_helper.layout if network_helper is not None else layout_for(network)
        self._layout = layout
        steps = build_steps(self.config, layout)
        if self.config.mode is PTQMode.DEPLOY:
            for step in steps:
                step.on_deploy(network, layout)
            self.cells, skipped = build_deploy_structure(network, layout, self.config)
        else:
            if ms.get_context("mode") != ms.PYNATIVE_MODE:
                raise RuntimeError("PTQ calibration runs in PyNative: call "
                                   "mindspore.set_context(mode=mindspore.PYNATIVE_MODE) before apply()")
            batches = _calibration_batches(datasets) if self.config.needs_calibration_data else []
            for step in steps:
                batches = step.before_calibration(network, layout, batches)
            self.cells, skipped = calibrate(network, layout, batches, self.config, steps)
            for step in steps:
                self.plan += tuple(step.after_calibration(network, self.cells))
            self.summaries = {step.name: step.summary for step in steps if step.summary}
        self._check_kv_cache()
        self.report = layer_report(self.cells, skipped, layout.layers_path)
        logger.info("PTQ %s (%s): %d cells quantized\n%s", self.config.name, self.config.mode.value,
                    len(self.cells), format_report(self.report))
        return network

    def convert(self, network):
        if not self.cells:
            raise RuntimeError("convert() needs apply() first")
        for cell in self.cells:
            replace_cell(cell.container, cell.path, cell.wrapper.quantized, name_prefix=cell.wrapper.name)
        self.cells = []
        if decode_layer_kernel_available(kernel_backend_for(self.config)):
            fuse_decode_layers(self._layout.decoder_layers(network))
        return network

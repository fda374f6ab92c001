"""PTQ: post-training quantization of a network, following the CompAlgo lifecycle."""
import mindspore as ms

from network_helpers.layouts import layout_for

from .algorithms import build_pipeline
from .calibration import build_deploy_structure, calibrate
from .cells.tree import replace_cell
from .comp_algo import CompAlgo
from .config import PTQConfig, PTQMode
from .log import logger
from .report import format_report, layer_report


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

    QUANTIZE: `apply(network, helper, datasets)` calibrates layer by layer in PyNative; `convert(network)` puts
    the int8 cells in place. DEPLOY: `apply(network)` builds the same int8 structure empty, `convert(network)`
    puts it in place, and `load_checkpoint` fills it. After `apply`, `report` holds one record per quantizable
    cell (see mindspore_ptq.report); it is logged at INFO as a table.
    """

    def __init__(self, config: PTQConfig):
        if not isinstance(config, PTQConfig):
            raise TypeError(f"PTQ needs a PTQConfig, got {type(config).__name__}")
        super().__init__(config)
        self._wrapped = []
        self.report = []

    def _check_kv_cache(self, plans_found):
        if self.config.kvcache_quant_dtype is not None and not any(w.kind == "kv_cache" for _, _, w in plans_found):
            raise ValueError("kvcache_quant_dtype=int8 but the network has no (non-blacklisted) KV cache cell "
                             "registered for quantization")

    def apply(self, network, network_helper=None, datasets=None):
        if self._wrapped:
            raise RuntimeError("this PTQ instance was already applied; create a new PTQ for another network")
        layout = network_helper.layout if network_helper is not None else layout_for(network)
        if self.config.mode is PTQMode.DEPLOY:
            self._wrapped, skipped = build_deploy_structure(network, layout, self.config)
        else:
            if ms.get_context("mode") != ms.PYNATIVE_MODE:
                raise RuntimeError("PTQ calibration runs in PyNative: call "
                                   "mindspore.set_context(mode=mindspore.PYNATIVE_MODE) before apply()")
            batches = _calibration_batches(datasets) if self.config.needs_calibration_data else []
            self._wrapped, skipped = calibrate(network, layout, batches, self.config,
                                               build_pipeline(self.config, layout))
        self._check_kv_cache(self._wrapped)
        self.report = layer_report(self._wrapped, skipped)
        logger.info("PTQ %s (%s): %d cells quantized\n%s", self.config.name, self.config.mode.value,
                    len(self._wrapped), format_report(self.report))
        return network

    def convert(self, network):
        if not self._wrapped:
            raise RuntimeError("convert() needs apply() first")
        for container, path, wrapper in self._wrapped:
            replace_cell(container, path, wrapper.quantized, name_prefix=wrapper.name)
        self._wrapped = []
        return network

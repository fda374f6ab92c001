"""PTQ: post-training quantization of a network, following the CompAlgo lifecycle."""
from dataclasses import replace

import mindspore as ms

from network_helpers.layouts import layout_for

from .algorithms import build_pipeline
from .algorithms.fallback import HeldOutKL, apply_fallbacks, ranked_by_sensitivity, search_fallbacks
from .algorithms.rotation import install_online_rotations, rotate_network
from .calibration import build_deploy_structure, calibrate
from .cells.tree import replace_cell
from .comp_algo import CompAlgo
from .config import OutliersSuppressionType, PTQConfig, PTQMode
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
    cell (see mindspore_ptq.report); it is logged at INFO as a table. With fallback, `config` afterwards carries
    the chosen plan in `layer_overrides` (save that config with the checkpoint) and `fallback` says how it was
    chosen.
    """

    def __init__(self, config: PTQConfig):
        if not isinstance(config, PTQConfig):
            raise TypeError(f"PTQ needs a PTQConfig, got {type(config).__name__}")
        super().__init__(config)
        self._wrapped = []
        self.report = []
        self.fallback = {}

    def _check_kv_cache(self, plans_found):
        if self.config.kvcache_quant_dtype is not None and not any(w.kind == "kv_cache" for _, _, w in plans_found):
            raise ValueError("kvcache_quant_dtype=int8 but the network has no (non-blacklisted) KV cache cell "
                             "registered for quantization")

    def apply(self, network, network_helper=None, datasets=None):
        if self._wrapped:
            raise RuntimeError("this PTQ instance was already applied; create a new PTQ for another network")
        layout = network_helper.layout if network_helper is not None else layout_for(network)
        rotate = self.config.outliers_suppression is OutliersSuppressionType.ROTATE
        if self.config.mode is PTQMode.DEPLOY:
            if rotate:
                install_online_rotations(network, layout)
            self._wrapped, skipped = build_deploy_structure(network, layout, self.config)
        else:
            if ms.get_context("mode") != ms.PYNATIVE_MODE:
                raise RuntimeError("PTQ calibration runs in PyNative: call "
                                   "mindspore.set_context(mode=mindspore.PYNATIVE_MODE) before apply()")
            batches = _calibration_batches(datasets) if self.config.needs_calibration_data else []
            if rotate:
                rotate_network(network, layout)
            held_out = self._hold_out(network, batches)
            if held_out:
                batches = batches[:-len(held_out.batches)]
            self._wrapped, skipped = calibrate(network, layout, batches, self.config,
                                               build_pipeline(self.config, layout))
            self._fall_back(network, held_out)
        self._check_kv_cache(self._wrapped)
        self.report = layer_report(self._wrapped, skipped)
        logger.info("PTQ %s (%s): %d cells quantized\n%s", self.config.name, self.config.mode.value,
                    len(self._wrapped), format_report(self.report))
        return network

    def _hold_out(self, network, batches):
        """The KL yardstick on the last calibration samples (float log-probs taken now), if a budget is set."""
        if self.config.fallback_kl_budget is None:
            return None
        count = self.config.fallback_holdout_samples
        if len(batches) <= count:
            raise ValueError(f"fallback_kl_budget holds out {count} calibration samples; give more than {count}")
        return HeldOutKL(network, batches[-count:])

    def _fall_back(self, network, held_out):
        """Choose and apply fallbacks; record the plan in the config's layer_overrides."""
        config = self.config
        if not (config.fallback_layers or held_out):
            return
        ranked = ranked_by_sensitivity(self._wrapped)
        if held_out:
            max_count = int(config.fallback_max_fraction * len(ranked))
            count, history = search_fallbacks(network, ranked, config.fallback_precision, held_out,
                                              config.fallback_kl_budget, max_count)
            self.fallback = {"count": count, "of": len(ranked), "kl_by_count": history,
                             "budget": config.fallback_kl_budget, "met": history[count] <= config.fallback_kl_budget}
        else:
            count = min(config.fallback_layers, len(ranked))
            apply_fallbacks(ranked, count, config.fallback_precision)
            self.fallback = {"count": count, "of": len(ranked)}
        plan = tuple((w.name, config.fallback_precision) for w in ranked[:count])
        self.fallback["layers"] = [name for name, _ in plan]
        self.config = replace(config, layer_overrides=plan + config.layer_overrides)

    def convert(self, network):
        if not self._wrapped:
            raise RuntimeError("convert() needs apply() first")
        for container, path, wrapper in self._wrapped:
            replace_cell(container, path, wrapper.quantized, name_prefix=wrapper.name)
        self._wrapped = []
        return network

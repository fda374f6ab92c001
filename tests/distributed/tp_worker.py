"""Run by msrun (see tests/test_tensor_parallel.py): float logits, quantization and generation with TP."""
import sys
from pathlib import Path

import numpy as np
import mindspore as ms

from mindspore_ptq import PTQ
from mindspore_ptq.io import save_quantized
from mindspore_ptq.config import CalibrationInputs
from mindspore_ptq.app.presets import approach_config
from network_helpers import MFParallelLlama2Helper
from ms_infra.parallel import tp_rank_and_size


# Float calibration inputs, power-of-two smoothing and rounded ranges: the checkpoint does not depend on the TP size.
REPRODUCIBLE = dict(calibration_inputs=CalibrationInputs.FLOAT, smooth_power_of_two=True, range_mantissa_bits=8)
GENERATION_PROMPT, GENERATED = 10, 6  # greedy generation in GRAPH_MODE from the probe's first tokens


def main(yaml_path, work_dir, approach):
    work_dir = Path(work_dir)
    data = np.load(work_dir / "data.npz")
    helper = MFParallelLlama2Helper(yaml_path)
    helper.set_context(ms.PYNATIVE_MODE)
    rank, _ = tp_rank_and_size()
    network = helper.create_network()  # the full float checkpoint, sliced for this rank
    results = {"float_logits": network(ms.Tensor(data["probe"])).asnumpy()}
    config = approach_config(approach, **REPRODUCIBLE)
    ptq = PTQ(config)
    ptq.apply(network, helper, list(data["calibration"]))
    ptq.convert(network)
    results["quant_logits"] = network(ms.Tensor(data["probe"])).asnumpy()
    save_quantized(network, work_dir / f"{approach}.ckpt", config, float_dtype=ms.float32)  # deploys exactly
    ms.set_context(mode=ms.GRAPH_MODE)
    results["generated"] = network.generate([data["probe"][0, :GENERATION_PROMPT]], max_new_tokens=GENERATED,
                                            eos_token_id=-1)[0]
    np.save(work_dir / f"generated_rank{rank}.npy", results["generated"])
    if rank == 0:
        np.savez(work_dir / "tp_results.npz", **results)


if __name__ == "__main__":
    main(*sys.argv[1:])

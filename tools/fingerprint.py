"""Behaviour fingerprint: quantize fixed networks with fixed data and record the sha256 of every checkpoint.

Run it before and after a refactor; `--compare` says whether anything moved, and by how much:

    python tools/fingerprint.py --output outputs/fingerprint/before            # tiny model + SmolLM2
    python tools/fingerprint.py --output outputs/fingerprint/after --compare outputs/fingerprint/before

Cases: a16w8, a8w8c8 (seed), a8w8c8_per_token and a8w8c8_rotated_auto, on a tiny random Llama (seeded) and on
SmolLM2-135M with 4 SQuAD train calibration samples (its rotated_auto holds out 1 of them for the KL budget,
where the preset holds out 4). Each case's checkpoint stays in the output folder, so a changed file can be
compared parameter by parameter: int8 values exactly, float parameters by relative difference.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import mindspore as ms

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # a script in the checkout: run it against this checkout's code

from mindspore_ptq import PTQ  # noqa: E402
from mindspore_ptq.io import save_quantized  # noqa: E402
from mindspore_ptq.app.presets import approach_config  # noqa: E402
from network_helpers.llama import LlamaArgs, ParallelLlamaForCausalLM  # noqa: E402

CASES = ("a16w8", "a8w8c8", "a8w8c8_per_token", "a8w8c8_rotated_auto")
OVERRIDES = {"a8w8c8_rotated_auto": dict(fallback_holdout_samples=1)}  # 4 samples: calibrate on 3, judge on 1
TINY = LlamaArgs(vocab_size=96, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, ffn_hidden_size=96,
                 seq_length=64, batch_size=1, theta=10000.0, pad_token_id=0, eos_token_id=95)
SMOLLM2_SAMPLES = 4


def tiny_network():
    """The tiny Llama with seeded random weights (unit-ish norms, 1/sqrt(fan-in) linears)."""
    rng = np.random.default_rng(0)
    network = ParallelLlamaForCausalLM(TINY)
    weights = {}
    for param in network.get_parameters():
        if param.name.endswith(("key_cache", "value_cache")):
            continue
        if param.name.endswith(("norm.weight", "norm_out.weight")):
            value = 1.0 + 0.1 * rng.standard_normal(param.shape)
        else:
            value = rng.standard_normal(param.shape) / np.sqrt(param.shape[-1])
        weights[param.name] = ms.Parameter(ms.Tensor(value.astype(np.float32)), name=param.name)
    ms.load_param_into_net(network, weights)
    return network, None


def tiny_samples():
    rng = np.random.default_rng(1)
    return [rng.integers(1, TINY.vocab_size, size=(1, length)).astype(np.int32) for length in (24, 40, 32, 48)]


def smollm2(artifacts):
    from network_helpers import MFParallelLlama2Helper
    helper = MFParallelLlama2Helper(str(Path(artifacts) / "predict_smollm2_135m.yaml"))
    return helper.create_network(), helper


def smollm2_samples(helper, squad_dir):
    from mindspore_ptq.app.workflow import calibration_samples
    return calibration_samples(helper, str(Path(squad_dir) / "train-v1.1.json"), SMOLLM2_SAMPLES)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint_case(model, approach, output, build, samples):
    if ms.get_context("device_target") != "CPU":
        ms.set_device("CPU")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network, helper = build()
    config = approach_config(approach, **OVERRIDES.get(approach, {}))
    ptq = PTQ(config)
    ptq.apply(network, helper, [ms.Tensor(s, ms.int32) for s in samples(helper)])
    ptq.convert(network)
    path = save_quantized(network, output / model / f"{approach}.ckpt", ptq.quantized_config)
    params = ms.load_checkpoint(str(path))
    return {"checkpoint": str(path), "sha256": sha256(path),
            "params": {name: hashlib.sha256(p.asnumpy().tobytes()).hexdigest() for name, p in params.items()}}


def compare(after, before):
    """Per case: identical, or which parameters differ (int8: how many values; float: max relative change)."""
    lines, identical = [], True
    for key, case in after.items():
        old = before.get(key)
        if old is None:
            lines.append(f"{key}: not in the earlier fingerprint")
            identical = False
            continue
        if case["sha256"] == old["sha256"]:
            lines.append(f"{key}: checkpoint identical (sha256 {case['sha256'][:16]})")
            continue
        identical = False
        new_params, old_params = ms.load_checkpoint(case["checkpoint"]), ms.load_checkpoint(old["checkpoint"])
        names = sorted(set(new_params) | set(old_params))
        moved = [n for n in names if case["params"].get(n) != old["params"].get(n)]
        lines.append(f"{key}: checkpoint differs; {len(moved)} of {len(names)} parameters")
        for name in moved:
            if name not in new_params or name not in old_params:
                lines.append(f"  {name}: only in {'after' if name in new_params else 'before'}")
                continue
            new, old_value = new_params[name].asnumpy(), old_params[name].asnumpy()
            if new.dtype != old_value.dtype or new.shape != old_value.shape:
                lines.append(f"  {name}: {old_value.dtype}{old_value.shape} -> {new.dtype}{new.shape}")
            elif np.issubdtype(new.dtype, np.integer):
                lines.append(f"  {name}: {int((new != old_value).sum())} of {new.size} integer values differ")
            else:
                scale = max(float(np.abs(old_value.astype(np.float64)).max()), 1e-30)
                change = float(np.abs(new.astype(np.float64) - old_value).max()) / scale
                lines.append(f"  {name}: float, max |difference| / max |value| {change:.2e}")
    return identical, lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="folder for the checkpoints and fingerprint.json")
    parser.add_argument("--compare", type=Path, help="an earlier --output folder to compare against")
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"], choices=["tiny", "smollm2"])
    parser.add_argument("--approaches", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--artifacts", type=Path, default=REPO_ROOT / "artifacts" / "smollm2-135m")
    parser.add_argument("--squad_dir", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "squad1.1")
    args = parser.parse_args(argv)
    if (args.output / "fingerprint.json").exists():
        parser.error(f"{args.output / 'fingerprint.json'} exists; choose another --output")
    models = {"tiny": (tiny_network, lambda helper: tiny_samples()),
              "smollm2": (lambda: smollm2(args.artifacts), lambda helper: smollm2_samples(helper, args.squad_dir))}
    result = {}
    for model in args.models:
        build, samples = models[model]
        for approach in args.approaches:
            result[f"{model}/{approach}"] = fingerprint_case(model, approach, args.output, build, samples)
            print(f"{model}/{approach}: {result[f'{model}/{approach}']['sha256']}", flush=True)
    (args.output / "fingerprint.json").write_text(json.dumps(result, indent=1))
    if args.compare:
        identical, lines = compare(result, json.loads((args.compare / "fingerprint.json").read_text()))
        print("\n".join(lines))
        return 0 if identical else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate a network in GRAPH_MODE: SQuAD v1.1 F1/EM on the first N dev questions and perplexity (with KL and
top-1 agreement against a reference checkpoint if one is given).

    python example/ptq/eval_squad.py --config example/configs/predict_smollm2_135m.yaml --n_samples 200
"""
import argparse
import json
import os
from pathlib import Path

import mindspore as ms

from mindspore_ptq.evaluation import context_windows, evaluate_perplexity, evaluate_squad
from mindspore_ptq.presets import APPROACHES, approach_config
from mindspore_ptq.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from network_helpers.llama.parallel import tp_rank_and_size

DEFAULT_SQUAD_DIR = os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="example/configs/predict_smollm2_135m.yaml", help="MindFormers YAML")
    parser.add_argument("--load_checkpoint", default=None, help="checkpoint to evaluate (default: the YAML's)")
    parser.add_argument("--approach", default=None, choices=sorted(APPROACHES),
                        help="quantized checkpoint's approach (default: read from the PTQ config beside it)")
    parser.add_argument("--dataset_path", default=f"{DEFAULT_SQUAD_DIR}/dev-v1.1.json", help="SQuAD dev file")
    parser.add_argument("--n_samples", type=int, default=200, help="first N dev questions; 0 skips SQuAD")
    parser.add_argument("--max_new_tokens", type=int, default=24, help="answer length limit in tokens")
    parser.add_argument("--template", default="squad_3shot", help="prompt template name")
    parser.add_argument("--ppl_windows", type=int, default=64, help="512-token dev windows for perplexity; 0 skips")
    parser.add_argument("--reference_checkpoint", default=None,
                        help="float checkpoint to compare against (KL divergence and top-1 agreement)")
    parser.add_argument("--batch_size", type=int, default=None, help="prompts generated together (default: YAML's)")
    parser.add_argument("--pynative", action="store_true", help="run in PyNative instead of GRAPH_MODE")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # 1. Context and network: GRAPH_MODE for deployment.
    helper = MFParallelLlama2Helper(args.config)
    if args.batch_size:
        helper = helper.with_specs(batch_size=args.batch_size)
    helper.set_context(ms.PYNATIVE_MODE if args.pynative else ms.GRAPH_MODE)
    tokenizer = helper.create_tokenizer()
    # A quantized checkpoint is loaded into the int8 structure rebuilt in DEPLOY mode.
    network = load_network(helper, args.load_checkpoint, approach_config(args.approach) if args.approach else None)
    results = {"config": args.config, "checkpoint": args.load_checkpoint or helper.config.load_checkpoint}
    # 2. SQuAD F1/EM by greedy generation.
    if args.n_samples:
        squad = evaluate_squad(network, helper, tokenizer, args.dataset_path, args.n_samples,
                               args.max_new_tokens, args.template)
        print(f"SQuAD ({squad['n']} questions, {args.template}): F1 {squad['f1']:.2f}  EM {squad['exact_match']:.2f}"
              f"  (MindFormers EmF1Metric: F1 {squad['mf_f1']:.2f}  EM {squad['mf_exact_match']:.2f})"
              f"  {squad['seconds']:.0f} s")
        results["squad"] = squad
    # 3. Perplexity, and KL / top-1 against the reference network.
    if args.ppl_windows:
        windows = context_windows(args.dataset_path, tokenizer, n_windows=args.ppl_windows)
        reference = load_network(helper, args.reference_checkpoint) if args.reference_checkpoint else None
        ppl = evaluate_perplexity(network, windows, reference)
        extra = f"  KL {ppl['kl']:.5f}  top-1 {ppl['top1']:.2f}%" if reference is not None else ""
        print(f"Perplexity ({len(windows)}x512 windows): {ppl['ppl']:.3f}{extra}  {ppl['seconds']:.0f} s")
        results["perplexity"] = ppl
    if args.output and tp_rank_and_size()[0] == 0:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()

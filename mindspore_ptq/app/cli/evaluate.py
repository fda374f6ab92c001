"""Deploy a float or quantized checkpoint in GRAPH_MODE and evaluate it.

SQuAD v1.1 F1/EM on the first N dev questions, perplexity (with KL and top-1 agreement against a reference
checkpoint), parameter memory and generation speed. A quantized checkpoint's int8 structure is rebuilt in DEPLOY
mode from the PTQ config beside it.

    mindspore-ptq eval --load_checkpoint outputs/a8w8c8/a8w8c8.ckpt --n_samples 200 --ppl_windows 64
"""
import contextlib
from pathlib import Path

import mindspore as ms

from network_helpers import MFParallelLlama2Helper
from ms_infra.files import check_inputs, check_outputs, write_json_atomic
from ms_infra.parallel import tp_rank_and_size

from ...config import BackendTarget
from ...datasets import load_squad
from ...evaluation import (NetworkReference, StoredReference, check_logits_folder, context_windows,
                           evaluate_perplexity, evaluate_squad, logits_writer, perplexity_window)
from ...evaluation.resources import parameter_memory_mb, peak_rss_mb
from ...evaluation.speed import generation_speed
from ..workflow import load_network
from .approach import add_approach_arguments, resolve_approach
from .common import (DEFAULT_SQUAD_DIR, POSITIVE, add_config_argument, add_shots_argument,
                     add_window_length_argument, check_prompt_inputs, count)


def add_arguments(parser):
    add_config_argument(parser)
    parser.add_argument("--load_checkpoint", default=None, help="checkpoint to evaluate (default: the YAML's)")
    add_approach_arguments(parser, None, "quantized checkpoint's approach, checked against the PTQ config beside it "
                                         "(default: read from that config)")
    parser.add_argument("--dataset_path", "-s", default=f"{DEFAULT_SQUAD_DIR}/dev-v1.1.json",
                        help="SQuAD v1.1 dev file")
    add_shots_argument(parser)
    parser.add_argument("--n_samples", type=count(0, "skips SQuAD"), default=200, help="first N dev questions")
    parser.add_argument("--max_new_tokens", type=POSITIVE, default=24, help="answer length limit in tokens")
    parser.add_argument("--template", default="squad_3shot", help="prompt template name")
    parser.add_argument("--ppl_windows", type=count(0, "skips perplexity"), default=64,
                        help="dev windows for perplexity")
    add_window_length_argument(parser, "--ppl_window_length")
    parser.add_argument("--reference_checkpoint", default=None,
                        help="float checkpoint to compare against (KL divergence and top-1 agreement)")
    parser.add_argument("--reference_logits", default=None,
                        help="compare against the logits an earlier run stored with --save_logits (same windows), "
                             "instead of building a reference network")
    parser.add_argument("--save_logits", default=None,
                        help="store this network's logits on the perplexity windows in this folder, as a later "
                             "run's --reference_logits (about 100 MB per 512-token window of SmolLM2)")
    parser.add_argument("--speed_prompt_tokens", type=count(0, "skips the speed figure"), default=0,
                        help="time generation at batch 1 from the first dev passage cut to this many tokens")
    parser.add_argument("--speed_new_tokens", type=POSITIVE, default=128, help="tokens generated for the speed figure")
    parser.add_argument("--batch_size", type=POSITIVE, default=None,
                        help="prompts generated together (default: YAML's)")
    parser.add_argument("--backend", choices=[target.value for target in BackendTarget], default=None,
                        help="kernels of a quantized checkpoint's deployed cells, in place of its PTQ config's "
                             "(portable: MindSpore's own ops, the reference path)")
    parser.add_argument("--pynative", action="store_true", help="run in PyNative instead of GRAPH_MODE")
    parser.add_argument("--output", default=None,
                        help="write the results as JSON here (rewritten as each part finishes)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output file or --save_logits folder")


def _save(args, results):
    """Write what is finished so far, with the process's peak resident memory: a process that dies later (e.g.
    out of memory) keeps it."""
    results["peak_rss_mb"] = peak_rss_mb()
    if args.output and tp_rank_and_size()[0] == 0:
        write_json_atomic(args.output, results)


def _check(args, helper):
    """Everything the run reads and writes, and the sizes it asks for, before the network is built."""
    checkpoint_flag = "--load_checkpoint" if args.load_checkpoint else f"{args.config}: load_checkpoint"
    inputs = {checkpoint_flag: args.load_checkpoint or helper.config.get("load_checkpoint") or None,
              "--reference_checkpoint": args.reference_checkpoint}
    if args.output:
        check_outputs([args.output], args.overwrite,
                      inputs=[args.config, *inputs.values(), args.dataset_path, args.shots_path])
    check_inputs(inputs)
    if args.reference_logits and args.reference_checkpoint:
        raise ValueError("--reference_checkpoint and --reference_logits both name the reference: give one")
    if args.reference_logits:
        check_logits_folder(args.reference_logits, "--reference_logits")
    if args.save_logits:
        _check_logits_output(args)
    if args.n_samples:
        check_prompt_inputs(args.dataset_path, args.template, args.shots_path)
    elif args.ppl_windows or args.speed_prompt_tokens:
        check_inputs({"--dataset_path": args.dataset_path})
    seq_length = helper.get_spec("seq_length")
    if args.speed_prompt_tokens and args.speed_prompt_tokens + args.speed_new_tokens > seq_length:
        raise ValueError(f"--speed_prompt_tokens {args.speed_prompt_tokens} + --speed_new_tokens "
                         f"{args.speed_new_tokens} exceed the model's seq_length {seq_length}")
    return perplexity_window(seq_length, args.ppl_window_length) if args.ppl_windows else None


def _check_logits_output(args):
    """--save_logits: a folder it may write (not the one read as --reference_logits, an existing one only with
    --overwrite), and perplexity windows to store."""
    folder = Path(args.save_logits)
    if not args.ppl_windows:
        raise ValueError("--save_logits stores the logits of the perplexity windows, but --ppl_windows is 0")
    if args.reference_logits and folder.resolve() == Path(args.reference_logits).resolve():
        raise ValueError(f"--save_logits {folder} is also --reference_logits; choose another folder")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--save_logits {folder} is a file; name a folder")
    if folder.exists() and not args.overwrite:
        raise FileExistsError(f"--save_logits {folder} exists; pass --overwrite to replace it")
    check_outputs([folder / "logits.npy"], overwrite=True)  # its parent must be writable


def _reference(args, helper, windows):
    if args.reference_logits:
        return StoredReference(args.reference_logits, windows)
    return NetworkReference(load_network(helper, args.reference_checkpoint)) if args.reference_checkpoint else None


def run(args):
    # 1. Context and network: GRAPH_MODE for deployment.
    helper = MFParallelLlama2Helper(args.config)
    if args.batch_size:
        helper = helper.with_specs(batch_size=args.batch_size)
    window = _check(args, helper)
    approach = resolve_approach(args)[1]
    helper.set_context(ms.PYNATIVE_MODE if args.pynative else ms.GRAPH_MODE)
    tokenizer = helper.create_tokenizer()
    # A quantized checkpoint is loaded into the int8 structure rebuilt in DEPLOY mode.
    network = load_network(helper, args.load_checkpoint, approach, args.backend)
    results = {"config": args.config, "checkpoint": args.load_checkpoint or helper.config.load_checkpoint,
               "memory_mb": parameter_memory_mb(network)}
    # 2. SQuAD F1/EM by greedy generation.
    if args.n_samples:
        squad = evaluate_squad(network, helper, tokenizer, args.dataset_path, args.n_samples,
                               args.max_new_tokens, args.template, args.shots_path)
        emf1 = (f"F1 {squad['mf_f1']:.2f}  EM {squad['mf_exact_match']:.2f}" if squad["mf_f1"] is not None
                else "skipped, MindFormers is not installed")
        print(f"SQuAD ({squad['n']} questions, {args.template}): F1 {squad['f1']:.2f}  EM {squad['exact_match']:.2f}"
              f"  (MindFormers EmF1Metric: {emf1})  {squad['seconds']:.0f} s")
        results["squad"] = squad
        _save(args, results)
    # 3. Perplexity, and KL / top-1 against the reference network.
    if args.ppl_windows:
        windows = context_windows(args.dataset_path, tokenizer, window, args.ppl_windows)
        reference = _reference(args, helper, windows)
        storing = logits_writer(args.save_logits, windows) if args.save_logits and tp_rank_and_size()[0] == 0 \
            else contextlib.nullcontext()
        with storing as record:
            ppl = evaluate_perplexity(network, windows, reference, record)
        extra = f"  KL {ppl['kl']:.5f}  top-1 {ppl['top1']:.2f}%" if reference is not None else ""
        print(f"Perplexity ({len(windows)}x{window} windows): {ppl['ppl']:.3f}{extra}  {ppl['seconds']:.0f} s")
        results["perplexity"] = ppl
        _save(args, results)
    # 4. Generation speed at batch 1.
    if args.speed_prompt_tokens:
        text = load_squad(args.dataset_path)[0].context
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"][: args.speed_prompt_tokens]
        speed = generation_speed(network, prompt, args.speed_new_tokens)
        print(f"Speed: prefill {speed['prefill_s']:.3f} s ({speed['prompt_tokens']} tokens), "
              f"decode {speed['decode_tokens_per_s']:.1f} tokens/s")
        results["speed"] = speed
    _save(args, results)
    return results

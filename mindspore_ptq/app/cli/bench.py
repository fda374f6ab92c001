"""Benchmark float and every quantization approach side by side, in one run.

SQuAD F1/EM, perplexity, KL and top-1 vs the fp32 network, checkpoint size, parameter memory, calibration time and
peak RSS, prefill latency and decode tokens/s. Writes results.json, results.md and PNG plots (accuracy vs size,
per-layer error and sensitivity heat maps).

    mindspore-ptq bench --n_samples 200 --ppl_windows 64 --calib_samples 32 --output_dir outputs/bench
Each step runs in its own process (MindSpore keeps compiled graphs until the process ends); --reuse resumes.
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import mindspore as ms

from network_helpers import MFParallelLlama2Helper
from ms_infra.files import check_inputs, check_outputs, write_json_atomic, write_text_atomic

from ..benchmark import markdown_tables
from ...io import checkpoint_size_mb
from ...log import logger
from ..plots import plot_accuracy_vs_size, plot_layer_errors
from ..presets import ALL_APPROACHES, APPROACHES, approach_config
from ..reports import report_path_for
from ..workflow import check_float_checkpoint
from .common import DEFAULT_SQUAD_DIR, POSITIVE, add_config_argument, count

REFERENCE_LOGITS = "reference_logits"  # the fp32 row's logits on the perplexity windows (a folder)


def add_arguments(parser):
    add_config_argument(parser)
    parser.add_argument("--fp16_checkpoint", default="artifacts/smollm2-135m/smollm2_135m_fp16.ckpt",
                        help="the FP16 baseline checkpoint (sizes are reported as ratios to it)")
    parser.add_argument("--squad_dir", default=DEFAULT_SQUAD_DIR, help="folder with train-v1.1.json and dev-v1.1.json")
    parser.add_argument("--approaches", nargs="+", default=list(APPROACHES), choices=sorted(ALL_APPROACHES))
    parser.add_argument("--float_rows", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16"],
                        help="float baselines to evaluate (fp32 is always the reference; the FP16 checkpoint's size "
                             "is the size yardstick either way)")
    parser.add_argument("--n_samples", type=POSITIVE, default=200, help="dev questions for F1/EM")
    parser.add_argument("--ppl_windows", type=POSITIVE, default=64, help="512-token dev windows for perplexity and KL")
    parser.add_argument("--calib_samples", type=POSITIVE, default=32, help="calibration samples (train questions)")
    parser.add_argument("--calib_text_windows", type=count(0, "adds none"), default=0,
                        help="plain-text windows of the train contexts added to the calibration samples")
    parser.add_argument("--speed_prompt_tokens", type=POSITIVE, default=200, help="prompt length for the speed figures")
    parser.add_argument("--speed_new_tokens", type=POSITIVE, default=128, help="generated tokens for decode tokens/s")
    parser.add_argument("--skip_float_forward", action="store_true",
                        help="do not time a float forward pass over each calibration set (the yardstick of the "
                             "'x float fwd' column; it costs about a third of a calibration)")
    parser.add_argument("--reuse", action="store_true", help="keep results already in output_dir (resume a run)")
    parser.add_argument("--overwrite", action="store_true", help="redo and replace results already in output_dir")
    parser.add_argument("--output_dir", default="outputs/bench")


def _command(name, *args):
    return [sys.executable, "-m", "mindspore_ptq.app.cli", name, *args]


def _step(command, output, log, args, needs=(), files=()):
    """Run one step in its own process unless --reuse and its output exists with every key in `needs` (a step
    that died part-way left only its finished parts) and every path in `files` exists; its stdout goes to `log`."""
    command = [str(part) for part in command] + (["--overwrite"] if args.overwrite else [])
    done = args.reuse and Path(output).is_file() and all(key in json.loads(Path(output).read_text()) for key in needs) \
        and all(Path(path).exists() for path in files)
    if not done:
        if Path(output).is_file() and args.reuse:
            command.append("--overwrite")  # resume: redo the step that did not finish
        logger.info("running %s", " ".join(command[2:]))
        with open(log, "w", encoding="utf-8") as stdout:
            status = subprocess.run(command, check=False, stdout=stdout).returncode
        if status:
            raise ChildProcessError(f"bench step `mindspore-ptq {' '.join(command[3:])}` failed with exit status "
                                    f"{status} (its error is above; its output is in {log})")
    return json.loads(Path(output).read_text())


def _quantize(args, name, directory):
    checkpoint = directory / f"{name}.ckpt"
    command = _command("quantize", "--config", args.config, "--approach", name, "--n_samples", args.calib_samples,
                       "--dataset_path", f"{args.squad_dir}/train-v1.1.json", "--output_dir", directory,
                       "--text_windows", args.calib_text_windows)
    if approach_config(name).needs_calibration_data and not args.skip_float_forward:
        command.append("--time_float_forward")
    return _step(command, checkpoint.with_suffix(".json"), directory / "quantize.log", args)


def _evaluate(args, row, directory, reference_logits):
    """Two GRAPH_MODE processes (MindSpore keeps every compiled graph until its process ends): SQuAD, then speed,
    which share the batch-1 prefill-chunk and decode graphs; then perplexity/KL, whose full-window graph would
    otherwise stay beside them. fp32 (`reference_logits` None) stores its logits on the windows, and every other
    row's KL/top-1 reads them back instead of rebuilding the fp32 network."""
    common = _command("eval", "--config", args.config, "--load_checkpoint", row["checkpoint"], "--dataset_path",
                      f"{args.squad_dir}/dev-v1.1.json", "--batch_size", 1)
    squad = _step(common + ["--n_samples", args.n_samples, "--ppl_windows", 0, "--speed_prompt_tokens",
                            args.speed_prompt_tokens, "--speed_new_tokens", args.speed_new_tokens, "--output",
                            directory / "squad.json"], directory / "squad.json", directory / "squad.log", args,
                  needs=("squad", "speed"))
    stored = directory / REFERENCE_LOGITS if reference_logits is None else None
    extra = ["--save_logits", stored] if stored else ["--reference_logits", reference_logits]
    perplexity = _step(common + ["--n_samples", 0, "--ppl_windows", args.ppl_windows, "--output",
                                 directory / "perplexity.json"] + extra,
                       directory / "perplexity.json", directory / "perplexity.log", args, needs=("perplexity",),
                       files=[stored] if stored else [])
    row["squad"] = {k: v for k, v in squad["squad"].items() if k != "predictions"}
    row.update(perplexity=perplexity["perplexity"], speed=squad["speed"], memory_mb=squad["memory_mb"],
               eval_peak_rss_mb=squad["peak_rss_mb"])


def run(args):
    output_dir = Path(args.output_dir)
    if args.reuse and args.overwrite:
        raise ValueError("--reuse keeps earlier results and --overwrite replaces them: choose one")
    if not args.reuse:
        check_outputs([output_dir / "results.json"], args.overwrite)
    fp32_checkpoint = MFParallelLlama2Helper(args.config).config.get("load_checkpoint")
    check_inputs({f"{args.config}: load_checkpoint": fp32_checkpoint or None,
                  "--squad_dir train file": Path(args.squad_dir) / "train-v1.1.json",
                  "--squad_dir dev file": Path(args.squad_dir) / "dev-v1.1.json"})
    if not fp32_checkpoint:
        raise ValueError(f"{args.config} names no load_checkpoint: bench needs the float network's weights")
    check_float_checkpoint(fp32_checkpoint, f"{args.config}: load_checkpoint")
    if not Path(args.fp16_checkpoint).is_file():
        raise FileNotFoundError(f"--fp16_checkpoint {args.fp16_checkpoint} not found (the size yardstick; "
                                f"`make convert` writes it)")
    names = ", ".join(dict.fromkeys(["fp32", *args.float_rows, *args.approaches]))
    print(f"bench: {args.n_samples} dev questions ({args.squad_dir}), {args.ppl_windows} perplexity windows, "
          f"{args.calib_samples} calibration samples; rows: {names} -> {output_dir}", flush=True)
    floats = {"fp32": {"checkpoint": fp32_checkpoint}, "fp16": {"checkpoint": args.fp16_checkpoint}}
    floats = {name: floats[name] for name in ("fp32", *args.float_rows)}
    rows = {}
    for name in [*floats, *args.approaches]:  # quantize (PyNative calibration), then deploy and evaluate (GRAPH)
        (output_dir / name).mkdir(parents=True, exist_ok=True)
        row = rows[name] = floats.get(name) or _quantize(args, name, output_dir / name)
        row["size_mb"] = checkpoint_size_mb(row["checkpoint"])
        _evaluate(args, row, output_dir / name, None if name == "fp32" else output_dir / "fp32" / REFERENCE_LOGITS)
        logger.info("%s: F1 %.2f, PPL %.3f, decode %.1f tokens/s", name, row["squad"]["f1"],
                    row["perplexity"]["ppl"], row["speed"]["decode_tokens_per_s"])
    # Results: JSON, Markdown tables and plots.
    reports = {name: json.loads(report_path_for(rows[name]["checkpoint"]).read_text()) for name in args.approaches}
    meta = {"command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "machine": platform.platform(), "cpu_count": os.cpu_count(), "mindspore": ms.__version__}
    write_json_atomic(output_dir / "results.json", {"meta": meta, "rows": rows})
    plot_accuracy_vs_size(rows, output_dir / "accuracy_vs_size.png")
    plot_layer_errors(reports, output_dir / "layer_errors.png")
    plot_layer_errors(reports, output_dir / "layer_sensitivity.png", key="sensitivity")
    tables = markdown_tables(rows, checkpoint_size_mb(args.fp16_checkpoint))
    write_text_atomic(output_dir / "results.md", f"{tables}\n\n`{meta['command']}` on {meta['machine']}, "
                                                 f"{meta['cpu_count']} CPU cores, MindSpore {meta['mindspore']}\n")
    print(tables)
    return rows

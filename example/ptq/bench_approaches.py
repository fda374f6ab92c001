"""Quantize SmolLM2 (or any helper YAML) with every approach and compare each with float in one run:
SQuAD F1/EM, perplexity, KL and top-1 vs the fp32 network, checkpoint size and calibration time.

    python example/ptq/bench_approaches.py --n_samples 200 --ppl_windows 64 --calib_samples 32
Writes <output_dir>/results.json and results.md.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import mindspore as ms

from mindspore_ptq.presets import APPROACHES, approach_config
from mindspore_ptq.workflow import quantize_to_checkpoint
from network_helpers import MFParallelLlama2Helper

EVAL_SCRIPT = Path(__file__).resolve().parent / "eval_squad.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="example/configs/predict_smollm2_135m.yaml", help="MindFormers YAML")
    parser.add_argument("--fp16_checkpoint", default="artifacts/smollm2-135m/smollm2_135m_fp16.ckpt",
                        help="the FP16 baseline checkpoint (sizes are reported as ratios to it)")
    parser.add_argument("--squad_dir", default=os.environ.get("SQUAD_DIR", "../shared/data/squad1.1"))
    parser.add_argument("--approaches", nargs="+", default=list(APPROACHES), choices=sorted(APPROACHES))
    parser.add_argument("--n_samples", type=int, default=200, help="dev questions for F1/EM")
    parser.add_argument("--ppl_windows", type=int, default=64, help="512-token dev windows")
    parser.add_argument("--calib_samples", type=int, default=32, help="calibration samples (train questions)")
    parser.add_argument("--eval_batch_size", type=int, default=1,
                        help="SQuAD prompts generated together (each prefill bucket compiles a graph that MindSpore's "
                             "CPU backend keeps until the process ends: about 5 GB per bucket at batch 4)")
    parser.add_argument("--reuse", action="store_true", help="reuse quantized checkpoints already in output_dir")
    parser.add_argument("--output_dir", default="outputs/bench")
    return parser.parse_args(argv)


def size_mb(path):
    return Path(path).stat().st_size / 2 ** 20


def markdown_table(rows, fp16_mb):
    fp32 = rows["fp32"]
    lines = ["| model | F1 | EM | ΔF1 | ΔEM | PPL | ΔPPL | KL vs fp32 | top-1 vs fp32 | ckpt MB | × FP16 | calib s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        squad, ppl = row.get("squad", {}), row.get("perplexity", {})
        cells = [name]
        for key, fmt in (("f1", "{:.2f}"), ("exact_match", "{:.2f}")):
            cells.append(fmt.format(squad[key]) if squad else "—")
        for key in ("f1", "exact_match"):
            cells.append(f"{squad[key] - fp32['squad'][key]:+.2f}" if squad else "—")
        cells.append(f"{ppl['ppl']:.3f}" if ppl else "—")
        cells.append(f"{ppl['ppl'] - fp32['perplexity']['ppl']:+.3f}" if ppl else "—")
        cells.append(f"{ppl['kl']:.4f}" if "kl" in ppl else "0")
        cells.append(f"{ppl['top1']:.2f}%" if "top1" in ppl else "100%")
        cells.append(f"{row['size_mb']:.1f}")
        cells.append(f"{row['size_mb'] / fp16_mb:.3f}")
        cells.append(f"{row['calibration_seconds']:.0f}" if "calibration_seconds" in row else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.PYNATIVE_MODE)
    fp32_checkpoint = helper.config.get("load_checkpoint")
    rows = {"fp32": {"checkpoint": fp32_checkpoint, "size_mb": size_mb(fp32_checkpoint)},
            "fp16": {"checkpoint": args.fp16_checkpoint, "size_mb": size_mb(args.fp16_checkpoint)}}
    # 1. Quantize with every approach (PyNative calibration on train questions).
    for name in args.approaches:
        checkpoint = output_dir / name / f"{name}.ckpt"
        if args.reuse and checkpoint.with_suffix(".json").is_file():
            summary = json.loads(checkpoint.with_suffix(".json").read_text())
        else:
            summary = quantize_to_checkpoint(helper, approach_config(name), f"{args.squad_dir}/train-v1.1.json",
                                             args.calib_samples, checkpoint)
        rows[name] = summary
        print(f"{name}: {summary['size_mb']:.1f} MB, calibration {summary['calibration_seconds']:.0f} s", flush=True)
    # 2. Each row in its own process (compiled graphs stay in memory until the process ends): deploy in
    #    GRAPH_MODE with eval_squad.py, SQuAD F1/EM, perplexity, KL and top-1 against the fp32 network.
    for name, row in rows.items():
        common = [sys.executable, str(EVAL_SCRIPT), "--config", args.config, "--load_checkpoint", str(row["checkpoint"]),
                  "--dataset_path", f"{args.squad_dir}/dev-v1.1.json"]
        squad_path, ppl_path = output_dir / name / "squad.json", output_dir / name / "perplexity.json"
        squad_path.parent.mkdir(parents=True, exist_ok=True)
        if not (args.reuse and squad_path.is_file()):
            subprocess.run(common + ["--n_samples", str(args.n_samples), "--ppl_windows", "0", "--batch_size",
                                     str(args.eval_batch_size), "--output", str(squad_path)], check=True)
        if not (args.reuse and ppl_path.is_file()):
            reference = [] if name == "fp32" else ["--reference_checkpoint", str(fp32_checkpoint)]
            subprocess.run(common + ["--n_samples", "0", "--ppl_windows", str(args.ppl_windows), "--output",
                                     str(ppl_path)] + reference, check=True)
        row["squad"] = {k: v for k, v in json.loads(squad_path.read_text())["squad"].items() if k != "predictions"}
        row["perplexity"] = json.loads(ppl_path.read_text())["perplexity"]
        print(f"{name}: F1 {row['squad']['f1']:.2f} EM {row['squad']['exact_match']:.2f} "
              f"PPL {row['perplexity']['ppl']:.3f}", flush=True)
    # 4. Results: JSON and a Markdown table.
    table = markdown_table(rows, rows["fp16"]["size_mb"])
    meta = {"command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])), "machine": platform.platform(),
            "cpu_count": os.cpu_count(), "mindspore": ms.__version__}
    (output_dir / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (output_dir / "results.md").write_text(f"{table}\n\n`{meta['command']}` on {meta['machine']}, "
                                           f"{meta['cpu_count']} CPU cores, MindSpore {meta['mindspore']}\n")
    print(table)
    return rows


if __name__ == "__main__":
    main()

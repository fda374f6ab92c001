"""Benchmark rows as Markdown: an accuracy table and a cost table, each quantized figure against float."""


def _fmt(value, spec, missing="—"):
    return missing if value is None else format(value, spec)


def _ratio(value, base):
    return None if value is None or not base else value / base


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_table(rows):
    """F1/EM (200 dev questions), perplexity, KL and top-1 agreement against the fp32 row."""
    fp32 = rows["fp32"]
    body = []
    for name, row in rows.items():
        squad, ppl = row["squad"], row["perplexity"]
        body.append([name, f"{squad['f1']:.2f}", f"{squad['exact_match']:.2f}",
                     f"{squad['f1'] - fp32['squad']['f1']:+.2f}",
                     f"{squad['exact_match'] - fp32['squad']['exact_match']:+.2f}", f"{ppl['ppl']:.3f}",
                     f"{100 * (ppl['ppl'] / fp32['perplexity']['ppl'] - 1):+.2f}%", _fmt(ppl.get("kl", 0.0), ".3g"),
                     f"{ppl.get('top1', 100.0):.2f}%", _fallback(row.get("fallback"))])
    return _table(["model", "F1", "EM", "ΔF1", "ΔEM", "PPL", "ΔPPL", "KL vs fp32", "top-1 vs fp32", "fell back"],
                  body)


def _fallback(fallback):
    """'k/n (p%)' of the activation-quantized linears that fell back, '—' without fallback."""
    if not fallback:
        return "—"
    return f"{fallback['count']}/{fallback['of']} ({100 * fallback['count'] / max(fallback['of'], 1):.1f}%)"


def cost_table(rows, fp16_mb):
    """Checkpoint size (× the FP16 checkpoint of `fp16_mb`), parameter memory, calibration cost, the SQuAD
    evaluation's peak RSS, speed (× fp32)."""
    fp32 = rows["fp32"]
    body = []
    for name, row in rows.items():
        weights, speed = row["memory_mb"]["weights"], row["speed"]
        calib = row.get("calibration_seconds")
        peak = row.get("peak_rss_mb")
        body.append([name, f"{row['size_mb']:.1f}", f"{row['size_mb'] / fp16_mb:.3f}", f"{weights:.1f}",
                     f"{weights / fp32['memory_mb']['weights']:.3f}", _fmt(calib, ".0f"),
                     _fmt(_ratio(calib, row.get("float_forward_seconds")), ".1f"),
                     "—" if peak is None else f"{peak:.0f} ({row['rss_before_mb']:.0f})",
                     _fmt(row.get("eval_peak_rss_mb"), ".0f"), f"{speed['prefill_s']:.3f}",
                     f"{speed['decode_tokens_per_s']:.1f}",
                     f"{speed['decode_tokens_per_s'] / fp32['speed']['decode_tokens_per_s']:.2f}"])
    header = ["model", "ckpt MB", "× FP16 ckpt", "weights in memory MB", "× fp32", "calib s", "× float fwd",
              "calib peak RSS MB (before)", "SQuAD eval peak RSS MB", "prefill s", "decode tok/s", "× fp32"]
    return _table(header, body)


def markdown_tables(rows, fp16_mb):
    return accuracy_table(rows) + "\n\n" + cost_table(rows, fp16_mb)

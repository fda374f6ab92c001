"""Where a quantized network loses accuracy: its error decoder layer by decoder layer, against the float network.

On plain-text dev windows (those of the perplexity and KL measures), for each decoder layer l:
  own      ||out_q - out_f||^2 / ||out_f - in_f||^2: the quantized layer's error on the float layer's input,
           relative to what the float layer adds to the residual stream (its own error, nothing carried in)
  carried  ||h_q - h_f||^2 / ||h_f||^2: the quantized network's hidden state after layer l against the float one's
           (its own error plus everything the layers before passed on)
then the KL divergence and top-1 agreement of the next-token distributions on the same windows.

    python example/ptq/trace_layer_error.py --load_checkpoint outputs/a8w8c8_auto/a8w8c8_auto.ckpt \
        --windows 2 --output outputs/a8w8c8_auto/layer_error.json
"""
import numpy as np
import mindspore as ms

from mindspore_ptq.app.cli.common import parse_window_script
from mindspore_ptq.evaluation import NetworkReference, context_windows, evaluate_perplexity, perplexity_window
from mindspore_ptq.app.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from ms_infra.files import write_json_atomic


def _relative(error, reference):
    return float(np.sum(np.square(error)) / max(float(np.sum(np.square(reference))), 1e-30))


def trace(float_network, quant_network, layout, ids):
    """[{layer, own, carried}] of one window (1, seq) of token ids."""
    float_args = layout.first_layer_inputs(float_network, ids)
    quant_args = layout.first_layer_inputs(quant_network, ids)
    rows = []
    float_layers, quant_layers = layout.decoder_layers(float_network), layout.decoder_layers(quant_network)
    for (name, float_layer), (_, quant_layer) in zip(float_layers, quant_layers):
        hidden_in = float_args[0].asnumpy()
        float_out = float_layer(*float_args)
        reference = float_out.asnumpy()
        own = quant_layer(*float_args).asnumpy() - reference
        quant_out = quant_layer(*quant_args)
        rows.append(dict(layer=name, own=_relative(own, reference - hidden_in),
                         carried=_relative(quant_out.asnumpy() - reference, reference)))
        float_args, quant_args = (float_out,) + tuple(float_args[1:]), (quant_out,) + tuple(quant_args[1:])
    return rows


def main(argv=None):
    args = parse_window_script(__doc__, argv, "quantized checkpoint (its PTQ config beside it)",
                               "write the per-layer errors as JSON here", checkpoint_required=True)
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.PYNATIVE_MODE)
    float_network, quant_network = load_network(helper), load_network(helper, args.load_checkpoint)
    window = perplexity_window(helper.get_spec("seq_length"), args.window_length)  # 512, or seq_length if shorter
    windows = context_windows(args.dataset_path, helper.create_tokenizer(), window, args.windows)
    per_window = [trace(float_network, quant_network, helper.layout, ms.Tensor(window[None], ms.int32))
                  for window in windows]
    layers = [dict(layer=rows[0]["layer"], own=float(np.mean([r["own"] for r in rows])),
                   carried=float(np.mean([r["carried"] for r in rows]))) for rows in zip(*per_window)]
    agreement = evaluate_perplexity(quant_network, windows, reference=NetworkReference(float_network))
    kl, top1 = agreement["kl"], agreement["top1"] / 100
    result = dict(checkpoint=args.load_checkpoint, windows=len(windows), layers=layers, kl=kl, top1=top1)
    print("| layer | own error | carried error |\n| --- | --- | --- |")
    for row in layers:
        print(f"| {row['layer']} | {row['own']:.3g} | {row['carried']:.3g} |")
    print(f"KL {kl:.4f}, top-1 agreement {100 * top1:.2f}% over {len(windows)} windows")
    if args.output:
        write_json_atomic(args.output, result)
    return result


if __name__ == "__main__":
    main()

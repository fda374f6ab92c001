"""Save the next-token logits of the first perplexity windows (to compare TP=N with TP=1, or two checkpoints).

    python example/ptq/dump_logits.py --output outputs/logits_tp1.npy
    WORKERS=3 bash example/ptq/msrun.sh example/ptq/dump_logits.py \
        --config example/configs/predict_smollm2_135m_mp3.yaml --output outputs/logits_tp3.npy
"""
import numpy as np
import mindspore as ms

from mindspore_ptq.app.cli.common import parse_window_script
from mindspore_ptq.evaluation import context_windows, perplexity_window
from mindspore_ptq.app.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from ms_infra.parallel import tp_rank_and_size


def main(argv=None):
    args = parse_window_script(__doc__, argv, "float or quantized checkpoint (default: YAML's)",
                               ".npy file (written by rank 0)", output_required=True)
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.GRAPH_MODE)
    network = load_network(helper, args.load_checkpoint)
    window = perplexity_window(helper.get_spec("seq_length"), args.window_length)  # 512, or seq_length if shorter
    windows = context_windows(args.dataset_path, helper.create_tokenizer(), window, args.windows)
    logits = np.stack([network(ms.Tensor(w[None], ms.int32)).asnumpy()[0] for w in windows])
    if tp_rank_and_size()[0] == 0:
        np.save(args.output, logits)
        print(f"saved logits {logits.shape} to {args.output}")


if __name__ == "__main__":
    main()

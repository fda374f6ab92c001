"""Save the next-token logits of the first perplexity windows (to compare TP=N with TP=1, or two checkpoints).

    python example/ptq/dump_logits.py --output outputs/logits_tp1.npy
    WORKERS=3 bash example/ptq/msrun.sh example/ptq/dump_logits.py \
        --config example/configs/predict_smollm2_135m_mp3.yaml --output outputs/logits_tp3.npy
"""
import argparse

import numpy as np
import mindspore as ms

from mindspore_ptq.app.cli.common import add_config_argument, add_dev_window_arguments
from mindspore_ptq.evaluation import context_windows
from mindspore_ptq.app.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from ms_infra.parallel import tp_rank_and_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--load_checkpoint", default=None, help="float or quantized checkpoint (default: YAML's)")
    add_dev_window_arguments(parser)
    parser.add_argument("--output", required=True, help=".npy file (written by rank 0)")
    args = parser.parse_args(argv)
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.GRAPH_MODE)
    network = load_network(helper, args.load_checkpoint)
    windows = context_windows(args.dataset_path, helper.create_tokenizer(), n_windows=args.windows)
    logits = np.stack([network(ms.Tensor(w[None], ms.int32)).asnumpy()[0] for w in windows])
    if tp_rank_and_size()[0] == 0:
        np.save(args.output, logits)
        print(f"saved logits {logits.shape} to {args.output}")


if __name__ == "__main__":
    main()

"""The reference of KL divergence and top-1 agreement: a network's next-token logits on the perplexity windows,
computed as the windows pass (`NetworkReference`) or read back from a folder an earlier run wrote with
`logits_writer` (`StoredReference`), so that every quantized row of a benchmark compares with the float network
without rebuilding and recompiling it. The stored logits are the network's own output, so both give the same KL."""
import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import mindspore as ms

IDS, LOGITS = "window_ids.npy", "logits.npy"


def next_token_logits(network, window):
    """The network's logits (len(window) - 1, vocab) for the tokens after each but the last of `window`."""
    return network(ms.Tensor(window[None], ms.int32)).asnumpy()[0, :-1]


class NetworkReference:
    """Logits computed by `network` as each window passes."""

    def __init__(self, network):
        self.network = network

    def logits(self, index, window):
        return next_token_logits(self.network, window)


def check_logits_folder(directory, flag):
    """Before long work: `directory` must be a folder `logits_writer` completed. Raises naming `flag`."""
    directory = Path(directory)
    missing = [name for name in (IDS, LOGITS) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{flag} {directory} holds no stored reference logits ({', '.join(missing)} "
                                f"missing); write them with `mindspore-ptq eval --save_logits {directory}`")


class StoredReference:
    """Logits that `logits_writer` stored in `directory`, for the same windows (checked: other windows raise)."""

    def __init__(self, directory, windows, flag="--reference_logits"):
        check_logits_folder(directory, flag)
        stored = np.load(Path(directory) / IDS)
        if stored.shape != np.shape(windows) or not np.array_equal(stored, windows):
            raise ValueError(f"{flag} {directory} was computed on other windows ({stored.shape[0]} of "
                             f"{stored.shape[1]} tokens) than this run's ({len(windows)} of {np.shape(windows)[1]} "
                             f"tokens, or other text): store it again with --save_logits and the same "
                             f"--dataset_path, --ppl_windows and --ppl_window_length")
        self.stored = np.load(Path(directory) / LOGITS, mmap_mode="r")

    def logits(self, index, window):
        return np.array(self.stored[index])


@contextlib.contextmanager
def logits_writer(directory, windows):
    """Yield `record(index, logits)` that stores each window's logits; when the block succeeds the folder
    (window_ids.npy, logits.npy) replaces `directory` at once, and when it fails nothing is left. The logits
    go to disk as they come (a memory map: 64 windows of SmolLM2 are 6.4 GB)."""
    directory = Path(directory)
    temp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    stored = []

    def record(index, logits):
        if not stored:
            stored.append(np.lib.format.open_memmap(temp / LOGITS, "w+", logits.dtype,
                                                    (len(windows),) + logits.shape))
        stored[0][index] = logits

    try:
        np.save(temp / IDS, np.asarray(windows))
        yield record
        if stored:
            stored.pop().flush()
        if directory.exists():
            shutil.rmtree(directory)  # the caller checked that it may be replaced
        os.replace(temp, directory)
    finally:
        shutil.rmtree(temp, ignore_errors=True)

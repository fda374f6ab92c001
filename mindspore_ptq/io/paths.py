"""Where the files that travel with a quantized checkpoint live."""
import re
from pathlib import Path


def config_path_for(checkpoint):
    """a8w8c8.ckpt (or a per-rank a8w8c8_rank1.ckpt) -> a8w8c8.ptq.yaml"""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(re.sub(r"_rank\d+$", "", checkpoint.stem) + ".ptq.yaml")

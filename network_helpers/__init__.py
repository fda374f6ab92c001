"""Networks and the helpers that describe them to `mindspore_ptq`."""
from .mf_parallel_llama2_helper import MFParallelLlama2Helper
from .network_helper import NetworkHelper

__all__ = ["MFParallelLlama2Helper", "NetworkHelper"]

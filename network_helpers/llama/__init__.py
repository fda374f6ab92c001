"""The portable ParallelLlama: standard MindSpore ops, MindFormers 1.6 parameter names."""
from .args import LlamaArgs
from .kv_cache import StaticKVCache
from .layers import ColumnParallelLinear, RMSNorm, RowParallelLinear, VocabEmbedding
from .model import ParallelAttention, ParallelLlamaForCausalLM, ParallelMLP, ParallelTransformer, \
    ParallelTransformerLayer

__all__ = ["LlamaArgs", "StaticKVCache", "ColumnParallelLinear", "RMSNorm", "RowParallelLinear", "VocabEmbedding",
           "ParallelAttention", "ParallelLlamaForCausalLM", "ParallelMLP", "ParallelTransformer",
           "ParallelTransformerLayer"]

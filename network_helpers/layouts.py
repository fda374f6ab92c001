"""Architecture knowledge that a quantization algorithm needs, as data, keyed by network class."""
from dataclasses import dataclass
from typing import Tuple

from .llama import ColumnParallelLinear, ParallelLlamaForCausalLM, RowParallelLinear, StaticKVCache, VocabEmbedding


@dataclass(frozen=True)
class LlamaLayout:
    """Where the decoder layers are, what feeds them, and whose output feeds which linears."""
    layers_path: str = "model.layers"
    head_paths: Tuple[str, ...] = ("lm_head",)
    embedding_paths: Tuple[str, ...] = ("model.tok_embeddings",)  # token tables, read before the first layer
    # (cell whose output feeds the linears, the linears), paths relative to a decoder layer. The feeding
    # cell's output channels can absorb a per-channel smoothing factor exactly.
    smooth_groups: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
        ("attention_norm", ("attention.wq", "attention.wk", "attention.wv")),
        ("ffn_norm", ("feed_forward.w1", "feed_forward.w3")),
        ("feed_forward.w3", ("feed_forward.w2",)),
    )
    # For a rotation of the residual stream: the norms that read it (with the linears they feed), the linears
    # that write it, the embedding (its weight parameter) and the final norm before the head cells; and the
    # cells that can rotate a linear's input online (a cell with set_down_input_rotation, the linear).
    norm_readers: Tuple[Tuple[str, Tuple[str, ...]], ...] = smooth_groups[:2]
    residual_writers: Tuple[str, ...] = ("attention.wo", "feed_forward.w2")
    embedding_weight: str = "model.tok_embeddings.embedding_weight"
    final_norm: str = "model.norm_out"
    online_rotations: Tuple[Tuple[str, str], ...] = (("feed_forward", "feed_forward.w2"),)

    def decoder_layers(self, network):
        """[(full name, cell)] of the decoder layers in execution order."""
        return [(f"{self.layers_path}.{i}", layer) for i, layer in enumerate(network.model.layers)]

    def first_layer_inputs(self, network, input_ids):
        """(hidden, cos, sin, mask) that the first decoder layer receives in a full forward."""
        return network.model.layer_inputs(input_ids)

    def head_inputs(self, network, hidden):
        """Input of the head cells given the last decoder layer's output."""
        return network.model.norm_out(hidden)

    def pad_token_id(self, network):
        """The token id that pads input rows (on the right)."""
        return network.args.pad_token_id


LAYOUTS = {ParallelLlamaForCausalLM: LlamaLayout()}

# The portable network's cells that the quantization plugin can replace, by kind. Linears hold `weight`
# (out, in), say `parallel_mode`/`tp_size`; KV caches hold key_cache/value_cache and the storage hooks
# (storage_dtype, encode_*, decode_*) of StaticKVCache.
QUANTIZABLE_CELLS = {"linear": (ColumnParallelLinear, RowParallelLinear), "kv_cache": (StaticKVCache,),
                     "embedding": (VocabEmbedding,)}


def layout_for(network):
    """The layout registered for `network`'s class (or a base class)."""
    for cls in type(network).__mro__:
        if cls in LAYOUTS:
            return LAYOUTS[cls]
    raise TypeError(f"no layout is registered for {type(network).__name__}; known: "
                    f"{[cls.__name__ for cls in LAYOUTS]} (add one to network_helpers.layouts.LAYOUTS)")

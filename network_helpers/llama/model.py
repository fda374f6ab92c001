"""The portable ParallelLlama, with the cell tree and parameter names of MindFormers 1.6 experimental.infer.

Three call forms of `ParallelLlamaForCausalLM(input_ids, batch_valid_length=None)`:
- no `batch_valid_length`: a full causal forward without cache, logits (B, S, V) for every position;
- S > 1 with lengths: prefill of right-padded prompts, fills the KV cache, logits (B, V) at each last token;
- S == 1 with lengths: one decode step at position length-1 of each row, logits (B, V);
- with `chunk_start` (B,) as well: a prefill chunk at positions chunk_start .. chunk_start+S-1 against the cache
  (one graph for any prompt length), logits (B, V) at each row's last token if the chunk holds it (else at the
  nearest position of the chunk).
"""
import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from .args import LlamaArgs
from .generation import generate
from .kv_cache import StaticKVCache
from .layers import (ColumnParallelLinear, RMSNorm, RowParallelLinear, VocabEmbedding, apply_rotary,
                     rotary_tables, rotate_half_matrix)
from ms_infra.parallel import tp_rank_and_size

_MASK_VALUE = -1e9


class ParallelAttention(nn.Cell):
    """Grouped-query self-attention with rotary positions and a static KV cache."""

    def __init__(self, args: LlamaArgs):
        super().__init__()
        tp, dtype = args.model_parallel, args.compute_dtype
        self.head_dim = args.head_dim
        self.n_heads, self.n_kv_heads = args.num_heads // tp, args.n_kv_heads // tp
        self.n_rep = self.n_heads // self.n_kv_heads
        self.scale = 1.0 / float(np.sqrt(self.head_dim))
        kv_size = args.n_kv_heads * args.head_dim
        linear = dict(tp_size=tp, param_init_type=args.param_init_type, compute_dtype=dtype)
        self.wq = ColumnParallelLinear(args.hidden_size, args.hidden_size, **linear)
        self.wk = ColumnParallelLinear(args.hidden_size, kv_size, **linear)
        self.wv = ColumnParallelLinear(args.hidden_size, kv_size, **linear)
        self.wo = RowParallelLinear(args.hidden_size, args.hidden_size, **linear)
        self.kv_cache = StaticKVCache(args.batch_size, self.n_kv_heads, args.seq_length, self.head_dim, dtype)
        self.rotate_half = rotate_half_matrix(self.head_dim)

    def _heads(self, x, n_heads):
        batch, seq, _ = x.shape
        return x.reshape(batch, seq, n_heads, self.head_dim).transpose(0, 2, 1, 3)

    def construct(self, x, cos, sin, mask, batch_valid_length=None):
        batch, seq, _ = x.shape
        query = apply_rotary(self._heads(self.wq(x), self.n_heads), cos, sin, self.rotate_half)
        key = apply_rotary(self._heads(self.wk(x), self.n_kv_heads), cos, sin, self.rotate_half)
        value = self._heads(self.wv(x), self.n_kv_heads)
        if self.kv_cache.fused_decode and seq == 1 and batch_valid_length is not None \
                and batch_valid_length.ndim == 1:  # a decode step the cache attends itself (e.g. int8, prefix only)
            context = self.kv_cache.decode_attention(query, key, value, batch_valid_length, self.scale)
            return self.wo(context.reshape(batch, seq, self.n_heads * self.head_dim).astype(x.dtype))
        key, value = self.kv_cache(key, value, batch_valid_length)
        # query heads h = g * n_rep + r share kv head g: fold the n_rep queries of a group into rows.
        query = query.reshape(batch, self.n_kv_heads, self.n_rep * seq, self.head_dim)
        scores = ops.BatchMatMul(transpose_b=True)(query.astype(ms.float32), key.astype(ms.float32)) * self.scale
        if self.n_rep > 1:  # the mask of one query row serves the n_rep query heads folded into rows
            mask = ops.tile(mask, (1, 1, self.n_rep, 1))
        probs = ops.softmax(scores + mask, -1)
        context = ops.BatchMatMul()(probs.astype(value.dtype), value)
        context = context.reshape(batch, self.n_heads, seq, self.head_dim).transpose(0, 2, 1, 3)
        return self.wo(context.reshape(batch, seq, self.n_heads * self.head_dim))


class ParallelMLP(nn.Cell):
    """SwiGLU feed-forward: w2(silu(w1 x) * w3 x)."""

    def __init__(self, args: LlamaArgs):
        super().__init__()
        linear = dict(tp_size=args.model_parallel, param_init_type=args.param_init_type,
                      compute_dtype=args.compute_dtype)
        self.w1 = ColumnParallelLinear(args.hidden_size, args.ffn_hidden_size, **linear)
        self.w3 = ColumnParallelLinear(args.hidden_size, args.ffn_hidden_size, **linear)
        self.w2 = RowParallelLinear(args.ffn_hidden_size, args.hidden_size, **linear)
        self.down_input_rotation = nn.Identity()  # an orthogonal rotation folded into w2 (set_down_input_rotation)

    def set_down_input_rotation(self, rotation):
        """Rotate w2's input by `rotation` (a Cell), e.g. a Hadamard that spreads activation outliers before
        int8; w2's weight must hold the same rotation. The full input is needed, so not under TP."""
        if self.w2.tp_size > 1:
            raise ValueError("an online rotation of w2's input needs model_parallel=1 (the input is split)")
        self.down_input_rotation = rotation

    def construct(self, x):
        return self.w2(self.down_input_rotation(ops.silu(self.w1(x)) * self.w3(x)))


class ParallelTransformerLayer(nn.Cell):
    """Pre-norm decoder block.

    A deployment backend may run its decode steps (one token per row, lengths (B,)) as one kernel call:
    `set_decode_kernel(kernel)`; `kernel(x, cos, sin, lengths, decode_operands())` returns the output and stores
    the step's key/value in the layer's cache itself (at position length - 1, in the cache's storage format). `decode_cells()` are the cells whose `decode_operands()` it reads, in that order
    (each linear and cache names its format in `decode_scheme`), `decode_shape()` the sizes it needs and
    `decode_blocker()` what would stop it.
    """

    def __init__(self, args: LlamaArgs):
        super().__init__()
        self.attention_norm = RMSNorm(args.hidden_size, args.rms_norm_eps, args.param_init_type)
        self.attention = ParallelAttention(args)
        self.ffn_norm = RMSNorm(args.hidden_size, args.rms_norm_eps, args.param_init_type)
        self.feed_forward = ParallelMLP(args)
        self.compute_dtype, self.model_parallel = args.compute_dtype, args.model_parallel
        self.fused_decode = False

    def set_decode_kernel(self, kernel):
        self.decode_kernel = kernel
        self.fused_decode = True

    def decode_cells(self):
        attention, mlp = self.attention, self.feed_forward
        return (self.attention_norm, attention.wq, attention.wk, attention.wv, attention.kv_cache, attention.wo,
                self.ffn_norm, mlp.w1, mlp.w3, mlp.w2)

    def decode_operands(self):
        attention, mlp = self.attention, self.feed_forward
        return (self.attention_norm.decode_operands() + attention.wq.decode_operands()
                + attention.wk.decode_operands() + attention.wv.decode_operands()
                + attention.kv_cache.decode_operands() + attention.wo.decode_operands()
                + self.ffn_norm.decode_operands() + mlp.w1.decode_operands() + mlp.w3.decode_operands()
                + mlp.w2.decode_operands())

    def decode_shape(self):
        attention = self.attention
        return dict(heads=attention.n_heads, kv_heads=attention.n_kv_heads, head_dim=attention.head_dim,
                    eps=self.attention_norm.eps, softmax_scale=attention.scale)

    def decode_blocker(self):
        """Why one kernel cannot run this layer's decode step ('' when it can)."""
        blockers = ((self.model_parallel > 1, "tensor parallel (the kernel does no collectives)"),
                    (self.compute_dtype != ms.float32, f"compute dtype {self.compute_dtype} (float32 only)"),
                    (not isinstance(self.feed_forward.down_input_rotation, nn.Identity),
                     "w2's input is rotated online"))
        return next((reason for blocked, reason in blockers if blocked), "")

    def construct(self, x, cos, sin, mask, batch_valid_length=None):
        if self.fused_decode and x.shape[1] == 1 and batch_valid_length is not None \
                and batch_valid_length.ndim == 1:
            return self.decode_kernel(x, cos, sin, batch_valid_length, self.decode_operands())
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, batch_valid_length)
        return h + self.feed_forward(self.ffn_norm(h))


class ParallelTransformer(nn.Cell):
    """Embedding, decoder layers and final norm."""

    def __init__(self, args: LlamaArgs):
        super().__init__()
        self.args = args
        self.tok_embeddings = VocabEmbedding(args.vocab_size, args.hidden_size, args.param_init_type)
        self.layers = nn.CellList([ParallelTransformerLayer(args) for _ in range(args.num_layers)])
        self.norm_out = RMSNorm(args.hidden_size, args.rms_norm_eps, args.param_init_type)
        self.cos, self.sin = rotary_tables(args.head_dim, args.seq_length, args.theta)
        causal = np.triu(np.full((args.seq_length, args.seq_length), _MASK_VALUE, np.float32), k=1)
        self.causal_mask = Tensor(causal)
        self.positions = Tensor(np.arange(args.seq_length, dtype=np.int32))

    def cache_positions(self, input_ids, batch_valid_length=None, chunk_start=None):
        """(B, S) cache positions of the tokens for a decode step or a prefill chunk, else None."""
        batch, seq = input_ids.shape
        if chunk_start is not None:
            return chunk_start.astype(ms.int32).reshape(batch, 1) + self.positions[:seq].reshape(1, seq)
        if batch_valid_length is not None and seq == 1:
            return batch_valid_length.astype(ms.int32).reshape(batch, 1) - 1
        return None

    def layer_inputs(self, input_ids, batch_valid_length=None, chunk_start=None):
        """Hidden states and the (cos, sin, mask) every decoder layer receives."""
        batch, seq = input_ids.shape
        hidden = self.tok_embeddings(input_ids).astype(self.args.compute_dtype)
        positions = self.cache_positions(input_ids, batch_valid_length, chunk_start)
        if positions is None:
            cos, sin = self.cos[:seq].reshape(1, 1, seq, -1), self.sin[:seq].reshape(1, 1, seq, -1)
            mask = self.causal_mask[:seq, :seq].reshape(1, 1, seq, seq)
            return hidden, cos, sin, mask
        cos = ops.gather(self.cos, positions.reshape(-1), 0).reshape(batch, 1, seq, -1)
        sin = ops.gather(self.sin, positions.reshape(-1), 0).reshape(batch, 1, seq, -1)
        future = self.positions.reshape(1, 1, -1) > positions.reshape(batch, seq, 1)
        mask = (future.astype(ms.float32) * _MASK_VALUE).reshape(batch, 1, seq, -1)
        return hidden, cos, sin, mask

    def construct(self, input_ids, batch_valid_length=None, chunk_start=None):
        hidden, cos, sin, mask = self.layer_inputs(input_ids, batch_valid_length, chunk_start)
        cache_index = batch_valid_length if chunk_start is None else \
            self.cache_positions(input_ids, batch_valid_length, chunk_start)
        for layer in self.layers:
            hidden = layer(hidden, cos, sin, mask, cache_index)
        return self.norm_out(hidden)


class ParallelLlamaForCausalLM(nn.Cell):
    """Llama causal LM; see the module docstring for its three call forms."""

    def __init__(self, args: LlamaArgs):
        super().__init__()
        rank, size = tp_rank_and_size()
        if args.model_parallel not in (1, size):
            raise ValueError(f"parallel_config.model_parallel is {args.model_parallel} but {size} worker(s) "
                             f"are running; launch model_parallel workers with msrun")
        self.args, self.tp_rank = args, rank
        self.model = ParallelTransformer(args)
        self.lm_head = ColumnParallelLinear(args.hidden_size, args.vocab_size, tp_size=args.model_parallel,
                                            gather_output=True, param_init_type=args.param_init_type,
                                            compute_dtype=args.compute_dtype)

    def construct(self, input_ids, batch_valid_length=None, chunk_start=None):
        hidden = self.model(input_ids, batch_valid_length, chunk_start)
        if batch_valid_length is not None:
            if input_ids.shape[1] > 1:  # keep only each row's last prompt token
                last = batch_valid_length.astype(ms.int32) - 1
                if chunk_start is not None:
                    last = ops.clip_by_value(last - chunk_start.astype(ms.int32), 0, input_ids.shape[1] - 1)
                last = last.reshape(-1, 1, 1)
                hidden = ops.gather_elements(hidden, 1, last.broadcast_to((hidden.shape[0], 1, hidden.shape[2])))
            hidden = hidden.reshape(hidden.shape[0], hidden.shape[2])
        return self.lm_head(hidden).astype(ms.float32)

    def generate(self, input_ids, **kwargs):
        """Greedy (or sampled) generation; see `network_helpers.llama.generation.generate`."""
        return generate(self, input_ids, **kwargs)

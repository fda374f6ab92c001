"""Model arguments of the portable ParallelLlama, mapped from a MindFormers `model_config`."""
import difflib
from dataclasses import dataclass, fields

import mindspore as ms

_DTYPES = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}


def parse_dtype(name, field):
    """'float16' -> ms.float16, with an error naming the field on an unknown dtype."""
    if isinstance(name, ms.dtype.Type):
        return name
    if name not in _DTYPES:
        raise ValueError(f"model_config.{field}: unknown dtype {name!r}; expected one of {sorted(_DTYPES)}")
    return _DTYPES[name]


# MindFormers LlamaConfig keys that tune how MindFormers runs (kernels, memory, parallel layout, generation
# defaults) or size the FFN: accepted, and nothing in the portable network's maths depends on them.
ACCEPTED_KEYS = frozenset((
    "type", "use_past", "use_flash_attention", "block_size", "num_blocks", "is_dynamic", "layernorm_compute_type",
    "softmax_compute_type", "rotary_dtype", "residual_dtype", "embedding_init_type", "init_method_std",
    "checkpoint_name_or_path", "offset", "pipeline_stage", "parallel_config", "parallel_optimizer",
    "fine_grain_interleave", "pp_interleave_num", "qkv_concat", "fused_rms_norm", "rmsnorm_compute_2d",
    "use_rope_slice", "input_sliced_sig", "llm_backend", "chunk_prefill", "use_attn_mask_compression",
    "use_eod_attn_mask_compression", "use_ring_attention", "calculate_per_token_loss", "return_hidden_states",
    "max_position_embedding", "top_k", "top_p", "do_sample", "repetition_penalty", "intermediate_size",
    "ffn_dim_multiplier", "multiple_of"))
# Keys that change the maths in ways the portable network does not implement: only these values are accepted.
UNSUPPORTED_UNLESS = {"qkv_has_bias": (False, None), "attn_proj_has_bias": (False, None),
                      "extend_method": ("None", None), "scaling_factor": (None, 1.0), "moe_config": (None,),
                      "quant_config": (None,)}


def check_model_config_keys(cfg, known):
    """Every key is a LlamaArgs field, an accepted MindFormers key, or an unsupported one at a harmless value;
    a typo (a `thetta`, which would silently give the default rotary base) is named with the nearest key."""
    vocabulary = sorted(set(known) | ACCEPTED_KEYS | set(UNSUPPORTED_UNLESS))
    unknown = [key for key in cfg if key not in vocabulary]
    if unknown:
        hints = [f"{key!r}" + "".join(f" (did you mean {m!r}?)" for m in difflib.get_close_matches(key, vocabulary, 1))
                 for key in unknown]
        raise ValueError(f"model.model_config has unknown field(s): {', '.join(hints)}")
    for key, allowed in UNSUPPORTED_UNLESS.items():
        if key in cfg and cfg[key] not in allowed:
            raise ValueError(f"model.model_config.{key}={cfg[key]!r} is not supported by the portable network "
                             f"(it supports {' or '.join(map(repr, allowed))})")


def ffn_hidden_size(hidden_size, intermediate_size=None, ffn_dim_multiplier=None, multiple_of=256):
    """Llama's FFN width: `intermediate_size` if given, else 2/3 * 4h (times a multiplier) rounded up."""
    if intermediate_size:
        return int(intermediate_size)
    size = 4 * hidden_size
    if ffn_dim_multiplier is not None:
        size = int((ffn_dim_multiplier + 0.01) * size)
    size = int(2 * size / 3)
    return multiple_of * ((size + multiple_of - 1) // multiple_of)


@dataclass(frozen=True)
class LlamaArgs:
    """Everything the network needs to know about a Llama-family model."""
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    n_kv_heads: int
    ffn_hidden_size: int
    seq_length: int
    batch_size: int = 1
    rms_norm_eps: float = 1e-5
    theta: float = 10000.0
    compute_dtype: ms.dtype.Type = ms.float32
    param_init_type: ms.dtype.Type = ms.float32
    tie_word_embeddings: bool = False
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2
    ignore_token_id: int = -100
    max_decode_length: int = 512
    model_parallel: int = 1

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "n_kv_heads", "ffn_hidden_size",
                     "seq_length", "batch_size", "model_parallel"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"model_config.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"model_config.hidden_size ({self.hidden_size}) is not divisible by "
                             f"num_heads ({self.num_heads})")
        if self.num_heads % self.n_kv_heads:
            raise ValueError(f"model_config.num_heads ({self.num_heads}) is not divisible by "
                             f"n_kv_heads ({self.n_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for rotary embeddings")
        for name, size in (("num_heads", self.num_heads), ("n_kv_heads", self.n_kv_heads),
                           ("ffn_hidden_size", self.ffn_hidden_size)):
            if size % self.model_parallel:
                raise ValueError(f"parallel_config.model_parallel ({self.model_parallel}) does not divide "
                                 f"model_config.{name} ({size})")

    @property
    def head_dim(self):
        return self.hidden_size // self.num_heads

    @classmethod
    def from_model_config(cls, model_config, model_parallel=1):
        """Map a MindFormers `model.model_config` (dict-like) to LlamaArgs; missing required keys are named."""
        cfg = dict(model_config)
        required = ("vocab_size", "hidden_size", "num_layers", "num_heads", "seq_length")
        missing = [k for k in required if cfg.get(k) is None]
        if missing:
            raise KeyError(f"model.model_config is missing required field(s): {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        check_model_config_keys(cfg, known)
        values = {k: cfg[k] for k in known if cfg.get(k) is not None}
        values["n_kv_heads"] = cfg.get("n_kv_heads") or cfg["num_heads"]
        values["ffn_hidden_size"] = ffn_hidden_size(cfg["hidden_size"], cfg.get("intermediate_size"),
                                                    cfg.get("ffn_dim_multiplier"), cfg.get("multiple_of") or 256)
        for name in ("compute_dtype", "param_init_type"):
            if name in values:
                values[name] = parse_dtype(values[name], name)
        values["model_parallel"] = model_parallel
        return cls(**values)

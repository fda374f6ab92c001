"""A whole decoder layer's decode step as one CPU kernel call (kernels/decode_layer.cpp).

On CPU a decode step's time goes mostly to launching MindSpore ops (about 40 per layer, ~1 ms a layer for
SmolLM2) rather than to reading the weights; one call per layer removes that. Each linear keeps its own format
(float, W8, A8W8 static or per token, with or without a smoothing multiply) and the cache its own (float or
int8), read from the same parameters, so the checkpoint does not change. Prefill and full forwards still run
the layer's cells. A layer the kernel cannot run (see `decode_blocker` in network_helpers' layer contract, or a
cell format it does not know) keeps its cells, with one log line saying why.
"""
import mindspore as ms
from mindspore import Tensor, nn

from ..kernels.cpu import decode_layer_op
from ..log import logger

LINEAR_CODES = {"f32": 0, "w8": 1, "w4": 2, "a8w8_dynamic": 3, "a8w8_static": 4, "a8w8_dynamic_smooth": 5,
                "a8w8_static_smooth": 6}
CACHE_CODES = {"f32": 0, "int8": 1}
# Positions in the layer's decode_cells() (norm, wq, wk, wv, cache, wo, norm, w1, w3, w2) of the cells with a
# format, and the table of the formats each may have.
_CACHE_POSITION = 4
_LINEAR_POSITIONS = (1, 2, 3, 5, 7, 8, 9)
_FORMATS = {**{i: LINEAR_CODES for i in _LINEAR_POSITIONS}, _CACHE_POSITION: CACHE_CODES}


class FusedDecodeLayer(nn.Cell):
    """kernel(x (B, 1, hidden), cos, sin (B, 1, 1, D), lengths (B,), operands) -> out (B, 1, hidden) for one
    decoder layer, whose formats it reads at construction (`unsupported` first); the step's key/value go into the
    layer's cache, in place."""

    def __init__(self, layer):
        super().__init__()
        cells = layer.decode_cells()
        shape = layer.decode_shape()
        codes = [LINEAR_CODES[cells[i].decode_scheme] for i in _LINEAR_POSITIONS]
        cache = cells[_CACHE_POSITION]
        self.meta = Tensor([shape["heads"], shape["kv_heads"], shape["head_dim"], CACHE_CODES[cache.decode_scheme],
                            *codes], ms.int32)
        self.scalars = Tensor([shape["eps"], shape["softmax_scale"]], ms.float32)
        operand_dtypes = [p.dtype for p in layer.decode_operands()]
        self.op = decode_layer_op((ms.float32, ms.float32, ms.float32, ms.int32, ms.int32, ms.float32,
                                   *operand_dtypes))

    @staticmethod
    def unsupported(layer):
        """Why this kernel cannot run `layer`'s decode step ('' when it can)."""
        if not hasattr(layer, "decode_cells"):
            return f"{type(layer).__name__} has no decode-kernel contract"
        blocker = layer.decode_blocker()
        if blocker:
            return blocker
        cells = layer.decode_cells()
        for position, table in _FORMATS.items():
            cell = cells[position]
            scheme = getattr(cell, "decode_scheme", None)
            if scheme not in table:
                return f"{type(cell).__name__} runs format {scheme!r}, which the kernel does not"
        return ""

    def construct(self, x, cos, sin, lengths, operands):
        batch = x.shape[0]
        out = self.op(x.astype(ms.float32).reshape(batch, -1), cos.reshape(batch, -1), sin.reshape(batch, -1),
                      lengths.astype(ms.int32), self.meta, self.scalars, *operands)
        return out.reshape(x.shape).astype(x.dtype)


def fuse_decode_layers(layers):
    """Give each (name, layer) that the kernel can run a FusedDecodeLayer; returns how many got one. The layers
    left out are logged in one line per reason."""
    fused, kept = 0, {}
    for name, layer in layers:
        reason = FusedDecodeLayer.unsupported(layer)
        if reason:
            kept.setdefault(reason, []).append(name)
            continue
        layer.set_decode_kernel(FusedDecodeLayer(layer))
        fused += 1
    for reason, names in kept.items():
        shown = names[0] if len(names) == 1 else f"{len(names)} layers ({names[0]} .. {names[-1]})"
        logger.info("%s: decode steps keep the layer's cells (%s)", shown, reason)
    return fused

"""The deployed int8 token embedding and its calibrating stand-in."""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from .wrapper import QuantWrapper


class Int8Embedding(nn.Cell):
    """Token table stored as int8 rows with one float32 scale per token: x = table[ids] * scale[ids]."""
    scheme = "E8 per-token-row symmetric (weight-only)"

    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.embedding_weight = Parameter(Tensor(np.zeros((vocab_size, hidden_size)), ms.int8),
                                          name="embedding_weight", requires_grad=False)
        self.embedding_scale = Parameter(Tensor(np.zeros((vocab_size,)), ms.float32), name="embedding_scale",
                                         requires_grad=False)

    @classmethod
    def from_float(cls, float_cell):
        return cls(*float_cell.embedding_weight.shape)

    def construct(self, input_ids):
        rows = ops.gather(self.embedding_weight, input_ids, 0).astype(ms.float32)
        return rows * ops.gather(self.embedding_scale, input_ids, 0).expand_dims(-1)

    def set_quant_params(self, weight_q, weight_scale):
        self.embedding_weight.set_data(Tensor(weight_q, ms.int8))
        self.embedding_scale.set_data(Tensor(weight_scale, ms.float32))


class EmbeddingQuantWrapper(QuantWrapper):
    """Stands in for a float token embedding: nothing to observe (the table is rounded from its weights alone)."""
    kind = "embedding"

    def construct(self, input_ids):
        return (self.float_cell if self.quantized is None else self.quantized)(input_ids)

"""The embedding kind (opt-in, embedding_quant_dtype): a token table stored as int8 with one scale per row,
rounded to nearest from the float table (no calibration data). The tied-embedding lm_head is a linear, planned by
the weight settings."""
from .. import quant_functions as qf
from ..cell_plan import CellPlan
from ..cells.embedding import EmbeddingQuantWrapper, Int8Embedding
from .kind import CellKind


def plan(path, relative_path, config, foldable):
    return CellPlan(path, "embedding")


def quantize_embedding(wrapper):
    cell = Int8Embedding.from_float(wrapper.float_cell)
    cell.set_quant_params(*qf.quantize_weight_per_channel(wrapper.float_cell.embedding_weight.asnumpy()))
    return wrapper.set_quantized(cell)


def empty_cell(wrapper):
    return Int8Embedding.from_float(wrapper.float_cell)


def facts(cell):
    return {"scheme": cell.wrapper.quantized.scheme}


KIND = CellKind("embedding", EmbeddingQuantWrapper, enabled_by=("embeddings", "embedding_quant_dtype"), plan=plan,
                quantize=quantize_embedding, empty_cell=empty_cell, facts=facts)

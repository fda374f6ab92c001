"""The registry: lookup by float cell type (and subclasses), extension, and conflicts."""
import pytest
from mindspore import nn

from mindspore_ptq.cells import register, registered_types, wrapper_for
from mindspore_ptq.kinds.kv_cache import KVCacheQuantWrapper
from mindspore_ptq.cells.linear_wrapper import LinearQuantWrapper
from mindspore_ptq.config import PTQConfig
from mindspore_ptq.layer_policy import plan_cells
from network_helpers.llama import ColumnParallelLinear, RowParallelLinear, StaticKVCache
import mindspore as ms


def test_lookup_by_type_and_subclass():
    class MyColumn(ColumnParallelLinear):
        pass
    assert wrapper_for(ColumnParallelLinear(8, 4)) is LinearQuantWrapper
    assert wrapper_for(RowParallelLinear(8, 4)) is LinearQuantWrapper
    assert wrapper_for(MyColumn(8, 4)) is LinearQuantWrapper
    assert wrapper_for(StaticKVCache(1, 2, 8, 4)) is KVCacheQuantWrapper
    assert wrapper_for(nn.Dense(8, 4)) is None


def test_a_new_cell_type_is_one_registration_away():
    class Projection(nn.Cell):
        def __init__(self):
            super().__init__()
            self.weight = ms.Parameter(ms.Tensor([[1.0]]), name="weight")

    @register(Projection)
    class ProjectionWrapper(LinearQuantWrapper):
        pass

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.proj = Projection()

    plans = plan_cells(Net(), "net", PTQConfig(weight_quant_dtype=ms.int8))
    assert [(path, plan.path, cls) for path, plan, cls, _ in plans] == [("proj", "net.proj", ProjectionWrapper)]


def test_registering_a_type_twice_to_another_wrapper_fails():
    with pytest.raises(ValueError, match="already registered"):
        register(ColumnParallelLinear)(KVCacheQuantWrapper)


def test_mindformers_linears_are_registered_when_importable():
    layers = pytest.importorskip("mindformers.experimental.infer.core.layers",
                                 reason="MindFormers 1.6's experimental.infer is not installed")
    assert {layers.ColumnParallelLinear, layers.RowParallelLinear} <= set(registered_types())

"""Round to nearest: each calibrated wrapper gets its deployed int8 cell from its kind's quantizer (kinds/)."""
from ..kinds import KINDS
from ..lifecycle import Step


def deployed_cell(wrapper):
    """The empty deployed cell of a wrapper's plan, which it runs from now on (DEPLOY: a checkpoint fills it)."""
    return wrapper.set_quantized(KINDS[wrapper.kind].empty_cell(wrapper))


class RoundToNearest(Step):
    """Quantizes every wrapper of the layer that an earlier step (GPTQ) left unquantized by its kind's quantizer."""

    def on_layer(self, cells, layer, inputs):
        for cell in cells:
            if cell.wrapper.quantized is None:
                KINDS[cell.kind].quantize(cell.wrapper)

    on_head = on_layer

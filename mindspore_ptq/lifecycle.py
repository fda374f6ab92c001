"""The fixed lifecycle every algorithm step follows (the table that picks the steps is `algorithms.STEPS`).

A step overrides the hooks it needs; PTQ calls each hook of every selected step in table order:

    on_deploy(network, layout)                  DEPLOY: rebuild what the checkpoint cannot hold (online rotations)
    before_calibration(network, layout, batches) -> batches   change the float network, or set samples aside
    on_layer(cells, layer, inputs)              per decoder layer, after observation: smoothing, quantizers,
                                                measurements; `cells` are this layer's CalibratedCells
    on_head(cells, network, inputs)             the same for the head cells (lm_head) after the last layer
    after_calibration(network, cells) -> plan   a mixed-precision plan ((name, LayerPrecision), ...) or ()

A new step is one module in algorithms/ and one line in `algorithms.STEPS`.
"""
from dataclasses import dataclass, field


@dataclass
class CalibratedCell:
    """One quantized cell during calibration: where it sits, its wrapper, and what the steps noted for the
    per-layer report (smoothing, alpha search, output error, sensitivity, fallback)."""
    container: object
    path: str
    wrapper: object
    notes: dict = field(default_factory=dict)

    @property
    def kind(self):
        return self.wrapper.kind


class Step:
    """Base of the algorithm steps: every hook does nothing. `summary`: what the step decided, as plain data
    (PTQ.summaries; None: nothing to say); `name`: its key there."""
    name = "step"
    summary = None

    def on_deploy(self, network, layout):
        """DEPLOY mode, before the quantized cells are built."""

    def before_calibration(self, network, layout, batches):
        return batches

    def on_layer(self, cells, layer, inputs):
        """`layer` has been observed on `inputs` (its calibration inputs); its wrappers run float until a
        quantizer step gives them a quantized cell."""

    def on_head(self, cells, network, inputs):
        """The head cells, observed on the final norm's outputs."""

    def after_calibration(self, network, cells):
        return ()


"""The vocabulary of a PTQ configuration: one enum per idea."""
import enum


class PTQMode(enum.Enum):
    QUANTIZE = "quantize"  # calibrate (PyNative) and quantize a float network
    DEPLOY = "deploy"      # rebuild the quantized structure, to be filled by load_checkpoint


class BackendTarget(enum.Enum):
    """Which kernels deployed cells run (kernels.select); the checkpoint is the same for all of them."""
    NONE = "none"          # the fastest for the device: the C++ CPU kernels on CPU, portable ops elsewhere
    ASCEND = "ascend"      # MindSpore's Ascend quantized matmuls (built anywhere, run on Ascend only)
    PORTABLE = "portable"  # standard MindSpore ops on every device: the reference path


class OutliersSuppressionType(enum.Enum):
    NONE = "none"
    SMOOTH = "smooth"  # SmoothQuant: move activation outliers into the weights
    ROTATE = "rotate"  # Hadamard rotations of the residual stream and of w2's input (algorithms.rotation)
    AWQ = "awq"        # activation-aware weight scaling for weight-only quantization (algorithms.awq)


class Granularity(enum.Enum):
    """Which values share one scale."""
    PER_TENSOR = "per_tensor"    # activations: one static scale/zero point from calibration
    PER_CHANNEL = "per_channel"  # weights and KV cache: one scale per output channel
    PER_TOKEN = "per_token"      # activations: one symmetric scale per token, computed at run time
    PER_GROUP = "per_group"      # weights: one scale per group of group_size input channels of each row


class RangeObserver(enum.Enum):
    """How a static activation range is chosen from the calibration data."""
    MINMAX = "minmax"                # the observed extremes
    PERCENTILE = "percentile"        # clip each tail at the act_clip_percentile-th percentile of x
    HISTOGRAM_MSE = "histogram_mse"  # the clip that minimises the quantization MSE of a histogram


class CalibrationInputs(enum.Enum):
    """What each decoder layer is calibrated on."""
    QUANTIZED = "quantized"  # the outputs of the already-quantized layers before it: their error is seen
    FLOAT = "float"          # the float network's: independent of earlier roundings, so equal under any TP size


class LayerPrecision(enum.Enum):
    """How one linear is quantized (layer_overrides, fallback): float, or a weight/activation scheme."""
    FLOAT = "float"
    W8 = "w8"                              # int8 weights only
    A8W8_PER_TENSOR = "a8w8_per_tensor"    # static activations
    A8W8_PER_TOKEN = "a8w8_per_token"      # dynamic activations


# The activation granularity of each quantized precision: the one vocabulary the cells and the report use.
ACTIVATION_OF = {LayerPrecision.W8: None, LayerPrecision.A8W8_PER_TENSOR: Granularity.PER_TENSOR,
                 LayerPrecision.A8W8_PER_TOKEN: Granularity.PER_TOKEN}


class PrecisionRecovery(enum.Enum):
    """How weights are rounded (Golden Stick's precision_recovery)."""
    NONE = "none"  # round to nearest
    GPTQ = "gptq"  # GPTQ: column by column, the rounding error compensated on the columns not yet rounded

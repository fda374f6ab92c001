"""The approach options of `quantize` and `eval`: a preset name, one of Golden Stick 0.6's `-q` values, or its `ptq`
approach made of the per-field flags (the options of Golden Stick 0.6's `example/ptq/quant_ckpt.py`)."""
import mindspore as ms

from ...config import OutliersSuppressionType, PTQConfig
from ..presets import ALL_APPROACHES, approach_config

CUSTOM = "ptq"  # Golden Stick 0.6's approach made of -w/-a/-k/-o (and -b) alone

# Golden Stick 0.6's other `-q` values: (our preset of the same meaning, the fields its quant_ckpt.py sets otherwise).
GOLDEN_STICK_APPROACHES = {
    "rtn-a16w8": ("a16w8", {"opname_blacklist": ("lm_head",)}),  # round-to-nearest int8 weights, lm_head float
    "rtn-c8": ("c8", {}),                                          # round-to-nearest int8 KV cache
    "smooth_quant": ("a8w8", {}),                                  # SmoothQuant A8W8, w2 and lm_head float
}
APPROACH_CHOICES = (*sorted(ALL_APPROACHES), *GOLDEN_STICK_APPROACHES, CUSTOM)

_DTYPES = {"int8": ms.int8, "none": None}
# The per-field flags: PTQConfig field -> (Golden Stick's short flag, value name -> field value).
FIELD_FLAGS = {
    "weight_quant_dtype": ("-w", _DTYPES),
    "act_quant_dtype": ("-a", _DTYPES),
    "kvcache_quant_dtype": ("-k", _DTYPES),
    "outliers_suppression": ("-o", {kind.value: kind for kind in OutliersSuppressionType}),
}


def _golden_stick_help():
    mapped = "; ".join(f"{name} = {preset}" + "".join(f" with {field} {list(value)}"
                                                      for field, value in changes.items())
                       for name, (preset, changes) in GOLDEN_STICK_APPROACHES.items())
    return (f"Golden Stick 0.6's names: {mapped}; {CUSTOM} = the fields given by "
            f"{'/'.join(flag for flag, _ in FIELD_FLAGS.values())}/-b alone")


def add_approach_arguments(parser, default, approach_help):
    """--approach/-q, Golden Stick's per-field flags (-w, -a, -k, -o) and --opname_blacklist/-b."""
    parser.add_argument("--approach", "-q", default=default, choices=APPROACH_CHOICES, metavar="APPROACH",
                        help=f"{approach_help}. {_golden_stick_help()}")
    for field, (flag, values) in FIELD_FLAGS.items():
        parser.add_argument(f"--{field}", flag, choices=list(values), default=None,
                            help=f"with --approach {CUSTOM}: PTQConfig.{field} (default none)")
    parser.add_argument("--opname_blacklist", "-b", nargs="*", default=None,
                        help="cells whose name contains any of these stay float (default: the approach's)")


def resolve_approach(args, **overrides):
    """(name, PTQConfig) of the parsed approach options with `overrides` applied; (None, None) without
    --approach. The name labels output files: the approach, or for `ptq` 'ptq_' and the scheme (ptq_a8w8c8)."""
    fields = {field: values[getattr(args, field)] for field, (_, values) in FIELD_FLAGS.items()
              if getattr(args, field) is not None}
    if args.opname_blacklist is not None:
        overrides["opname_blacklist"] = tuple(args.opname_blacklist)
    if args.approach is None:
        if fields or overrides:
            raise ValueError(f"--approach is needed with {', '.join('--' + name for name in (*fields, *overrides))}")
        return None, None
    if fields and args.approach != CUSTOM:
        raise ValueError(f"the per-field flags ({', '.join('--' + field for field in fields)}) apply only with "
                         f"--approach {CUSTOM} (Golden Stick 0.6's approach made of them); --approach "
                         f"{args.approach} fixes those fields")
    if args.approach == CUSTOM:
        config = PTQConfig(**fields, **overrides)
        return f"{CUSTOM}_{config.name}", config
    preset, changes = GOLDEN_STICK_APPROACHES.get(args.approach, (args.approach, {}))
    return args.approach, approach_config(preset, **{**changes, **overrides})

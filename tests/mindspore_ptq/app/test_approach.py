"""The approach options of quantize and eval, Golden Stick 0.6's included: what each value means as a PTQConfig."""
import pytest
import mindspore as ms

from mindspore_ptq import OutliersSuppressionType
from mindspore_ptq.app.cli import build_parser, main
from mindspore_ptq.app.cli.approach import GOLDEN_STICK_APPROACHES, resolve_approach
from mindspore_ptq.app.presets import approach_config

SMOOTH, NONE = OutliersSuppressionType.SMOOTH, OutliersSuppressionType.NONE


def resolved(*argv, command="quantize"):
    return resolve_approach(build_parser().parse_args([command, *argv]))


def scheme(config):
    """What the Golden Stick 0.6 script sets, read back from a config."""
    return (config.weight_quant_dtype, config.act_quant_dtype, config.kvcache_quant_dtype,
            config.outliers_suppression, set(config.opname_blacklist))


# What Golden Stick 0.6's quant_ckpt.py sets for each -q value: weight, activation and KV-cache dtypes, outlier
# suppression and blacklist; written out here, independently of the table.
GOLDEN_STICK_MEANING = {
    "rtn-a16w8": (ms.int8, None, None, NONE, {"lm_head"}),
    "rtn-c8": (None, None, ms.int8, NONE, set()),
    "smooth_quant": (ms.int8, ms.int8, None, SMOOTH, {"lm_head", "w2"}),
}


@pytest.mark.parametrize("value", sorted(GOLDEN_STICK_MEANING))
def test_each_golden_stick_value_is_the_preset_of_its_meaning(value):
    name, config = resolved("-q", value)
    assert name == value and scheme(config) == GOLDEN_STICK_MEANING[value]
    preset, _ = GOLDEN_STICK_APPROACHES[value]
    assert config.name == preset  # a16w8, c8, a8w8: the seed presets, nothing else changed but the blacklist
    assert config.quantization_fields() == approach_config(preset, opname_blacklist=config.opname_blacklist) \
        .quantization_fields()


def test_every_golden_stick_value_is_covered():
    assert set(GOLDEN_STICK_APPROACHES) == set(GOLDEN_STICK_MEANING)


@pytest.mark.parametrize("argv, expected, name", [
    (["-w", "int8"], (ms.int8, None, None, NONE, set()), "ptq_a16w8"),
    (["-k", "int8"], (None, None, ms.int8, NONE, set()), "ptq_c8"),
    (["-w", "int8", "-a", "int8", "-k", "int8", "-o", "smooth", "-b", "w2", "lm_head"],
     (ms.int8, ms.int8, ms.int8, SMOOTH, {"w2", "lm_head"}), "ptq_a8w8c8"),
    (["--weight_quant_dtype", "int8", "--kvcache_quant_dtype", "int8", "--act_quant_dtype", "none"],
     (ms.int8, None, ms.int8, NONE, set()), "ptq_a16w8c8"),
], ids=["w8", "c8", "a8w8c8-smooth", "long-flags"])
def test_ptq_is_made_of_the_per_field_flags_alone(argv, expected, name):
    resolved_name, config = resolved("-q", "ptq", *argv)
    assert resolved_name == name and scheme(config) == expected


def test_ptq_of_the_seed_fields_is_the_seed_preset():
    _, config = resolved("-q", "ptq", "-w", "int8", "-a", "int8", "-k", "int8", "-o", "smooth", "-b", "w2", "lm_head")
    assert config.quantization_fields() == approach_config("a8w8c8").quantization_fields()


def test_golden_stick_short_flags_name_the_same_options_as_ours():
    short = build_parser().parse_args(["quantize", "-c", "x.yaml", "-s", "train.json", "-t", "SQuAD1.1"])
    long = build_parser().parse_args(["quantize", "--config", "x.yaml", "--dataset_path", "train.json"])
    assert vars(short) == vars(long)
    evaluate = build_parser().parse_args(["eval", "--config_path", "x.yaml", "-s", "dev.json"])
    assert (evaluate.config, evaluate.dataset_path) == ("x.yaml", "dev.json")


def test_blacklist_flag_replaces_the_approachs_blacklist():
    assert resolved("-q", "smooth_quant", "-b", "lm_head")[1].opname_blacklist == ("lm_head",)
    assert resolved("-q", "rtn-a16w8", "-b")[1].opname_blacklist == ()


@pytest.mark.parametrize("argv, valid", [
    (["-q", "rtn-a8w8"], ["rtn-a16w8", "rtn-c8", "smooth_quant", "ptq", "a8w8c8"]),
    (["-q", "ptq", "-w", "int4"], ["int8", "none"]),
    (["-q", "ptq", "-o", "omni"], ["smooth", "none"]),
    (["-t", "wikitext2"], ["squad1.1"]),
], ids=["approach", "dtype", "outliers", "dataset"])
def test_unknown_values_are_argparse_errors_naming_the_valid_ones(capsys, argv, valid):
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", *argv])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice" in error
    assert all(f"'{choice}'" in error for choice in valid)


@pytest.mark.parametrize("argv, message", [
    (["-q", "a16w8", "-k", "int8"], r"\(--kvcache_quant_dtype\) apply only with --approach ptq"),
    (["-q", "smooth_quant", "-w", "int8"], r"\(--weight_quant_dtype\) apply only with --approach ptq"),
    (["-q", "ptq"], "quantizes nothing"),
    (["-q", "ptq", "-w", "int8", "-o", "smooth"], "only applies with act_quant_dtype=int8"),
], ids=["flag-with-preset", "flag-with-golden-stick-name", "ptq-without-fields", "smooth-without-activations"])
def test_inconsistent_flags_are_refused(argv, message):
    with pytest.raises(ValueError, match=message):
        resolved(*argv)


def test_eval_reads_the_approach_from_the_checkpoint_unless_given():
    assert resolved(command="eval") == (None, None)
    assert resolved("-q", "rtn-c8", command="eval")[1].name == "c8"
    with pytest.raises(ValueError, match="--approach is needed with --opname_blacklist"):
        resolved("-b", "w2", command="eval")

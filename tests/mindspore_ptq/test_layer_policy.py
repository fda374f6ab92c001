"""Layer selection: opname_blacklist and layer_overrides entries must each match a quantizable cell."""
import pytest

from mindspore_ptq import PTQ, PTQConfig, PTQMode
from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.layer_policy import check_name_patterns, quantizable_paths
from network_helpers.layouts import layout_for
from tests.conftest import build_tiny
from tests.mindspore_ptq.test_ptq import CALIBRATION


def test_the_quantizable_cells_are_the_decoder_linears_kv_caches_the_head_and_the_token_table():
    network = build_tiny()
    paths = quantizable_paths(network, layout_for(network))
    assert len(paths) == 2 * 8 + 2
    assert paths["model.layers.1.feed_forward.w2"] == "feed_forward.w2" and paths["lm_head"] == "lm_head"
    assert paths["model.tok_embeddings"] == "model.tok_embeddings"
    assert paths["model.layers.0.attention.kv_cache"] == "attention.kv_cache"


@pytest.mark.parametrize("fields, message", [
    (dict(opname_blacklist=("w22", "lm_head")), "opname_blacklist entry 'w22' matches no quantizable cell "
                                               "(did you mean 'w2'?)"),
    (dict(opname_blacklist=("attention_norm",)), "opname_blacklist entry 'attention_norm' matches no quantizable"),
    (dict(layer_overrides={"layers.7.attention": "w8"}), "layer_overrides entry 'layers.7.attention' matches no"),
    (dict(layer_overrides={"feed_forward.w4": "float"}), "(did you mean 'feed_forward.w3' or "),
], ids=["typo", "not-quantizable", "no-such-layer", "override-typo"])
def test_an_entry_that_matches_no_cell_is_named_with_the_names_it_could_match(fields, message):
    network = build_tiny()
    with pytest.raises(ValueError, match="matches no quantizable cell") as error:
        check_name_patterns(network, layout_for(network), approach_config("a16w8", **fields))
    text = str(error.value)
    assert message in text and "model.layers.<i>.{attention.kv_cache, attention.wk," in text and "and lm_head" in text


@pytest.mark.parametrize("mode", [PTQMode.QUANTIZE, PTQMode.DEPLOY])
def test_ptq_refuses_an_unmatched_entry_before_calibrating_or_building(mode):
    network = build_tiny()
    before = {p.name: p.asnumpy().copy() for p in network.get_parameters()}
    ptq = PTQ(approach_config("a8w8", mode=mode, opname_blacklist=("w2", "lm_haed")))
    with pytest.raises(ValueError, match="'lm_haed' matches no quantizable cell \\(did you mean 'lm_head'\\?\\)"):
        ptq.apply(network, None, CALIBRATION)
    assert not ptq.cells and all((p.asnumpy() == before[p.name]).all() for p in network.get_parameters())


def test_entries_that_match_pass():
    network = build_tiny()
    check_name_patterns(network, layout_for(network), PTQConfig(
        weight_quant_dtype=approach_config("a16w8").weight_quant_dtype, opname_blacklist=("w2", "layers.1.", "lm_head"),
        layer_overrides={"model.layers.0.attention.wq": "float", "kv_cache": "w8"}))

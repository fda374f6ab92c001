"""SQuAD evaluation scores what was generated for each question against that question's gold answers: a network that
answers with the gold answer scores 100, one that answers with nothing of it scores 0, batched or not."""
import numpy as np
import pytest

from mindspore_ptq.datasets import get_datasets, load_squad, pad_token_id_of
from mindspore_ptq.evaluation import evaluate_squad
from network_helpers import MFParallelLlama2Helper
from tests.conftest import SQUAD_DIR, needs_squad

DEV = SQUAD_DIR / "dev-v1.1.json"
N = 4


class OracleHelper:
    """The helper of the tiny model, except that `generate` appends to each prompt the first gold answer of its
    question if its position in the file is in `knows`, else a word that is in no gold answer."""

    def __init__(self, helper, tokenizer, knows):
        self.helper, self.pad = helper, pad_token_id_of(tokenizer)
        rows = get_datasets("squad1.1", DEV, "eval", 1, helper.get_spec("seq_length"), 8, tokenizer,
                            helper.get_spec("ignore_token_id"), 1, False, n_samples=N)
        self.answers = {}
        for item in rows.create_dict_iterator(output_numpy=True):  # labels: the first gold answer's ids
            index = int(item["example_index"][0])
            known = index in knows
            self.answers[tuple(item["input_ids"][0])] = list(item["labels"][0]) if known else \
                tokenizer(" and", add_special_tokens=False)["input_ids"]

    def __getattr__(self, name):
        return getattr(self.helper, name)

    def generate(self, network, prompts, max_new_tokens=None, **kwargs):
        assert network is None and max_new_tokens == 8
        outputs = []
        for row in np.asarray(prompts):
            prompt = tuple(row[: np.flatnonzero(row != self.pad)[-1] + 1])
            outputs.append(np.array([*prompt, *self.answers[prompt]], np.int32))
        return outputs


@needs_squad
@pytest.mark.parametrize("batch_size", [1, 3])
def test_gold_answers_score_100_and_others_0(tiny_cli_model, batch_size):
    helper = MFParallelLlama2Helper(str(tiny_cli_model["yaml"])).with_specs(batch_size=batch_size)
    tokenizer = helper.create_tokenizer()
    examples = load_squad(DEV)[:N]
    result = evaluate_squad(None, OracleHelper(helper, tokenizer, knows={0, 2}), tokenizer, DEV, n_samples=N,
                            max_new_tokens=8)
    assert result["n"] == N and result["f1"] == result["exact_match"] == 50.0
    assert result["predictions"][1] == result["predictions"][3] == "and"
    for index in (0, 2):  # the word-level tokenizer decodes with spaces between words and marks
        assert result["predictions"][index].replace(" ,", ",") == examples[index].answers[0]

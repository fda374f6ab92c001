"""Oracle test: the float network's logits equal Hugging Face transformers' on the same GGUF weights."""
import numpy as np
import pytest

from network_helpers import MFParallelLlama2Helper
from network_helpers.smollm2 import GGUF_NAME, default_gguf_path

torch = pytest.importorskip("torch", reason="torch is the test oracle")
transformers = pytest.importorskip("transformers")

TEXT = ("Architecturally, the school has a Catholic character. Atop the Main Building's gold dome is a golden "
        "statue of the Virgin Mary. Immediately in front of the Main Building and facing it, is a copper statue "
        "of Christ with arms upraised with the legend \"Venite Ad Me Omnes\". Next to the Main Building is the "
        "Basilica of the Sacred Heart. Immediately behind the basilica is the Grotto, a Marian place of prayer "
        "and reflection. It is a replica of the grotto at Lourdes, France where the Virgin Mary reputedly "
        "appeared to Saint Bernadette Soubirous in 1858. At the end of the main drive (and in a direct line that "
        "connects through 3 statues and the Gold Dome), is a simple, modern stone statue of Mary. The Normans "
        "were the people who in the 10th and 11th centuries gave their name to Normandy, a region in France. "
        "They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, under their "
        "leader Rollo, agreed to swear fealty to King Charles III of West Francia.")

LOGIT_ATOL = 1e-3  # fp32 on both sides; measured max |diff| is about 1e-4 on logits of magnitude ~40


@pytest.fixture(scope="module")
def hf_and_ours(smollm2_artifacts):
    directory = str(default_gguf_path().parent)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=GGUF_NAME)
    reference = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF_NAME,
                                                                  torch_dtype=torch.float32)
    network = MFParallelLlama2Helper(str(smollm2_artifacts["yaml"])).create_network()
    return tokenizer, reference, network


def test_logits_match_transformers(hf_and_ours):
    import mindspore as ms
    tokenizer, reference, network = hf_and_ours
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert len(ids) >= 200
    with torch.no_grad():
        expected = reference(torch.tensor([ids])).logits[0].numpy()
    actual = network(ms.Tensor([ids], ms.int32)).asnumpy()[0]
    np.testing.assert_allclose(actual, expected, atol=LOGIT_ATOL, rtol=0)
    assert (actual.argmax(-1) == expected.argmax(-1)).mean() >= 0.995


def test_greedy_generation_matches_transformers(hf_and_ours):
    tokenizer, reference, network = hf_and_ours
    ids = tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        expected = reference.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                      max_new_tokens=8, do_sample=False)[0].numpy()
    actual = network.generate([ids], max_new_tokens=8)[0]
    np.testing.assert_array_equal(actual, expected)

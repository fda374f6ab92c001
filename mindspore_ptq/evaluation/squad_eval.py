"""SQuAD v1.1 generation evaluation: greedy answers for the first N dev questions, scored F1/EM."""
import time

from ms_infra.frameworks import mindformers_installed

from ..datasets import get_datasets, load_squad, pad_token_id_of
from ..log import progress
from .squad_metrics import answer_complete, emf1_metric_scores, extract_answer, squad_scores


def evaluate_squad(network, helper, tokenizer, dev_path, n_samples=200, max_new_tokens=24,
                   template="squad_3shot", shots_path=None):
    """Generate an answer per question and score it with the official SQuAD v1.1 metric and EmF1Metric.

    Returns {'f1', 'exact_match', 'mf_f1', 'mf_exact_match', 'n', 'seconds', 'predictions'}; without MindFormers
    'mf_f1' and 'mf_exact_match' are None (EmF1Metric is MindFormers').
    """
    examples = load_squad(dev_path)
    dataset = get_datasets("squad1.1", dev_path, "eval", helper.get_spec("batch_size"),
                           helper.get_spec("seq_length"), max_new_tokens, tokenizer,
                           helper.get_spec("ignore_token_id"), 1, False, n_samples=n_samples, template=template,
                           shots_path=shots_path)
    pad = pad_token_id_of(tokenizer)
    stop = lambda new_tokens: answer_complete(tokenizer.decode(new_tokens, skip_special_tokens=True))  # noqa: E731
    predictions, golds = [], []
    start = time.perf_counter()
    bar = progress(total=dataset.get_dataset_size() * helper.get_spec("batch_size"), desc="squad", unit="q")
    for item in dataset.create_dict_iterator(output_numpy=True):
        prompts = item["input_ids"]
        outputs = helper.generate(network, prompts, max_new_tokens=max_new_tokens, pad_token_id=pad,
                                  stop=stop)
        for prompt, output, index in zip(prompts, outputs, item["example_index"]):
            prompt_length = int((prompt != pad).nonzero()[0][-1]) + 1
            text = tokenizer.decode(output[prompt_length:].tolist(), skip_special_tokens=True)
            predictions.append(extract_answer(text))
            golds.append(examples[int(index)].answers)
        bar.update(len(prompts))
    bar.close()
    seconds = time.perf_counter() - start
    official = squad_scores(predictions, golds)
    skipped = {"f1": None, "exact_match": None}  # EmF1Metric is MindFormers'
    mindformers = emf1_metric_scores(predictions, golds) if mindformers_installed() else skipped
    return {"f1": official["f1"], "exact_match": official["exact_match"], "mf_f1": mindformers["f1"],
            "mf_exact_match": mindformers["exact_match"], "n": len(predictions), "seconds": seconds,
            "predictions": predictions}

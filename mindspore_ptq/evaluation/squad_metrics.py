"""SQuAD v1.1 scoring: the official exact match / F1, and MindFormers' EmF1Metric for comparison (when
MindFormers is installed)."""
import contextlib
import io
import re
import string
from collections import Counter
from typing import Dict, List, Sequence

from ms_infra.frameworks import mindformers_installed

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r'\b(a|an|the)\b')


def extract_answer(generated_text: str) -> str:
    """The answer in a model's continuation: its first non-blank line, stripped."""
    return generated_text.strip().split('\n', 1)[0].strip()


def answer_complete(generated_text: str) -> bool:
    """True once more text cannot change `extract_answer`: a line break follows the first non-blank text."""
    return "\n" in generated_text.lstrip()


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lower case, drop punctuation, drop articles (a/an/the), collapse spaces."""
    text = ''.join(char for char in text.lower() if char not in _PUNCTUATION)
    return ' '.join(_ARTICLES.sub(' ', text).split())


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(gold) for gold in _checked_golds(gold_answers)))


def f1_score(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best token F1 in [0, 1] of the prediction against any gold answer (normalised words as a bag)."""
    predicted = normalize_answer(prediction).split()
    return max(_token_f1(predicted, normalize_answer(gold).split()) for gold in _checked_golds(gold_answers))


def _token_f1(predicted: List[str], gold: List[str]) -> float:
    # F1 = 2PR / (P + R), P = common / |predicted|, R = common / |gold|, common counted with multiplicity
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], gold_answers: Sequence[Sequence[str]]) -> Dict[str, float]:
    """Official SQuAD v1.1 result: mean exact match and F1 over questions, in percent."""
    _check_pairs(predictions, gold_answers)
    count = len(predictions)
    return {'exact_match': 100.0 * sum(map(exact_match, predictions, gold_answers)) / count,
            'f1': 100.0 * sum(map(f1_score, predictions, gold_answers)) / count}


def emf1_metric_scores(predictions: Sequence[str], gold_answers: Sequence[Sequence[str]]) -> Dict[str, float]:
    """The same predictions scored by MindFormers' `EmF1Metric`, in percent, keyed like `squad_scores`.

    Fed as MindFormers' evaluator feeds it: one label per prediction, here the first gold answer.
    It differs from the official definition: exact match only lower-cases and strips a fixed set of
    characters (not `.,!?'"()`, not articles, no whitespace collapsing); F1 uses the longest common
    contiguous run of jieba segments (spaces and punctuation count as segments), not a bag of words.
    Its per-sample prints are swallowed. Needs MindFormers (the `mindformers` extra).
    """
    _check_pairs(predictions, gold_answers)
    if not mindformers_installed():
        raise ImportError("EmF1Metric needs MindFormers: pip install 'mindspore-ptq[mindformers]'")
    from mindformers.core.metric import EmF1Metric  # slow to import; only this function needs it
    metric = EmF1Metric()
    metric.clear()
    with contextlib.redirect_stdout(io.StringIO()):
        metric.update(list(predictions), [golds[0] for golds in gold_answers])  # update() edits its list
        result = metric.eval()
    return {'exact_match': result['Em'], 'f1': result['F1']}


def _checked_golds(gold_answers: Sequence[str]) -> Sequence[str]:
    if isinstance(gold_answers, str):
        raise TypeError(f"gold_answers must be a sequence of answers, not the string {gold_answers!r}")
    if not gold_answers:
        raise ValueError("gold_answers is empty; SQuAD v1.1 questions have at least one answer")
    return gold_answers


def _check_pairs(predictions: Sequence[str], gold_answers: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(gold_answers):
        raise ValueError(f"{len(predictions)} predictions but {len(gold_answers)} gold answer lists")
    if not predictions:
        raise ValueError("no predictions to score")
    for golds in gold_answers:
        _checked_golds(golds)

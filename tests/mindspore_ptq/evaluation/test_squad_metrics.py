"""Official SQuAD v1.1 metrics on hand-computed cases, and where MindFormers' EmF1Metric departs from them."""
import os
from pathlib import Path

import pytest

from mindspore_ptq.evaluation import (answer_complete, emf1_metric_scores, exact_match, extract_answer, f1_score,
                                      normalize_answer, squad_scores)
from ms_infra.frameworks import mindformers_installed
from tests.conftest import needs_mindformers

SQUAD_DIR = Path(os.environ.get('SQUAD_DIR',
                                Path(__file__).resolve().parents[3] / '..' / 'shared' / 'data' / 'squad1.1'))
DEV = SQUAD_DIR / 'dev-v1.1.json'


@pytest.mark.parametrize('text, normalized', [
    ('The Cat sat', 'cat sat'),
    ('  Denver   Broncos. ', 'denver broncos'),
    ('an apple, a pear & the plum!', 'apple pear plum'),
    ('Theater anthem', 'theater anthem'),  # articles only as whole words
    ('well-known', 'wellknown'),  # punctuation is deleted, not replaced by a space
    ('24–10', '24–10'),  # the en dash is not ASCII punctuation
], ids=['articles-case', 'spaces-period', 'mixed', 'article-prefix', 'hyphen', 'en-dash'])
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize('prediction, golds, em, f1', [
    ('The Cat sat', ['cat sat on'], 0.0, 0.8),  # common 2: P = 2/2, R = 2/3, F1 = 2PR/(P+R) = 0.8
    ('Denver Broncos.', ['the Denver Broncos'], 1.0, 1.0),
    ('sat cat', ['cat sat'], 0.0, 1.0),  # F1 is a bag of words
    ('cat dog dog', ['dog cat cat'], 0.0, 2 / 3),  # common = min counts: cat 1 + dog 1; P = R = 2/3
    ('Paris', ['London', 'Paris, France', 'Paris'], 1.0, 1.0),  # best gold wins
    ('Paris France', ['London', 'Paris'], 0.0, 2 / 3),
    ('', ['Paris'], 0.0, 0.0),
    ('the', ['a'], 1.0, 0.0),  # both normalise to '': equal strings, but no common token (v1.1 script)
], ids=['cat-sat', 'normalised-em', 'order', 'multiplicity', 'max-em', 'max-f1', 'empty', 'only-articles'])
def test_exact_match_and_f1(prediction, golds, em, f1):
    assert exact_match(prediction, golds) == em
    assert f1_score(prediction, golds) == pytest.approx(f1)


def test_squad_scores_average_in_percent():
    scores = squad_scores(['The Cat sat', 'Paris', 'nope'], [['cat sat on'], ['London', 'paris'], ['yes']])
    assert scores == pytest.approx({'exact_match': 100 / 3, 'f1': 100 * (0.8 + 1 + 0) / 3})


@pytest.mark.parametrize('call, error, message', [
    (lambda: exact_match('Paris', 'Paris'), TypeError, 'not the string'),
    (lambda: f1_score('Paris', []), ValueError, 'gold_answers is empty'),
    (lambda: squad_scores(['a', 'b'], [['a']]), ValueError, '2 predictions but 1'),
    (lambda: squad_scores([], []), ValueError, 'no predictions'),
], ids=['string-golds', 'no-golds', 'length-mismatch', 'empty'])
def test_bad_inputs_are_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize('generated, answer', [
    (' Denver Broncos\n\nPassage: ...', 'Denver Broncos'),
    ('\n  Paris  \nmore', 'Paris'),
    ('', ''),
], ids=['completion', 'leading-blank-line', 'empty'])
def test_extract_answer_takes_first_non_blank_line(generated, answer):
    assert extract_answer(generated) == answer


@pytest.mark.parametrize('generated, complete', [
    (' Denver', False), (' Denver Broncos\n', True), ('\n\n  ', False), ('\n Paris \n', True), ('', False),
])
def test_answer_complete_once_more_text_cannot_change_the_answer(generated, complete):
    assert answer_complete(generated) == complete
    for more in ('', 'x', ' y\nz', '\n', '  '):
        if complete:  # generation may stop here: nothing appended changes the extracted answer
            assert extract_answer(generated + more) == extract_answer(generated)
    if not complete:  # stopping here would be wrong: some continuation changes the answer
        assert extract_answer(generated + 'zz') != extract_answer(generated)


# EmF1Metric (MindFormers 1.6.0) versus the official definition, each case on one question with one gold answer
# (MindFormers' evaluator feeds one label per prediction; `emf1_metric_scores` passes the first gold answer).
@pytest.mark.parametrize('prediction, gold, official, mindformers', [
    ('Santa Clara, California', 'Santa Clara, California', (100, 100), (100, 100)),  # identical text: agree
    ('DENVER', 'denver', (100, 100), (100, 100)),  # both lower-case: agree
    ('well-known', 'wellknown', (100, 100), (100, 100)),  # both delete '-': agree
    ('Denver Broncos.', 'Denver Broncos', (100, 100), (0, 600 / 7)),  # '.' kept, and a segment: P = 3/4
    ('the Broncos', 'Broncos', (100, 100), (0, 50)),  # articles kept: segments 'the', ' ', 'broncos'
    ('Denver  Broncos', 'Denver Broncos', (100, 100), (0, 400 / 7)),  # double space is not collapsed
    ('The Cat sat', 'cat sat on', (0, 80), (0, 60)),  # longest common run 'cat',' ','sat' of 5 segments each
    ('sat cat', 'cat sat', (0, 100), (0, 100 / 3)),  # contiguous run, not a bag of words
], ids=['identical', 'case', 'hyphen', 'period', 'article', 'double-space', 'cat-sat', 'word-order'])
@needs_mindformers
def test_emf1_metric_against_official(prediction, gold, official, mindformers):
    assert squad_scores([prediction], [[gold]]) == pytest.approx(dict(zip(('exact_match', 'f1'), official)))
    assert emf1_metric_scores([prediction], [[gold]]) == pytest.approx(dict(zip(('exact_match', 'f1'), mindformers)))


@needs_mindformers
@pytest.mark.skipif(not DEV.is_file(), reason=f"SQuAD v1.1 dev file not found at {DEV} (set SQUAD_DIR)")
def test_emf1_metric_sees_only_the_first_gold_answer_on_real_data():
    from mindspore_ptq.datasets import load_squad
    examples = load_squad(DEV)[:200]
    predictions = [example.answers[-1] for example in examples]  # always one of the gold answers
    golds = [example.answers for example in examples]
    differs = sum(normalize_answer(e.answers[-1]) != normalize_answer(e.answers[0]) for e in examples)
    assert differs > 0
    assert squad_scores(predictions, golds) == {'exact_match': 100.0, 'f1': 100.0}
    assert emf1_metric_scores(predictions, golds)['exact_match'] < 100.0  # 65.5 with the shared dev file


@pytest.mark.skipif(mindformers_installed(), reason="MindFormers is installed: EmF1Metric is available")
def test_emf1_metric_without_mindformers_names_the_extra():
    with pytest.raises(ImportError, match=r"mindspore-ptq\[mindformers\]"):
        emf1_metric_scores(['Denver'], [['Denver']])

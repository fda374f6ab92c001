"""Dataset builders, registered by name and chosen by `get_datasets`."""
from types import MappingProxyType
from typing import Callable, Dict

_BUILDERS: Dict[str, Callable] = {}  # lower-case dataset name -> builder; the one registry
DATASETS = MappingProxyType(_BUILDERS)  # read-only view; add entries with `register_dataset`


def register_dataset(name: str) -> Callable[[Callable], Callable]:
    """Register the decorated builder as dataset `name` (case-insensitive).

    A builder takes `get_datasets`' arguments (except `ds_type`) as keywords and returns a
    `mindspore.dataset` pipeline.
    """
    key = name.lower()

    def decorator(builder: Callable) -> Callable:
        if key in _BUILDERS:
            raise ValueError(f"dataset {name!r} is already registered by {_BUILDERS[key].__qualname__}")
        _BUILDERS[key] = builder
        return builder

    return decorator


def get_datasets(ds_type, ds_path, mode, batch_size, seq_length, max_new_tokens, tokenizer, ignore_token_id,
                 repeat=1, need_pad=True, n_samples=-1, add_special_tokens=False, template='squad_3shot',
                 shots_path=None):
    """Build the dataset pipeline registered as `ds_type` (Golden Stick's positional order).

    Args:
        ds_type: registered dataset name, case-insensitive (e.g. 'squad1.1').
        ds_path: the data file.
        mode: 'eval' (prompt in, gold answer as label) or 'train' (prompt + answer, causal LM labels).
        batch_size: rows per batch; the last batch may be smaller.
        seq_length: padded length with `need_pad`, and the longest sample allowed.
        max_new_tokens: tokens an evaluator will generate; in 'eval' mode they must fit in `seq_length`.
        tokenizer: HF-tokenizer-like: `tokenizer(text, add_special_tokens=...)['input_ids']`.
        ignore_token_id: label value that the loss ignores; also pads labels.
        repeat: how many times the dataset is repeated.
        need_pad: pad every row to `seq_length`; otherwise pad each batch to its longest row.
        n_samples: use the first `n_samples` questions in file order; -1 uses all.
        add_special_tokens: passed to the tokenizer for the prompt.
        template: prompt template name, see `PROMPT_TEMPLATES`.
        shots_path: file holding a few-shot template's worked examples (dataset-specific default).
    """
    builder = _BUILDERS.get(str(ds_type).lower())
    if builder is None:
        raise ValueError(f"unknown dataset {ds_type!r}; registered datasets: {sorted(_BUILDERS)}")
    return builder(ds_path=ds_path, mode=mode, batch_size=batch_size, seq_length=seq_length,
                   max_new_tokens=max_new_tokens, tokenizer=tokenizer, ignore_token_id=ignore_token_id,
                   repeat=repeat, need_pad=need_pad, n_samples=n_samples, add_special_tokens=add_special_tokens,
                   template=template, shots_path=shots_path)

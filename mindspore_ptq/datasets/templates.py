"""Prompt templates: named ways to turn a question-answering example into a prompt string.

A template's `render(example, tokenizer, context)` returns the prompt. The example has `context` and
`question` attributes (a `SquadExample`); `context` is a `TemplateContext` that carries the worked
examples the template asked for with `shot_ids`. A training sample is
`prompt + template.answer_prefix + answer`.
"""
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, Tuple


@dataclass(frozen=True)
class TemplateContext:
    """What a template sees besides the example: its worked examples, in `shot_ids` order."""
    shots: Tuple[Any, ...] = ()


@dataclass(frozen=True)
class PromptTemplate:
    """A registered template: how to render a prompt, how an answer follows it, which shots it needs."""
    name: str
    render: Callable[[Any, Any, TemplateContext], str]
    answer_prefix: str
    shot_ids: Tuple[str, ...]


_TEMPLATES: Dict[str, PromptTemplate] = {}
PROMPT_TEMPLATES = MappingProxyType(_TEMPLATES)  # read-only view; add entries with `register_template`


def register_template(name: str, answer_prefix: str = ' ', shot_ids: Tuple[str, ...] = ()) -> Callable:
    """Register the decorated `render` function as template `name`."""
    def decorator(render: Callable) -> Callable:
        if name in _TEMPLATES:
            raise ValueError(f"prompt template {name!r} is already registered")
        _TEMPLATES[name] = PromptTemplate(name, render, answer_prefix, tuple(shot_ids))
        return render

    return decorator


def get_template(name: str) -> PromptTemplate:
    """The template registered as `name`; the error lists the known ones."""
    if name not in _TEMPLATES:
        raise ValueError(f"unknown prompt template {name!r}; registered templates: {sorted(_TEMPLATES)}")
    return _TEMPLATES[name]


def _question_block(example) -> str:
    return f"Passage: {example.context}\nQuestion: {example.question}\nAnswer:"


# Three short questions from the SQuAD v1.1 train split (Beyoncé article), answered with their first gold answer.
SQUAD_SHOT_IDS = ('56be97c73aeaaa14008c912a', '56d4c1c12ccc5a1400d831e7', '56bea27b3aeaaa14008c9199')


@register_template('squad_3shot', answer_prefix=' ', shot_ids=SQUAD_SHOT_IDS)
def squad_3shot(example, tokenizer, context: TemplateContext) -> str:
    """Plain completion, no chat template (tokenize without special tokens): three worked examples
    `Passage: ...\\nQuestion: ...\\nAnswer: <answer>\\n\\n`, then the question ending in `Answer:`."""
    worked = ''.join(f"{_question_block(shot)} {shot.answers[0]}\n\n" for shot in context.shots)
    return worked + _question_block(example)


@register_template('chat', answer_prefix='')
def chat(example, tokenizer, context: TemplateContext) -> str:
    """One user turn (passage, question, ask for a brief answer) rendered by the tokenizer's chat template,
    ending with the assistant's generation prompt."""
    message = (f"Passage: {example.context}\n\nQuestion: {example.question}\n\n"
               "Answer with a short phrase taken from the passage, and nothing else.")
    return tokenizer.apply_chat_template([{'role': 'user', 'content': message}], tokenize=False,
                                         add_generation_prompt=True)

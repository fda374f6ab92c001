"""Datasets for calibration and evaluation: SQuAD v1.1 and its prompt templates."""
from .registry import get_datasets, register_dataset
from .squad import SquadExample, context_windows, load_squad, pad_token_id_of  # also registers the 'squad1.1' builder
from .templates import PROMPT_TEMPLATES, TemplateContext, register_template

__all__ = ['get_datasets', 'register_dataset', 'load_squad', 'context_windows', 'SquadExample', 'pad_token_id_of',
           'PROMPT_TEMPLATES', 'TemplateContext', 'register_template']

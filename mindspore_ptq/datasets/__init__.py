"""Datasets for calibration and evaluation: SQuAD v1.1 and its prompt templates."""
from .registry import DATASETS, get_datasets, register_dataset
from .squad import (SquadExample, context_windows, create_squad_dataset, load_squad,  # also registers 'squad1.1'
                    pad_token_id_of, shots_file_for)
from .templates import PROMPT_TEMPLATES, TemplateContext, register_template

__all__ = ['DATASETS', 'get_datasets', 'register_dataset', 'create_squad_dataset', 'load_squad', 'context_windows',
           'SquadExample', 'pad_token_id_of', 'shots_file_for', 'PROMPT_TEMPLATES', 'TemplateContext',
           'register_template']

"""Evaluation: SQuAD F1/EM by generation, perplexity and KL/top-1 against a reference."""
from ..datasets import context_windows  # the perplexity windows; defined with the SQuAD reader
from .perplexity import WINDOW_TOKENS, evaluate_perplexity, perplexity_window
from .reference import NetworkReference, StoredReference, check_logits_folder, logits_writer
from .squad_eval import evaluate_squad
from .squad_metrics import (answer_complete, emf1_metric_scores, exact_match, extract_answer, f1_score,
                            normalize_answer, squad_scores)

__all__ = ['context_windows', 'WINDOW_TOKENS', 'evaluate_perplexity', 'perplexity_window', 'NetworkReference',
           'StoredReference', 'check_logits_folder', 'logits_writer', 'evaluate_squad',
           'answer_complete', 'emf1_metric_scores', 'exact_match', 'extract_answer', 'f1_score', 'normalize_answer',
           'squad_scores']

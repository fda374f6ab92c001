"""Evaluation metrics."""
from .squad_metrics import (emf1_metric_scores, exact_match, extract_answer, f1_score, normalize_answer,
                            squad_scores)

__all__ = ['emf1_metric_scores', 'exact_match', 'extract_answer', 'f1_score', 'normalize_answer', 'squad_scores']

"""Metrics for fine-tuned models, computed the way the official scorers compute them.

* `classification`: accuracy, macro-F1, Pearson, Spearman.
* `ner`: seqeval-compatible entity-level F1, KLUE-NER character-level macro F1.
* `qa`: SQuAD 1.1 and KorQuAD 1.0 exact match / F1.
"""

from hanformer.evaluation.classification import accuracy, macro_f1, pearson, spearman
from hanformer.evaluation.ner import (
    EntityScores,
    char_macro_f1,
    entity_f1,
    entity_scores,
    get_entities,
)
from hanformer.evaluation.qa import exact_match, f1, normalize_korquad, normalize_squad, qa_scores

__all__ = [
    "accuracy", "macro_f1", "pearson", "spearman",
    "EntityScores", "char_macro_f1", "entity_f1", "entity_scores", "get_entities",
    "exact_match", "f1", "normalize_korquad", "normalize_squad", "qa_scores",
]

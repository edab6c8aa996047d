"""Fine-tuning tasks: data formats, validation carve, label alignment, QA windows, and the
`finetune` / `evaluate` / `predict` entry points.

* `readers`   - NSMC, SST-2, KorSTS, KLUE-NLI, KLUE-NER, CoNLL-2003, SQuAD/KorQuAD, generic CSV/TSV/JSON(-lines)
* `registry`  - named tasks: format, labels, head kind, official metric
* `split`     - deterministic seeded validation carve
* `encoding`  - pieces with offsets, truncation, NER label alignment, padding
* `qa`        - sliding windows, answer spans through offsets, n-best search
* `inference` - model outputs -> labels, scores, entities, answers
* `finetune`, `evaluate`, `predict` - the public functions behind the commands
* `baseline`  - TF-IDF character n-grams + logistic regression, for context
"""

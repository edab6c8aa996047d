"""hanformer: train a WordPiece tokenizer, pretrain and fine-tune BERT, inspect and serve it.

The public API is importable from here; heavy modules (torch) load on first use, so
`import hanformer` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "HanformerError": "hanformer.errors",
    # tokenization
    "Tokenizer": "hanformer.tokenization.tokenizer",
    "Encoding": "hanformer.tokenization.tokenizer",
    "TokenizerConfig": "hanformer.tokenization.config",
    "train_tokenizer": "hanformer.tokenization.trainer",
    "tokenizer_stats": "hanformer.tokenization.stats",
    "TokenizerStats": "hanformer.tokenization.stats",
    # models
    "BertConfig": "hanformer.models.bert.config",
    "BertModel": "hanformer.models.bert.model",
    "BertForPreTraining": "hanformer.models.bert.heads",
    "BertForMaskedLM": "hanformer.models.bert.heads",
    "BertForSequenceClassification": "hanformer.models.bert.heads",
    "BertForTokenClassification": "hanformer.models.bert.heads",
    "BertForQuestionAnswering": "hanformer.models.bert.heads",
    "load_model": "hanformer.models.checkpoint",
    "inspect_checkpoint": "hanformer.models.checkpoint",
    "convert_checkpoint": "hanformer.models.checkpoint",
    "embed": "hanformer.embedding.encode",
    # fine-tuning tasks and metrics
    "FinetuneConfig": "hanformer.tasks.finetune_config",
    "FinetuneResult": "hanformer.tasks.finetune_config",
    "finetune": "hanformer.tasks.finetune",
    "EvaluateConfig": "hanformer.tasks.evaluate",
    "evaluate": "hanformer.tasks.evaluate",
    "PredictConfig": "hanformer.tasks.predict",
    "predict": "hanformer.tasks.predict",
    "Predictor": "hanformer.tasks.predictor",
    "BaselineConfig": "hanformer.tasks.baseline",
    "run_baseline": "hanformer.tasks.baseline",
    "get_task": "hanformer.tasks.registry",
    "carve_validation": "hanformer.tasks.split",
    "accuracy": "hanformer.evaluation.classification",
    "macro_f1": "hanformer.evaluation.classification",
    "pearson": "hanformer.evaluation.classification",
    "spearman": "hanformer.evaluation.classification",
    "entity_f1": "hanformer.evaluation.ner",
    "entity_scores": "hanformer.evaluation.ner",
    "char_macro_f1": "hanformer.evaluation.ner",
    "qa_scores": "hanformer.evaluation.qa",
    # pretraining data and training
    "PrepareConfig": "hanformer.data.prepare",
    "prepare_data": "hanformer.data.prepare",
    "PretrainConfig": "hanformer.pretraining.config",
    "pretrain": "hanformer.pretraining.run",
    "Trainer": "hanformer.training.trainer",
    "TrainerConfig": "hanformer.training.config",
    # the main job: recipes, stage caching, the report
    "run_recipe": "hanformer.recipes.run",
    "load_recipe": "hanformer.recipes.recipe",
    "Recipe": "hanformer.recipes.recipe",
    # GPT and generation
    "GPTConfig": "hanformer.models.gpt.model",
    "GPTModel": "hanformer.models.gpt.model",
    "GPTForCausalLM": "hanformer.models.gpt.model",
    "GenerationConfig": "hanformer.generation.config",
    "GeneratedText": "hanformer.generation.api",
    "generate": "hanformer.generation.api",
    # the encoder-decoder Transformer and translation
    "TransformerConfig": "hanformer.models.encoder_decoder.config",
    "TransformerModel": "hanformer.models.encoder_decoder.model",
    "TransformerForSeq2SeqLM": "hanformer.models.encoder_decoder.model",
    "TranslateConfig": "hanformer.generation.translate_config",
    "Translation": "hanformer.generation.translate",
    "translate": "hanformer.generation.translate",
    "translation_scores": "hanformer.evaluation.translation",
    # RNN language models
    "RNNConfig": "hanformer.models.rnn.config",
    "RNNLanguageModel": "hanformer.models.rnn.model",
    "RNNTrainConfig": "hanformer.models.rnn.settings",
    "train_rnn": "hanformer.models.rnn.train",
    "rnn_perplexity": "hanformer.models.rnn.api",
    "sample_rnn": "hanformer.models.rnn.api",
    # attention views and serving
    "AttentionData": "hanformer.visualization.attention",
    "attention_data": "hanformer.visualization.attention",
    "attention_rollout": "hanformer.visualization.attention",
    "mean_over_heads": "hanformer.visualization.attention",
    "AttentionViewConfig": "hanformer.visualization.config",
    "render_attention_html": "hanformer.visualization.html",
    "write_attention_html": "hanformer.visualization.html",
    "write_attention_view": "hanformer.visualization.view",
    "ServeConfig": "hanformer.serving.config",
    "create_app": "hanformer.serving.app",
    "serve": "hanformer.serving.app",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hanformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = ["__version__", *_EXPORTS]

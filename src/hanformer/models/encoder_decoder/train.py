"""`train_translation`: an encoder–decoder trained on parallel files by the shared `Trainer`.

The model is the Transformer (`architecture` "transformer") or a recurrent encoder–decoder
(`architecture` "gru" / "lstm" with `attention` none / bahdanau / luong, `models/seq2seq/`); the
data, vocabulary, batches, loss, schedule, validation and checkpoints are the same for all.

    parallel files ─► pairs (data/parallel.py: one-line errors) ─► train / validation split
                   ─► joint vocabulary (vocab.py) ─► token-budget batches (data.py)
                   ─► Trainer (Adam β2 0.98, inverse-sqrt warmup, label smoothing 0.1)
                   ─► every evaluation: validation loss + greedy (or beam) BLEU/chrF (sacreBLEU)

Without validation files, `valid_size` pairs are carved from the training files (a seeded
choice; the vocabulary is trained on the rest only). The best model is chosen by BLEU.

The output folder:

    tokenizer/               the joint vocabulary (kept, so a resumed run uses the same one)
    checkpoints/step-N/      resumable checkpoints (weights, optimizer, batch position)
    metrics.jsonl            training and evaluation records
    valid_scores.jsonl       each evaluation's BLEU/chrF with their sacreBLEU signatures
    valid_hypotheses.txt     the latest evaluation's translations, one per validation line
    translation_config.json  the settings of the run
    final/ (and best/)       the model: config.json + model.safetensors + tokenizer files,
                             ready for `hanformer translate --model OUT/final`
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hanformer.data.parallel import SentencePair, read_parallel
from hanformer.errors import ConfigError, InputError
from hanformer.evaluation.translation import translation_scores
from hanformer.generation.translate import translate
from hanformer.models.encoder_decoder.config import PRESETS, TransformerConfig
from hanformer.models.encoder_decoder.data import (
    EncodedPairs,
    SpecialIds,
    TokenBatches,
    collate,
    encode_pairs,
    plan_batches,
)
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM
from hanformer.models.encoder_decoder.settings import MAY_CHANGE_ON_RESUME, TranslationTrainConfig
from hanformer.models.encoder_decoder.vocab import special_ids, train_joint_vocabulary
from hanformer.models.encoder_decoder.warm_start import (
    bert_encoder_fields,
    decoder_defaults,
    load_bert,
    load_bert_encoder,
)
from hanformer.models.seq2seq.config import RNNSeq2SeqConfig
from hanformer.models.seq2seq.model import RNNForSeq2SeqLM
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import env_dist_info, resolve_device
from hanformer.training.run_state import Resume, is_resuming, prepare_output_dir
from hanformer.training.trainer import Trainer, TrainResult, seed_everything
from hanformer.utils.config import config_to_dict
from hanformer.utils.files import atomic_write, atomic_write_json

log = logging.getLogger("hanformer.translation")

METRIC_NAMES = ("loss", "ppl", "bleu", "chrf")


@dataclasses.dataclass
class Split:
    train: list[SentencePair]
    valid: list[SentencePair]


def load_split(config: TranslationTrainConfig) -> Split:
    """The training pairs and the validation pairs (given, or carved from the training files)."""
    train = read_parallel(config.train_source, config.train_target)
    if config.valid_source is not None and config.valid_target is not None:
        return Split(train, read_parallel(config.valid_source, config.valid_target))
    n = min(config.valid_size, len(train) // 10)
    if n < 1:
        raise InputError(f"{config.train_source}: {len(train)} pairs, too few to carve validation pairs from "
                         "(at most a tenth is taken); give --valid-source and --valid-target")
    held = set(np.random.default_rng([config.trainer.seed, 7]).choice(len(train), n, replace=False).tolist())
    return Split([p for i, p in enumerate(train) if i not in held], [p for i, p in enumerate(train) if i in held])


def joint_tokenizer(config: TranslationTrainConfig, pairs: list[SentencePair], resume: Resume) -> Tokenizer:
    """The given tokenizer (or the --init-encoder BERT's), the one a resumed run trained, or a new
    joint vocabulary in OUT/tokenizer."""
    given = config.tokenizer or config.init_encoder
    if given:
        return Tokenizer.from_pretrained(given)
    folder = Path(config.out) / "tokenizer"
    if is_resuming(resume) and (folder / "tokenizer.json").is_file():
        return Tokenizer.from_pretrained(folder)
    sentences = [p.source for p in pairs] + [p.target for p in pairs]
    log.info("training a %s vocabulary of %d on %d sentences", config.subword, config.vocab_size, len(sentences))
    return train_joint_vocabulary(sentences, folder, vocab_size=config.vocab_size, kind=config.subword)


def build_model(config: TranslationTrainConfig, tokenizer: Tokenizer,
                ids: SpecialIds) -> TransformerForSeq2SeqLM | RNNForSeq2SeqLM:
    if config.architecture != "transformer":
        return RNNForSeq2SeqLM(RNNSeq2SeqConfig.preset(
            config.model, **{"vocab_size": tokenizer.vocab_size, "max_position_embeddings": config.max_length,
                             "cell": config.architecture, "attention": config.attention, "pad_token_id": ids.pad,
                             "eos_token_id": ids.eos, "decoder_start_token_id": ids.start,
                             "label_smoothing": config.label_smoothing, **config.model_overrides}))
    fields = {"vocab_size": tokenizer.vocab_size, "max_position_embeddings": config.max_length,
              "pad_token_id": ids.pad, "eos_token_id": ids.eos, "bos_token_id": ids.start,
              "decoder_start_token_id": ids.start, "label_smoothing": config.label_smoothing}
    if config.init_encoder is None:
        return TransformerForSeq2SeqLM(TransformerConfig.preset(config.model, **{**fields, **config.model_overrides}))
    bert = load_bert(config.init_encoder)
    if tokenizer.vocab_size > bert.config.vocab_size:
        raise ConfigError(f"--init-encoder {config.init_encoder}: its tokenizer has {tokenizer.vocab_size} tokens "
                          f"but the BERT only {bert.config.vocab_size} embeddings; the folder's files do not match")
    # Overrides of the fields the BERT decides were refused by config.validate().
    fields = {**fields, **decoder_defaults(bert.config, PRESETS[config.model][0]), **config.model_overrides,
              **bert_encoder_fields(bert.config)}
    model = TransformerForSeq2SeqLM(TransformerConfig.from_dict(fields, source="--init-encoder", strict=True))
    load_bert_encoder(model, bert)
    log.info("the encoder starts as the BERT in %s (%d layers of width %d, %d pieces); the decoder at random",
             config.init_encoder, bert.config.num_hidden_layers, bert.config.hidden_size, bert.config.vocab_size)
    return model


def loss_batches(pairs: EncodedPairs, ids: SpecialIds, max_tokens: int) -> list[dict[str, torch.Tensor]]:
    """The validation pairs in length-sorted batches of a token budget (built once)."""
    lengths = np.array([max(len(s), len(t)) for s, t in zip(pairs.sources, pairs.targets, strict=True)])
    plan = plan_batches(lengths, max(max_tokens, int(lengths.max())), len(lengths), 0, 0)
    return [collate([pairs.sources[i] for i in rows], [pairs.targets[i] for i in rows], ids) for rows in plan]


def validation_nll(model: Any, batches: list[dict[str, torch.Tensor]], pad: int) -> float:
    """Mean negative log-likelihood per target token, without label smoothing (so exp() of it is
    the perplexity; the training loss is higher by the smoothing term)."""
    total, count = 0.0, 0
    for batch in batches:
        labels = batch["labels"].to(model.device)
        logits = model(input_ids=batch["input_ids"].to(model.device),
                       attention_mask=batch["attention_mask"].to(model.device),
                       decoder_input_ids=batch["decoder_input_ids"].to(model.device)).logits
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                       ignore_index=pad, reduction="sum"))
        count += int((labels != pad).sum())
    return total / max(count, 1)


def train_translation(config: TranslationTrainConfig, resume: Resume = None) -> TrainResult:
    """Train on `config`'s parallel files; the model and its tokenizer end up in OUT/final."""
    config.trainer.output_dir = config.out
    config.validate()
    config.check_sources()
    dist = env_dist_info()
    resolve_device(config.trainer.device, dist)  # a missing GPU is said before any text is read
    out = Path(config.out)
    split = load_split(config)
    # Before the vocabulary is trained into OUT: refuse a folder that holds another run first.
    prepare_output_dir(out, resume, config.trainer.overwrite, dist)
    if dist.is_main and not is_resuming(resume):
        (out / "valid_scores.jsonl").unlink(missing_ok=True)  # an earlier run's (--overwrite)
    tokenizer = joint_tokenizer(config, split.train, resume)
    ids = SpecialIds(**special_ids(tokenizer))
    train_pairs = encode_pairs(split.train, tokenizer, ids.eos, config.max_length)
    valid_pairs = encode_pairs(split.valid, tokenizer, ids.eos, config.max_length, "validation")
    seed_everything(config.trainer.seed)
    model = build_model(config, tokenizer, ids)
    batches = TokenBatches(train_pairs, ids, max_tokens=config.max_tokens, pool_size=config.pool_size,
                           seed=config.trainer.seed, rank=dist.rank, world_size=dist.world_size)
    valid_loss_batches = loss_batches(valid_pairs, ids, config.eval_max_tokens)
    scored = split.valid[:config.eval_sentences] if config.eval_sentences else split.valid
    sources, references = [p.source for p in scored], [p.target for p in scored]
    trainer: Trainer | None = None

    def evaluate(m: Any) -> dict[str, float]:
        nll = validation_nll(m, valid_loss_batches, ids.pad)
        hypotheses = [t.text for t in translate(m, sources, tokenizer=tokenizer, num_beams=config.eval_beams,
                                                max_length=config.max_length, batch_size=64)]
        scores = translation_scores(hypotheses, references)
        step = trainer.step if trainer is not None else 0
        with open(out / "valid_scores.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **scores.to_dict()}, ensure_ascii=False) + "\n")
        with atomic_write(out / "valid_hypotheses.txt") as f:
            f.writelines(h + "\n" for h in hypotheses)
        return {"loss": nll, "ppl": math.exp(min(nll, 50.0)), "bleu": scores.bleu, "chrf": scores.chrf}

    def export(m: Any, directory: Path) -> None:
        m.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    settings = {k: v for k, v in config_to_dict(config).items() if k not in MAY_CHANGE_ON_RESUME}
    if config.architecture == "transformer":
        # A Transformer run records the settings it recorded before the recurrent architectures
        # existed (attention means nothing to it), so its earlier checkpoints still resume.
        del settings["architecture"], settings["attention"]
    src_tokens, tgt_tokens = train_pairs.tokens()
    identity = {"vocab_hash": tokenizer.vocab_hash, "train_pairs": len(train_pairs), "translation": settings}
    trainer = Trainer(model, config.trainer, batches, evaluate, export_fn=export, dist_info=dist,
                      metric_names=METRIC_NAMES, run_identity=identity)
    trainer.prepare_output_dir(resume)
    if dist.is_main:
        atomic_write_json(out / "translation_config.json", {
            **config_to_dict(config), "parameters": model.num_parameters(), "vocab_size": tokenizer.vocab_size,
            "train_pairs": len(train_pairs), "train_pairs_left_out": train_pairs.skipped,
            "train_source_tokens": src_tokens, "train_target_tokens": tgt_tokens,
            "valid_pairs": len(split.valid), "valid_pairs_scored": len(scored),
            "valid_carved_from_train": config.valid_source is None})
    return trainer.train(resume=resume)

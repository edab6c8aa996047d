"""`train_rnn`: an LSTM/GRU language model trained by the shared `Trainer`.

Text comes in as GPT's does (`tokens.py`): `--input` files with a `--tokenizer` folder, or the
shards of `hanformer data prepare` (`--data`, GPT's exact training and held-out streams). The
model learns by truncated backpropagation through time (`tbptt.py`); everything else (optimizer,
schedule, precision, checkpoints, exact resume, progress, metrics.jsonl) is the Trainer's. The
evaluation reports the same metrics under the same names as GPT's (`clm_metrics`): held-out
loss, perplexity, next-token accuracy and the unigram floor.

The output folder:

    checkpoints/step-N/   resumable checkpoints (weights, optimizer, stream position and carried state)
    metrics.jsonl         training and evaluation records
    rnn_config.json       the settings of the run
    final/ (and best/)    the model: config.json + model.safetensors + the tokenizer's files
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hanformer.data.shards import ShardSet, unigram_log_probs
from hanformer.errors import InputError
from hanformer.models.rnn.config import RNNConfig
from hanformer.models.rnn.model import RNNLanguageModel
from hanformer.models.rnn.score import score_stream
from hanformer.models.rnn.settings import MAY_CHANGE_ON_RESUME, RNNTrainConfig
from hanformer.models.rnn.tbptt import CarriedStateLM, StreamWindows
from hanformer.models.rnn.tokens import TokenStream, separator_of, shard_stream, text_stream
from hanformer.pretraining.clm import clm_metrics
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import env_dist_info, resolve_device
from hanformer.training.trainer import Trainer, TrainResult, seed_everything
from hanformer.utils.config import config_to_dict
from hanformer.utils.files import atomic_write_json


@dataclasses.dataclass
class Corpus:
    tokenizer: Tokenizer
    train: TokenStream
    valid: TokenStream


def load_corpus(config: RNNTrainConfig) -> Corpus:
    """The tokenizer and the training and held-out token streams the config names."""
    if config.data:
        shards = ShardSet(config.data)
        tokenizer = Tokenizer.from_pretrained(config.tokenizer or shards.tokenizer_dir)
        shards.check_tokenizer(tokenizer.vocab_hash, f"tokenizer {config.tokenizer or shards.tokenizer_dir}")
        sep = separator_of(tokenizer)
        return Corpus(tokenizer, shard_stream(shards.train, sep), shard_stream(shards.valid, sep))
    assert config.tokenizer  # validate() requires it with --input
    tokenizer = Tokenizer.from_pretrained(config.tokenizer)
    train = text_stream(config.input, tokenizer, config.input_format)
    if config.valid:
        valid = text_stream(config.valid, tokenizer, config.input_format)
    else:
        train, valid = hold_out_tail(train, separator_of(tokenizer), config.valid_fraction)
    valid.require(2, "held-out")
    return Corpus(tokenizer, train, valid)


def hold_out_tail(stream: TokenStream, separator: int, fraction: float) -> tuple[TokenStream, TokenStream]:
    """(the first documents, the last ones): about `fraction` of the tokens, cut after a separator."""
    ends = np.flatnonzero(stream.ids == separator) + 1  # where each document's stream ends
    if len(ends) < 2:
        raise InputError(f"{', '.join(stream.sources[:3])}: one document only, so none can be held out for "
                         "evaluation; give held-out text with --valid, or more documents")
    target = len(stream.ids) * (1.0 - fraction)
    cut = int(ends[min(int(np.searchsorted(ends, target)), len(ends) - 2)])
    ids = stream.ids
    held = int(np.count_nonzero(ids[cut:] == separator))
    return (TokenStream(ids[:cut], stream.documents - held, stream.sources),
            TokenStream(ids[cut:], held, stream.sources))


def build_model(config: RNNTrainConfig, tokenizer: Tokenizer) -> RNNLanguageModel:
    return RNNLanguageModel(RNNConfig(
        vocab_size=tokenizer.vocab_size, cell=config.cell, embedding_size=config.embedding_size,
        hidden_size=config.hidden_size, num_layers=config.num_layers, dropout=config.dropout,
        tie_embeddings=config.tie_embeddings, separator_id=separator_of(tokenizer)))


def train_rnn(config: RNNTrainConfig, resume: str | bool | None = None) -> TrainResult:
    """Train on `config`'s text; the model and tokenizer end up in OUT/final (`RNNLanguageModel.from_pretrained`)."""
    config.trainer.output_dir = config.out
    config.validate()
    config.check_sources()
    dist = env_dist_info()
    resolve_device(config.trainer.device, dist)  # a missing GPU is said before any text is read
    corpus = load_corpus(config)
    seed_everything(config.trainer.seed)
    lm = build_model(config, corpus.tokenizer)
    windows = StreamWindows(corpus.train.ids, config.batch_size, config.bptt, rank=dist.rank,
                            world_size=dist.world_size)
    held_out = corpus.valid.ids[:config.eval_tokens] if config.eval_tokens else corpus.valid.ids
    counts = np.bincount(corpus.train.ids, minlength=lm.config.vocab_size)
    unigram_logp = torch.from_numpy(unigram_log_probs(counts))  # the floor the shard objectives report

    def evaluate(model: Any) -> dict[str, float]:
        s = score_stream(model.lm, held_out, streams=config.eval_streams, window=config.eval_window,
                         unigram_logp=unigram_logp)
        return clm_metrics(s.nll, s.correct, s.unigram_nll, s.predicted)

    def export(model: Any, directory: Path) -> None:
        model.lm.save_pretrained(directory)
        corpus.tokenizer.save_pretrained(directory)

    per_token = lm.training_flops_per_token()
    settings = {k: v for k, v in config_to_dict(config).items() if k not in MAY_CHANGE_ON_RESUME}
    identity = {"vocab_hash": corpus.tokenizer.vocab_hash, "train_tokens": int(len(corpus.train.ids)),
                "rnn": settings}
    trainer = Trainer(CarriedStateLM(lm, windows), config.trainer, windows, evaluate, export_fn=export,
                      flops_fn=lambda batch: float(per_token * batch["input_ids"].numel()),
                      dist_info=dist, metric_names=tuple(clm_metrics(0.0, 0.0, 0.0, 0)), run_identity=identity)
    trainer.prepare_output_dir(resume)  # before writing into it: it may hold another run
    if dist.is_main:
        atomic_write_json(Path(config.out) / "rnn_config.json",
                          {**config_to_dict(config), "parameters": lm.num_parameters(),
                           "train_tokens": int(len(corpus.train.ids)), "valid_tokens": int(len(corpus.valid.ids))})
    return trainer.train(resume=resume)

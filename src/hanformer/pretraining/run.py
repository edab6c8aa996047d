"""`pretrain`: train a model from scratch (or continue one) on token shards.

The objective decides the model, the batches and the evaluation; everything else (optimizer,
schedule, precision, checkpoints, DDP/FSDP, progress) is the shared `Trainer`. An objective is a
builder `build(config, shards, tokenizer, dist) -> ObjectiveParts` in its own module of this
package, named in `OBJECTIVES` below.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hanformer.data.shards import ShardSet
from hanformer.errors import ConfigError
from hanformer.pretraining.clm import build_clm
from hanformer.pretraining.config import (
    PRETRAIN_MAY_CHANGE_ON_RESUME,
    ObjectiveParts,
    PretrainConfig,
)
from hanformer.pretraining.mlm import build_mlm, build_mlm_nsp
from hanformer.pretraining.rtd import build_rtd
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.distributed import env_dist_info, resolve_device
from hanformer.training.run_state import resume_checkpoint
from hanformer.training.trainer import Trainer, seed_everything
from hanformer.utils.config import config_to_dict
from hanformer.utils.files import atomic_write_json

OBJECTIVES: dict[str, Callable[..., ObjectiveParts]] = {
    "mlm_nsp": build_mlm_nsp,
    "mlm": build_mlm,
    "clm": build_clm,
    "rtd": build_rtd,
}


def get_objective(name: str) -> Callable[..., ObjectiveParts]:
    builder = OBJECTIVES.get(name)
    if builder is None:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return builder


def check_init_vocabulary(init_from: str, shards: ShardSet) -> None:
    """--init-from a checkpoint whose tokenizer is not the shards' (same size, other ids) would
    train on ids that mean other tokens: refuse it, as for --tokenizer."""

    if not (Path(init_from) / "vocab.txt").is_file() and not (Path(init_from) / "tokenizer.json").is_file():
        return  # no tokenizer saved with the weights: the vocabulary size check is all there is
    shards.check_tokenizer(Tokenizer.from_pretrained(init_from).vocab_hash, f"--init-from {init_from}")


def pretrain(config: PretrainConfig, resume: str | bool | None = None) -> Any:
    """Pretrain on `config.data`; returns the Trainer's TrainResult. The final model (with the
    tokenizer files) is in OUTPUT_DIR/final, loadable with `from_pretrained`."""

    config.validate()
    dist = env_dist_info()
    resolve_device(config.trainer.device, dist)  # a missing GPU is said before any work
    shards = ShardSet(config.data)
    tokenizer = Tokenizer.from_pretrained(config.tokenizer or shards.tokenizer_dir)
    shards.check_tokenizer(tokenizer.vocab_hash, f"tokenizer {config.tokenizer or shards.tokenizer_dir}")
    if config.init_from:
        check_init_vocabulary(config.init_from, shards)
    seed_everything(config.trainer.seed)
    build = config
    if resume_checkpoint(resume, Path(config.trainer.output_dir), lambda _: None) is not None:
        # The checkpoint replaces the starting weights: skip-gram vectors would be trained for nothing.
        build = dataclasses.replace(config, static_embeddings="none")
    parts = get_objective(config.objective)(build, shards, tokenizer, dist)

    def export(model: Any, directory: Path) -> None:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    settings = {k: v for k, v in config_to_dict(config).items() if k not in PRETRAIN_MAY_CHANGE_ON_RESUME}
    identity = {"vocab_hash": shards.meta["vocab_hash"], "data": shards.meta.get("splits"), "pretrain": settings}
    trainer = Trainer(parts.model, config.trainer, parts.train_batches, parts.eval_fn,
                      export_fn=export, flops_fn=parts.flops_fn, dist_info=dist,
                      metric_names=parts.metric_names, run_identity=identity)
    try:
        trainer.prepare_output_dir(resume)  # before writing into it: it may hold another run
        if dist.is_main:
            atomic_write_json(Path(config.trainer.output_dir) / "pretrain_config.json", config_to_dict(config))
        result = trainer.train(resume=resume)
        warning = parts.diagnose(result.eval_metrics) if parts.diagnose and result.eval_metrics else None
        if warning and dist.is_main:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        return result
    finally:
        close = getattr(parts.train_batches, "close", None)
        if close:
            close()

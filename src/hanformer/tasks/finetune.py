"""`finetune`: put a head on a checkpoint and train it on a task with the shared `Trainer`.

Flow: read the training file (malformed rows reported, skipped or fatal) -> carve a seeded
validation part unless a validation file is given -> encode -> load the checkpoint with the
task's head (or the same architecture from scratch) -> `Trainer` (progress bar, bf16, resume,
checkpoints), evaluating with the task's official metric every epoch and keeping the best
model in `OUT/best` with its metrics. `--seeds 1,2,3` repeats the run per seed (`OUT/seed-N`)
and reports mean ± std.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer as Engine

from hanformer.data.loader import ResumableLoader
from hanformer.entities.config import EntityConfig
from hanformer.entities.model import prepare_entity_model
from hanformer.entities.tokens import entity_tokenizer, recorded_entity_config
from hanformer.errors import CheckpointError
from hanformer.tasks.encoding import PieceEncoder, collate
from hanformer.tasks.finetune_config import (
    FINETUNE_MAY_CHANGE_ON_RESUME,
    FINETUNE_TRAINER_DEFAULTS,
    FinetuneConfig,
    FinetuneResult,
    Log,
    format_mean_std,
    log_to_stderr,
    mean_std,
    quiet,
    read_split,
)
from hanformer.tasks.inference import encode_examples, gold_of, score_examples
from hanformer.tasks.model_dir import resolve_model_dir
from hanformer.tasks.model_io import (
    checkpoint_labels,
    load_task_model,
    read_model_config,
    save_task_model,
)
from hanformer.tasks.registry import (
    TaskSpec,
    compute_metrics,
    describe_majority,
    get_task,
    majority_scores,
    most_frequent_label,
)
from hanformer.tokenization.tokenizer import Tokenizer
from hanformer.training.config import make_output_dir
from hanformer.training.distributed import env_dist_info, resolve_device
from hanformer.training.optim import freeze_token_embeddings
from hanformer.training.trainer import Trainer, seed_everything
from hanformer.utils.config import config_to_dict
from hanformer.utils.files import atomic_write_json


def task_labels(task: TaskSpec, config: FinetuneConfig, train: Sequence[Any]) -> list[str] | None:
    """The label names of the head: the task's own, the checkpoint's for generic tasks whose
    checkpoint already has a fitting head, or those found in the training data (sorted)."""
    if task.kind in ("regression", "qa"):
        return None
    if task.labels is not None:
        return list(task.labels)
    seen = sorted({str(e.label) for e in train})
    ck = checkpoint_labels(read_model_config(config.model))
    if ck and set(seen) <= set(ck) and not all(n == f"LABEL_{i}" for i, n in enumerate(ck)):
        return ck
    return seen


def task_tokenizer(task: TaskSpec, tokenizer: Tokenizer, morpheme_split: bool | None, log: Log = log_to_stderr) -> Any:
    """The checkpoint's tokenizer, with Kiwi morpheme splitting switched on when asked (or, by
    default, for character-level Korean tasks). WordPiece on whole Korean words glues particles
    onto the last syllable ('알파치노가' -> '알파', '##치', '##노가'), so an entity or answer that
    ends before the particle cannot be expressed in pieces: with the kowiki vocabulary that caps
    KLUE-NER entity F1 at 78% and KorQuAD EM at 70% even for perfect predictions; split into
    morphemes, at 99.7% and 100%. The setting is saved with the tokenizer of the fine-tuned model."""
    if tokenizer.morpheme_split or morpheme_split is False:
        return tokenizer
    if morpheme_split is None:
        korean_chars = task.units == "char" or task.qa_style == "korquad"
        if not korean_chars or tokenizer.decomposes_hangul:
            return tokenizer
        try:
            import kiwipiepy  # noqa: F401
        except ImportError:
            log(f"{task.name}: install kiwipiepy (hanformer[korean]) to split particles off words; "
                f"without it entity/answer ends inside word pieces cannot be predicted exactly")
            return tokenizer
    log(f"{task.name}: splitting words into morphemes (Kiwi) before WordPiece (--no-morpheme-split to turn off)")
    return Tokenizer(Engine.from_str(tokenizer.backend.to_str()), morpheme_split=True,
                     model_max_length=tokenizer.model_max_length, unk_token=tokenizer.unk_token,
                     cls_token=tokenizer.cls_token, sep_token=tokenizer.sep_token, pad_token=tokenizer.pad_token,
                     mask_token=tokenizer.mask_token, extra_special_tokens=tokenizer.extra_special_tokens,
                     settings=tokenizer.settings)


def entity_inputs(config: EntityConfig, tokenizer: Tokenizer, log: Log = log_to_stderr
                  ) -> tuple[EntityConfig | None, Tokenizer]:
    """The entity settings of the run and the tokenizer that records them: `--entities` when
    given (its markers added to the tokenizer), else those an entity-aware checkpoint was
    pretrained or fine-tuned with (kept, so it is never run without its entity inputs), else none."""
    if not config.enabled:
        recorded = recorded_entity_config(tokenizer)
        if recorded is not None:
            log(f"entities: {recorded.entities}, as the checkpoint was trained (its tokenizer's record)")
        return recorded, tokenizer
    parts = [f"tags {','.join(config.tags)}" if config.tags else "all entity types"]
    parts += ["[ENT]/[/ENT] markers"] * config.entity_markers + ["entity embedding"] * config.entity_embedding
    log(f"entities: {config.entities} ({', '.join(parts)}), for every text of the task")
    return config, entity_tokenizer(tokenizer, config)


def base_model_dir(model: str) -> Path:
    """The checkpoint `--model` names: a folder with config.json (or its best/ or final/), or a
    model in the Hugging Face cache; an error names --model."""
    try:
        return resolve_model_dir(model)
    except CheckpointError as e:
        raise CheckpointError(f"--model: {e}") from None


def finetune(config: FinetuneConfig, resume: str | Path | bool | None = None, log: Log = log_to_stderr) -> FinetuneResult:
    """Fine-tune `config.model` on `config.task`; see the module docstring.

    `resume` (a checkpoint path, or True/'auto' for the latest in `config.out`) overrides
    `config.resume`."""

    config.validate()
    # Before any data is read, so a wrong --model costs no time; the tokenizer of a model in the
    # Hugging Face cache is then read from its snapshot too.
    config = dataclasses.replace(config, model=str(base_model_dir(config.model)))
    if resume not in (None, False, ""):
        config = dataclasses.replace(config, resume=str(resume) if not isinstance(resume, bool) else "auto")
    # Under torchrun each rank takes its own slice of every global batch (batch size x processes).
    dist = env_dist_info()
    if not dist.is_main:
        log = quiet
    resolve_device(config.trainer.device, dist)  # a missing GPU is said before any work
    if dist.is_main:
        make_output_dir(config.out, "out")  # an unwritable --out is said before the data is read
    if config.seeds:
        return _finetune_seeds(config, log, dist.is_main)
    task = get_task(config.task)
    settings = config.settings(task)
    # Named tasks have fixed labels: unknown ones are malformed rows. Generic tasks learn theirs.
    split = read_split(task, config, log)
    train, valid, skipped = split.train, split.valid, split.skipped
    labels = task_labels(task, config, train)
    if labels is not None and task.labels is None:
        unseen = [e for e in valid if str(e.label) not in labels]
        if unseen:
            log(f"validation: dropped {len(unseen)} examples whose label is not among the training labels "
                f"(first: {unseen[0].source} label {unseen[0].label!r})")
            valid = [e for e in valid if str(e.label) in labels]
    majority, floor = None, None
    if task.kind == "classification":
        majority = most_frequent_label([e.label for e in train])
        floor = majority_scores(task, majority, [e.label for e in valid], labels=labels)
    if floor:
        log(f"validation: {describe_majority(floor)}")

    tokenizer = task_tokenizer(task, Tokenizer.from_pretrained(config.model), config.morpheme_split, log)
    entities, tokenizer = entity_inputs(config.entity, tokenizer, log)
    encoder = PieceEncoder(tokenizer)  # the entity settings travel in the tokenizer
    train_features = encode_examples(task, encoder, train, settings, labels)
    valid_features = encode_examples(task, encoder, valid, settings, labels, with_labels=False)
    log(f"{task.name}: {len(train)} training examples ({len(train_features)} features), "
        f"{len(valid)} validation examples")

    tc = dataclasses.replace(config.trainer, output_dir=config.out)
    seed_everything(tc.seed)  # the new head's initialisation and dropout follow the seed
    model = load_task_model(task, config.model, labels, from_scratch=config.from_scratch,
                            reinit_head=config.reinit_head, dropout=config.dropout, pooling=config.pooling,
                            names=config.label_names)
    if entities is not None:
        prepare_entity_model(model, tokenizer.vocab_size, entities)
    if config.freeze_embeddings and config.from_scratch:
        log("freeze_embeddings: nothing pretrained to keep from scratch; the token embeddings train")
    elif config.freeze_embeddings:
        log(f"token embeddings frozen: {freeze_token_embeddings(model):,} parameters stay as the checkpoint has them")
    hidden = getattr(model.config, "hidden_size", 0)
    if tc.lr == FINETUNE_TRAINER_DEFAULTS["lr"] and hidden >= 768 and not config.from_scratch:
        log(f"lr {tc.lr:g} is the default measured on small encoders; this one has hidden size {hidden}, "
            "and base-size encoders usually fine-tune best at 2e-5..5e-5 (pass --lr)")
    loader = ResumableLoader(train_features, lambda fs: collate(fs, encoder.pad_id), config.batch_size,
                             seed=tc.seed, rank=dist.rank, world_size=dist.world_size)
    steps = config.max_steps or max(1, math.ceil(config.epochs * loader.batches_per_epoch))
    tc = dataclasses.replace(tc, max_steps=steps, eval_every=tc.eval_every or loader.batches_per_epoch,
                             metric_for_best=tc.metric_for_best or task.main_metric)
    if tc.threads:
        torch.set_num_threads(tc.threads)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        return score_examples(task, m, encoder, valid, settings, labels, config.eval_batch_size, valid_features)

    def export_fn(m: torch.nn.Module, directory: Path) -> None:
        save_task_model(m, tokenizer, directory, task, settings,
                        {"labels": labels, "base_model": str(config.model), "from_scratch": config.from_scratch,
                         **({"majority_label": majority} if majority is not None else {}),
                         **({"entities": entities.record()} if entities is not None else {})})

    run_settings = {k: v for k, v in config_to_dict(config).items() if k not in FINETUNE_MAY_CHANGE_ON_RESUME}
    if not config.entity.enabled:  # a run without entities keeps the identity it had before they existed
        run_settings.pop("entity", None)
    identity = {"vocab_hash": tokenizer.vocab_hash, "finetune": run_settings, "labels": labels,
                "train_features": len(train_features)}
    names = evaluation_metric_names(task, valid, labels) if config.trainer.metric_for_best else None
    trainer = Trainer(model, tc, loader, eval_fn, export_fn=export_fn, dist_info=dist, metric_names=names,
                      run_identity=identity)
    result = trainer.train(resume=config.resume)
    out = Path(config.out)
    if result.stopped == "interrupted" or not dist.is_main:  # rank 0 writes the summary of a finished run
        if result.stopped == "interrupted":
            log(f"{task.name}: interrupted at step {result.step}; continue with --resume auto")
        return FinetuneResult(out, out, dict(result.eval_metrics), len(train), len(valid), skipped, result.step,
                              result.stopped, majority_baseline=floor)
    best = out / "best"
    model_dir = best if best.is_dir() else (result.final_dir or out / "final")
    metrics = _read_metrics(model_dir) or dict(result.eval_metrics)
    summary = {"task": task.name, "model": str(config.model), "from_scratch": config.from_scratch,
               "train_examples": len(train), "valid_examples": len(valid), "skipped_rows": skipped,
               "steps": result.step, "stopped": result.stopped, "best_model": str(model_dir),
               "metrics": metrics, **({"majority_baseline": floor} if floor else {})}
    atomic_write_json(out / "finetune.json", summary)
    log(f"{task.name}: best {task.main_metric} {metrics.get(task.main_metric, float('nan')):.4f} "
        f"({model_dir}); skipped {skipped} malformed rows")
    return FinetuneResult(out, model_dir, metrics, len(train), len(valid), skipped, result.step, result.stopped,
                          majority_baseline=floor)


def evaluation_metric_names(task: TaskSpec, examples: Sequence[Any], labels: Sequence[str] | None) -> list[str]:
    """The names the task's evaluation reports (its scorer run on a few gold answers), so that
    --metric-for-best is checked before training instead of at the first evaluation."""

    gold = gold_of(task, examples[:4])
    pred = [answers[0] if answers else "" for answers in gold] if task.kind == "qa" else gold
    return list(compute_metrics(task, gold, pred, labels=labels))


def _read_metrics(model_dir: Path) -> dict[str, float]:
    path = model_dir / "metrics.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if k != "step" and isinstance(v, (int, float))}


def _finetune_seeds(config: FinetuneConfig, log: Log, is_main: bool = True) -> FinetuneResult:
    runs = []
    for seed in config.seeds:
        sub = dataclasses.replace(config, seeds=[], out=str(Path(config.out) / f"seed-{seed}"),
                                  trainer=dataclasses.replace(config.trainer, seed=seed))
        log(f"--- seed {seed} -> {sub.out}")
        runs.append(finetune(sub, log=log))
        if runs[-1].stopped == "interrupted":  # the remaining seeds wait for the resumed run
            return dataclasses.replace(runs[-1], output_dir=Path(config.out), runs=runs)
    if not is_main:
        return dataclasses.replace(runs[0], output_dir=Path(config.out), runs=runs)
    summary = mean_std([r.best_metrics for r in runs])
    floor = runs[0].majority_baseline  # the same data for every seed
    atomic_write_json(Path(config.out) / "seeds.json",
                      {"seeds": config.seeds, "summary": summary, "runs": [r.best_metrics for r in runs],
                       **({"majority_baseline": floor} if floor else {})})
    log(f"{config.task} over seeds {','.join(map(str, config.seeds))}: {format_mean_std(summary)}")
    first = runs[0]
    return dataclasses.replace(first, output_dir=Path(config.out), runs=runs, summary=summary,
                               best_metrics={k: v["mean"] for k, v in summary.items()})

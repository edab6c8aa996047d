"""Thin adapters from recipe tables to the components that do the work.

Each `*_stage` function checks one recipe table (files exist, the component's config accepts the
settings, the stage's input is available) and returns a `Stage` whose run function calls the
component's public API: `train_tokenizer`, `prepare_data`, `pretrain`, `finetune`, `run_baseline`,
`evaluate`, `predict`, `attention_data`. No training or scoring logic lives here.

The recipe runner fills in some component settings itself (where outputs go, which tokenizer or
checkpoint a stage reads, the run's seed); a recipe that sets one of those gets a clear error
instead of having it silently overwritten.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.recipes.recipe import EvaluateSection, FinetuneSection, Recipe, parse_stage_config
from hanformer.recipes.stages import Stage, StageContext
from hanformer.utils.config import config_to_dict
from hanformer.utils.files import atomic_write_json

INITS = ("pretrained", "scratch")


# ----------------------------------------------------------------------------- helpers

def component(module: str, name: str, table: str) -> Any:
    """Import `module.name`, or say clearly which stage needs it."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise ConfigError(f"stage [{table}] needs {module}.{name}, which this installation of "
                              "hanformer does not have; remove the stage from the recipe") from None
        raise
    try:
        return getattr(mod, name)
    except AttributeError:
        raise ConfigError(f"stage [{table}] needs {module}.{name}, which this installation of "
                          "hanformer does not have; remove the stage from the recipe") from None


def _nested_fields(cls: type) -> dict[str, type]:
    """Fields of `cls` that are themselves config dataclasses (e.g. `trainer: TrainerConfig`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def _nested_default(cls: type, name: str) -> dict[str, Any]:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return config_to_dict(f.default_factory())
    if f.default is not dataclasses.MISSING:
        return config_to_dict(f.default)
    return {}


def build_config(cls: type, settings: dict[str, Any], injected: dict[str, Any], source: str,
                 defaults: dict[str, Any] | None = None) -> Any:
    """`cls` from a recipe table's settings plus what the recipe runner fills in.

    Keys of a nested config (the trainer's `lr`, `max_steps`, ...) may be written flat in the
    stage table; they go where they belong, on top of the component's own defaults for that
    nested config. `injected` (dotted for nested fields, e.g. "trainer.output_dir") is what the
    recipe runner sets; a recipe that sets one of those is refused. `defaults` (e.g. the run's seed,
    the stage budget as `max_time`) apply unless the table sets the key. Keys the config does
    not have are skipped in `injected` and `defaults`, so one call fits several config shapes.
    """
    top = {f.name for f in dataclasses.fields(cls)}
    nested = _nested_fields(cls)
    nested_names = {name: {f.name for f in dataclasses.fields(t)} for name, t in nested.items()}

    def owner(key: str) -> tuple[str | None, str] | None:
        head, _, rest = key.partition(".")
        if rest:
            return (head, rest) if head in nested and rest in nested_names[head] else None
        if key in top:
            return (None, key)
        owners = [n for n, names in nested_names.items() if key in names]
        return (owners[0], key) if len(owners) == 1 else None

    user: dict[tuple[str | None, str], Any] = {}
    unknown = []
    for raw_key, value in settings.items():
        key = raw_key.replace("-", "_")
        if key in nested and isinstance(value, dict):
            for k, v in value.items():
                place = owner(f"{key}.{k.replace('-', '_')}")
                if place is None:
                    unknown.append(f"{key}.{k}")
                else:
                    user[place] = v
            continue
        place = owner(key)
        if place is None:
            unknown.append(key)
        else:
            user[place] = value
    if unknown:
        valid = sorted((top - set(nested)) | set().union(*nested_names.values()))
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k.split(".")[-1], valid, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                          f"valid keys: {', '.join(valid)}")
    fixed = {place: v for k, v in injected.items() if (place := owner(k)) is not None}
    clash = [f"{p[0]}.{p[1]}" if p[0] else p[1] for p in user if p in fixed]
    if clash:
        raise ConfigError(f"{source}: {clash[0]!r} is set by the recipe runner (it wires the stages together); "
                          "remove it from the recipe")
    values = {place: v for k, v in (defaults or {}).items() if (place := owner(k)) is not None}
    values.update(user)
    values.update(fixed)
    data: dict[str, Any] = {name: _nested_default(cls, name) for name in nested}
    for (head, key), v in values.items():
        if head is None:
            data[key] = v
        else:
            data[head][key] = v
    return parse_stage_config(cls, data, source)


def _check_files(paths: list[str], source: str, key: str, directory: bool = False) -> list[Path]:
    out = []
    for p in paths:
        path = Path(p)
        ok = path.is_dir() if directory else path.is_file()
        if not ok:
            what = "folder" if directory else "file"
            raise ConfigError(f"{source}: {key} = {p!r}: {what} not found "
                              f"(relative paths are read from {Path.cwd()}; run hanformer from the "
                              "folder the recipe expects, usually the repository root)")
        out.append(path)
    return out


def _stage_settings(config: Any, drop: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A Stage's `settings` (the config's record, plus `extra`) and `setting_defaults` (the same
    record of the config class's defaults; none if the class has required fields)."""
    try:
        defaults = _settings_record(type(config)(), drop)
    except TypeError:
        defaults = {}
    return {"settings": {**_settings_record(config, drop), **extra}, "setting_defaults": defaults}


def _settings_record(config: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config as the stage's hashed settings, without fields that do not change results:
    paths the recipe runner fills in (`drop`, dotted for nested fields), progress displays, and
    `overwrite` (a stage that runs afresh starts in an emptied folder anyway)."""
    data = config_to_dict(config)
    for key in (*drop, "progress", "tensorboard", "overwrite"):
        parts = key.split(".")
        targets = [data] + [v for v in data.values() if isinstance(v, dict)] if len(parts) == 1 else [data]
        for target in targets:
            for p in parts[:-1]:
                target = target.get(p, {}) if isinstance(target, dict) else {}
            if isinstance(target, dict):
                target.pop(parts[-1], None)
    return data


# ----------------------------------------------------------------------------- tokenizer

def tokenizer_stage(recipe: Recipe) -> Stage:
    sec = recipe.tokenizer
    assert sec is not None
    source = f"{recipe.path} [tokenizer]"
    files = [Path(p) for p in sec.input]
    config_cls = component("hanformer.tokenization.config", "TokenizerConfig", "tokenizer")
    train = component("hanformer.tokenization.trainer", "train_tokenizer", "tokenizer")
    config = build_config(config_cls, sec.settings, {}, source, {"seed": recipe.run.seed})
    sample = _stats_sample(recipe)

    def run(ctx: StageContext) -> dict[str, Any]:
        out = ctx.dir
        train([str(f) for f in files], config, out, progress=False)
        return tokenizer_summary(out, sample, [recipe.report.attention_text] if recipe.report else None)

    return Stage(key="tokenizer", title="train the WordPiece vocabulary", run=run,
                 **_stage_settings(config, stats_sample=[str(p) for p, _ in sample]),
                 inputs=[*files, *(p for p, _ in sample)], outputs=[""], budget=sec.budget)


def _stats_sample(recipe: Recipe) -> list[tuple[Path, str]]:
    """(file, task) pairs of text the vocabulary was not trained on, for the [UNK] rate: each
    task's held-out file (else its validation or training file); at most two tasks."""
    out = []
    for task in recipe.finetune.values():
        for p in (task.test, task.valid, task.train):
            if p and Path(p).is_file():
                out.append((Path(p), task.task))
                break
    return out[:2]


def tokenizer_summary(tokenizer_dir: Path, sample: list[tuple[Path, str]],
                      show: list[str] | None = None) -> dict[str, Any]:
    """Vocabulary size, [UNK] rate and tokens per word on `sample` (via `tokenizer_stats`), and
    how a few sentences (`show`, then short ones from the sample) are split."""
    tok_cls = component("hanformer.tokenization.tokenizer", "Tokenizer", "tokenizer")
    tokenizer = tok_cls.from_pretrained(tokenizer_dir)
    summary: dict[str, Any] = {"vocab_size": tokenizer.vocab_size}
    texts = _sample_texts(sample)
    if texts:
        stats_fn = component("hanformer.tokenization.stats", "tokenizer_stats", "tokenizer")
        stats = dataclasses.asdict(stats_fn(tokenizer, texts=texts))
        summary.update({k: v for k, v in stats.items() if k != "vocab_hash"})
        summary["sample"] = ", ".join(str(p) for p, _ in sample)
    shown = [t for t in (show or []) if t] + [t for t in texts if 8 <= len(t) <= 40][:3]
    summary["examples"] = [{"text": t, "tokens": tokenizer.encode(t).tokens[1:-1]} for t in shown[:4]]
    return summary


def _sample_texts(sample: list[tuple[Path, str]], limit: int = 5000) -> list[str]:
    """Sentences of task files, read with each task's own reader (seeded order kept)."""
    from hanformer.tasks.registry import get_task

    texts: list[str] = []
    for path, task in sample:
        for e in get_task(task).read(path).examples[:limit]:
            for field in ("text", "text_pair", "question", "context"):
                value = getattr(e, field, None)
                if isinstance(value, str) and value.strip():
                    texts.append(value)
    return texts[:limit]


# ----------------------------------------------------------------------------- data

def _tokenizer_source(recipe: Recipe, explicit: str | None) -> tuple[dict[str, str], Path]:
    """(upstream dependency, folder) of the tokenizer a stage reads."""
    if explicit:
        return {}, Path(explicit)
    return {"tokenizer": ""}, recipe.run_dir / "tokenizer"


def data_stage(recipe: Recipe) -> Stage:
    sec = recipe.data
    assert sec is not None
    source = f"{recipe.path} [data]"
    files = [Path(p) for p in sec.input or (recipe.tokenizer.input if recipe.tokenizer else [])]
    upstream, tok_dir = _tokenizer_source(recipe, sec.tokenizer)
    config_cls = component("hanformer.data.prepare", "PrepareConfig", "data")
    prepare = component("hanformer.data.prepare", "prepare_data", "data")
    config = build_config(config_cls, sec.settings, {}, source, {"seed": recipe.run.seed})

    def run(ctx: StageContext) -> dict[str, Any]:
        summary = prepare([str(f) for f in files], tok_dir, ctx.dir / "shards", config)
        describe = component("hanformer.data.prepare", "describe", "data")
        ctx.log(describe(summary))
        return _plain(summary)

    return Stage(key="data", title="split sentences and tokenize the text into shards", run=run,
                 **_stage_settings(config),
                 inputs=files + ([tok_dir] if not upstream else []),
                 upstream=upstream, outputs=["shards"], budget=sec.budget)


def _plain(obj: Any) -> dict[str, Any]:
    """A component's result as JSON-ready numbers for the manifest and report."""
    if obj is None:
        return {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # an instance, not the class
        obj = dataclasses.asdict(obj)
    if not isinstance(obj, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, dict):
            out[k] = _plain(v)
    return out


# ----------------------------------------------------------------------------- pretrain

def pretrain_stage(recipe: Recipe) -> Stage:
    sec = recipe.pretrain
    assert sec is not None
    source = f"{recipe.path} [pretrain]"
    config_cls = component("hanformer.training.pretrain", "PretrainConfig", "pretrain")
    pretrain = component("hanformer.training.pretrain", "pretrain", "pretrain")
    out_dir = recipe.run_dir / "pretrain"
    injected = {"data": str(recipe.run_dir / "data" / "shards"), "trainer.output_dir": str(out_dir)}
    defaults: dict[str, Any] = {"trainer.seed": recipe.run.seed}
    if sec.budget:
        defaults["trainer.max_time"] = sec.budget
    config = build_config(config_cls, sec.settings, injected, source, defaults)

    def run(ctx: StageContext) -> dict[str, Any]:
        result = pretrain(config, resume=ctx.resume)
        _stop_if_interrupted(result, "pretrain")
        summary = _plain(result)
        summary.update(summary.pop("eval_metrics", {}) or {})
        rows = _read_jsonl(ctx.dir / "metrics.jsonl")
        speeds = [r["tokens_per_s"] for r in rows if isinstance(r.get("tokens_per_s"), (int, float))]
        if speeds:
            summary["tokens_per_s"] = round(sum(speeds) / len(speeds))
        return {k: v for k, v in summary.items() if k not in ("output_dir", "checkpoint", "final_dir")}

    objective = {"mlm": "masked-LM (no next-sentence prediction)", "rtd": "replaced-token detection (ELECTRA)",
                 "clm": "next-token prediction (GPT)"}.get(getattr(config, "objective", ""),
                                                         "masked-LM + next-sentence prediction")
    return Stage(key="pretrain", title=f"pretrain with {objective}", run=run,
                 **_stage_settings(config, ("data", "output_dir")), upstream={"data": "shards"},
                 outputs=["final", "final/config.json"], resumable=True, budget=sec.budget)


def _stop_if_interrupted(result: Any, key: str) -> None:
    """The trainer turns Ctrl-C / SIGTERM into a checkpoint and a normal return; the run must
    stop there (the stage stays unfinished, so the next run resumes it) instead of going on."""
    if getattr(result, "stopped", None) == "interrupted":
        raise StageInterrupted(f"stage {key} was interrupted after saving a checkpoint; "
                               "run the same command again to resume it")


class StageInterrupted(KeyboardInterrupt):
    """A training stage stopped on a signal after checkpointing (resumable)."""


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    from hanformer.recipes.report import read_jsonl

    return read_jsonl(path)


# ----------------------------------------------------------------------------- finetune

def finetune_stages(recipe: Recipe, name: str, sec: FinetuneSection) -> list[Stage]:
    source = f"{recipe.path} [finetune.{name}]"
    get_task = component("hanformer.tasks.registry", "get_task", f"finetune.{name}")
    try:
        get_task(sec.task)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    files = [Path(p) for p in (sec.train, sec.valid, sec.test) if p]
    if sec.model:
        model_dir, upstream = Path(sec.model), {}
    else:
        model_dir, upstream = recipe.run_dir / "pretrain" / "final", {"pretrain": "final"}
    config_cls = component("hanformer.tasks.finetune", "FinetuneConfig", f"finetune.{name}")
    finetune = component("hanformer.tasks.finetune", "finetune", f"finetune.{name}")
    stages = []
    for init in INITS if sec.scratch else INITS[:1]:
        out_dir = recipe.run_dir / "finetune" / name / init
        injected = {"task": sec.task, "model": str(model_dir), "train": sec.train, "valid": sec.valid,
                    "from_scratch": init == "scratch", "out": str(out_dir), "trainer.output_dir": str(out_dir)}
        defaults: dict[str, Any] = {"seed": recipe.run.seed, "trainer.seed": recipe.run.seed}
        if sec.budget:
            defaults.update({"max_time": sec.budget, "trainer.max_time": sec.budget})
        config = build_config(config_cls, sec.settings, injected, source, defaults)
        # From scratch reads only the architecture (config.json) and the tokenizer of the
        # pretrained model, so longer pretraining does not re-run it.
        up = dict(upstream)
        if up and init == "scratch":
            # The tokenizer comes from the [tokenizer] stage, or a folder copied into the shards.
            up = {"pretrain": "final/config.json", **({"tokenizer": ""} if recipe.tokenizer else {"data": "shards"})}
        inputs = list(files) + ([model_dir] if not upstream else [])
        stages.append(Stage(
            key=f"finetune/{name}/{init}",
            title=f"fine-tune on {sec.task} " + ("from the pretrained model" if init == "pretrained"
                                                 else "from scratch (same architecture)"),
            run=_finetune_run(finetune, config), **_stage_settings(config, _FINETUNE_PATHS),
            inputs=inputs, upstream=up, outputs=[str(d.relative_to(out_dir)) for d in best_dirs(out_dir, sec)],
            resumable=True, budget=sec.budget))
    # Both runs read the same examples (only the initialisation differs), and so does the baseline.
    baseline = baseline_stage(recipe, name, sec, config)
    return stages + ([baseline] if baseline else [])


def task_seeds(sec: FinetuneSection) -> list[int]:
    """The seeds a [finetune.X] table repeats its runs over (`seeds = [42, 1, 2]`); none: one run."""
    seeds = sec.settings.get("seeds") or []
    if isinstance(seeds, str):
        seeds = [int(s) for s in seeds.split(",") if s.strip()]
    return [int(s) for s in seeds]


def best_dirs(run_dir: Path, sec: FinetuneSection) -> list[Path]:
    """Where a fine-tuning run leaves its best model(s): one per seed (`seed-N/best`), or `best`."""
    seeds = task_seeds(sec)
    return [run_dir / f"seed-{s}" / "best" for s in seeds] if seeds else [run_dir / "best"]


_FINETUNE_PATHS = ("model", "train", "valid", "output_dir", "out", "resume")


def _finetune_run(finetune: Callable[..., Any], config: Any) -> Callable[[StageContext], dict[str, Any]]:
    def run(ctx: StageContext) -> dict[str, Any]:
        result = finetune(config, resume=ctx.resume, log=ctx.log)
        _stop_if_interrupted(result, ctx.stage.key)
        spread = {k: v["std"] for k, v in (getattr(result, "summary", None) or {}).items()}
        per_seed = [_plain(r.best_metrics) for r in getattr(result, "runs", None) or []]
        summary = _plain(result)
        valid = summary.pop("best_metrics", None) or summary.pop("eval_metrics", None) or {}
        out = {"valid": valid, **{k: v for k, v in summary.items() if isinstance(v, (int, float))}}
        if per_seed:
            out.update(valid_std=spread, seeds=list(getattr(config, "seeds", [])), valid_runs=per_seed)
        if result.majority_baseline:
            out["valid_majority"] = _named_majority(config.task, result.majority_baseline)
        return out
    return run


# ----------------------------------------------------------------------------- TF-IDF baseline

def baseline_absence(recipe: Recipe, name: str, sec: FinetuneSection) -> str | None:
    """Why the classification task of [finetune.<name>] gets no TF-IDF baseline; None when it gets
    one, or when the task is not classification (such tasks never have one). `baseline = true`
    that cannot be honoured is an error naming the table and the key."""
    from hanformer.tasks.registry import get_task

    source = f"{recipe.path} [finetune.{name}]"
    kind = get_task(sec.task).kind
    if kind != "classification":
        if sec.baseline:
            raise ConfigError(f"{source}: baseline = true: the TF-IDF baseline is for classification tasks, "
                              f"and {sec.task} is a {kind} task; remove the key")
        return None
    if sec.baseline is False:
        return "switched off in the recipe (baseline = false)"
    if importlib.util.find_spec("sklearn") is None:
        if sec.baseline:
            raise ConfigError(f"{source}: baseline = true needs scikit-learn: pip install "
                              "'hanformer[baselines]', or set baseline = false")
        return "scikit-learn is not installed (pip install 'hanformer[baselines]')"
    return None


def baseline_stage(recipe: Recipe, name: str, sec: FinetuneSection, finetune_config: Any) -> Stage | None:
    """The TF-IDF + logistic-regression baseline of a classification task, trained on the examples
    the fine-tuning runs read (the settings of `finetune_config`) and, when the recipe has an
    [evaluate] stage, scored on the held-out examples the models are scored on; None when the
    task gets no baseline (`baseline_absence`)."""
    from hanformer.tasks.registry import get_task

    if get_task(sec.task).kind != "classification" or baseline_absence(recipe, name, sec) is not None:
        return None
    table = f"finetune.{name}"
    config_cls = component("hanformer.tasks.baseline", "BaselineConfig", table)
    run_baseline = component("hanformer.tasks.baseline", "run_baseline", table)
    ft = finetune_config
    test = sec.test if recipe.evaluate is not None else None
    config = config_cls(task=ft.task, train=ft.train, valid=ft.valid, valid_fraction=ft.valid_fraction,
                        split_seed=ft.split_seed, max_train_examples=ft.max_train_examples,
                        max_valid_examples=ft.max_valid_examples, test=test,
                        max_test_examples=recipe.evaluate.max_examples if recipe.evaluate else 0,
                        test_seed=recipe.run.seed, data=dataclasses.replace(ft.data))
    try:
        config.validate()
    except ConfigError as e:
        raise ConfigError(f"{recipe.path} [{table}]: baseline: {e.message}") from None

    def run(ctx: StageContext) -> dict[str, Any]:
        report = run_baseline(dataclasses.replace(config, out=str(ctx.dir / "baseline.json")), log=ctx.log)
        summary = {k: report[k] for k in ("model", "train_examples", "valid_examples")}
        summary["valid"] = report["metrics"]
        if "test" in report:
            summary.update(test=report["test"]["metrics"], test_examples=report["test"]["examples"])
        return summary

    return Stage(key=f"finetune/{name}/tfidf",
                 title=f"train the TF-IDF + logistic-regression baseline on {sec.task} (the same labels)",
                 run=run, **_stage_settings(config, ("train", "valid", "test", "out")),
                 inputs=[Path(p) for p in (config.train, config.valid, config.test) if p],
                 outputs=["baseline.json"])


# ----------------------------------------------------------------------------- evaluate

def evaluate_stage(recipe: Recipe) -> Stage:
    sec = recipe.evaluate
    assert sec is not None
    evaluate = component("hanformer.tasks.evaluate", "evaluate", "evaluate")
    predict = component("hanformer.tasks.predict", "predict", "evaluate")
    upstream: dict[str, str] = {}
    inputs: list[Path] = []
    plan: list[tuple[str, FinetuneSection, str]] = []
    for name, task in recipe.finetune.items():
        for init in INITS if task.scratch else INITS[:1]:
            upstream[f"finetune/{name}/{init}"] = "" if task_seeds(task) else "best"  # "": every seed's output
            plan.append((name, task, init))
        if task.test:
            inputs.append(Path(task.test))

    def run(ctx: StageContext) -> dict[str, Any]:
        from hanformer.tasks.finetune import mean_std

        results: dict[str, Any] = {}
        for name, task, init in plan:
            model_dirs = best_dirs(recipe.run_dir / "finetune" / name / init, task)
            entry = results.setdefault(name, {"task": task.task, "data": task.test, "runs": {}})
            run_result: dict[str, Any] = {}
            if task.test:
                scores = []
                run_seeds: Sequence[int | None] = task_seeds(task) or [None]  # None: one unseeded run
                for model_dir, seed in zip(model_dirs, run_seeds, strict=True):
                    suffix = f"-seed{seed}" if seed is not None else ""
                    report = evaluate(model_dir, task.task, task.test, batch_size=sec.batch_size,
                                      max_examples=sec.max_examples, seed=recipe.run.seed,
                                      out=str(ctx.dir / f"{name}-{init}{suffix}.json"), log=ctx.log)
                    scores.append(_plain(report.get("metrics", {})))
                    if report.get("majority_baseline"):
                        run_result["test_majority"] = _named_majority(task.task, report["majority_baseline"])
                if len(scores) == 1:
                    run_result["test"] = scores[0]
                else:
                    summary = mean_std(scores)
                    run_result.update(test={k: v["mean"] for k, v in summary.items()},
                                      test_std={k: v["std"] for k, v in summary.items()}, test_runs=scores)
                # Confusion matrix and examples: the first seed's model.
                run_result.update(_predictions(predict, model_dirs[0], task, sec, recipe.run.seed, entry))
            entry["runs"][init] = run_result
        atomic_write_json(ctx.dir / "results.json", {"tasks": results})
        return {name: {init: r.get("test", {}) for init, r in e["runs"].items()} for name, e in results.items()}

    title = ("score every fine-tuned model on its held-out file" if inputs else
             "collect the validation scores (no task has a held-out `test` file)")
    return Stage(key="evaluate", title=title, run=run,
                 settings=dataclasses.asdict(sec), inputs=inputs, upstream=upstream,
                 outputs=["results.json"], budget=sec.budget)


def _predictions(predict: Callable[..., Any], model_dir: Path, task: FinetuneSection, sec: EvaluateSection,
                 seed: int, entry: dict[str, Any]) -> dict[str, Any]:
    """Confusion matrix and example predictions (mistakes first) for classification tasks, on
    the same examples `evaluate` scored."""
    from hanformer.tasks.finetune import subsample
    from hanformer.tasks.registry import get_task

    spec = get_task(task.task)
    if spec.kind != "classification" or not task.test:
        return {}
    examples = subsample(spec.read(task.test).examples, sec.max_examples, seed)
    n_examples, batch_size = sec.examples, sec.batch_size
    inputs = [e.text if e.text_pair is None else (e.text, e.text_pair) for e in examples]
    preds = predict(model_dir, inputs, batch_size=batch_size)
    labels = list(spec.labels or sorted({str(e.label) for e in examples}))
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    rows = []
    for ex, p in zip(examples, preds, strict=True):
        label, prob = str(p.get("data_label", p.get("label"))), p.get("probability")
        gold = str(ex.label)
        if gold in index and label in index:
            matrix[index[gold]][index[label]] += 1
        rows.append({"text": ex.text, "text_pair": ex.text_pair, "gold": _label_name(spec.name, gold),
                     "prediction": _label_name(spec.name, label), "probability": prob, "correct": gold == label})
    # Half mistakes (the most confident ones: the instructive kind), half right answers.
    wrong = sorted((r for r in rows if not r["correct"]), key=lambda r: -(r["probability"] or 0))
    right = [r for r in rows if r["correct"]]
    n_wrong = min(len(wrong), max(n_examples // 2, n_examples - len(right)))
    shown = wrong[:n_wrong] + right[:n_examples - n_wrong]
    entry["labels"] = [_label_name(spec.name, label) for label in labels]
    entry["n"] = len(examples)
    return {"confusion": matrix, "examples": shown}


def _label_name(task: str, label: str) -> str:
    """How the report names a label (the sentiment tasks store 0/1): the task registry's name."""
    from hanformer.tasks.registry import label_name

    return label_name(task, label)


def _named_majority(task: str, floor: dict[str, Any] | None) -> dict[str, Any]:
    """A majority-class baseline with its label named as the report names it."""
    floor = _plain(floor)
    if "label" in floor:
        floor["label"] = _label_name(task, str(floor["label"]))
    return floor


# ----------------------------------------------------------------------------- report

def report_stage(recipe: Recipe, stage_keys: list[str]) -> Stage:
    sec = recipe.report
    assert sec is not None
    upstream = {k: "" for k in stage_keys}
    no_baseline = {name: why for name, task in recipe.finetune.items()
                   if (why := baseline_absence(recipe, name, task)) is not None}
    attention_model = None
    if recipe.pretrain is not None:
        attention_model = recipe.run_dir / "pretrain" / "final"
        component("hanformer.visualization.attention", "attention_data", "report")

    def run(ctx: StageContext) -> dict[str, Any]:
        from hanformer.recipes.report import collect_report_data, render_report
        from hanformer.recipes.stages import read_manifest
        from hanformer.utils.files import atomic_write

        records = []
        for key in stage_keys:
            man = read_manifest(recipe.run_dir / key) or {}
            records.append({"key": key, "title": man.get("title", ""), "action": "run",
                            "reason": "", "seconds": man.get("seconds")})
        extra: dict[str, Any] = {"title": sec.title or f"hanformer run: {recipe.name}"}
        if attention_model is not None and sec.attention_text:
            extra["attention"] = _attention(attention_model, sec.attention_text, sec.attention_layer,
                                            ctx.dir / "attention.html")
        data = collect_report_data(recipe, recipe.run_dir, records, extra)
        for name, why in no_baseline.items():
            if name in data["tasks"]:
                data["tasks"][name]["tfidf_baseline_absent"] = why
        atomic_write_json(ctx.dir / "metrics.json", data)
        with atomic_write(ctx.dir / "report.html") as f:
            f.write(render_report(data))
        return {"comparison": data.get("comparison", {})}

    return Stage(key="report", title="write report.html and metrics.json", run=run,
                 settings=dataclasses.asdict(sec), inputs=[recipe.path], upstream=upstream,
                 outputs=["metrics.json"])


def _attention(model_dir: Path, text: str, layer: int, html_path: Path) -> dict[str, Any]:
    """The attention of `text` in one layer for the report's picture; the interactive head and
    model views of all layers go to `html_path` (the visualization's own page)."""
    attention_data = component("hanformer.visualization.attention", "attention_data", "report")
    load_model = component("hanformer.models.checkpoint", "load_model", "report")
    tok_cls = component("hanformer.tokenization.tokenizer", "Tokenizer", "report")
    model = load_model(model_dir)
    tokenizer = tok_cls.from_pretrained(model_dir)
    data = attention_data(model, tokenizer, text)
    write_html = component("hanformer.visualization.html", "write_attention_html", "report")
    write_html(data, html_path, title="Attention of the pretrained model", model_name=str(model_dir))
    layers = data.num_layers
    layer = layer if layer >= 0 else layers + layer
    layer = max(0, min(layers - 1, layer))
    heads = [[[round(float(v), 4) for v in row] for row in head] for head in data.attentions[layer].tolist()]
    return {"text": text, "tokens": list(data.tokens), "layer": layer, "layers": layers,
            "heads": heads, "model": str(model_dir), "html": f"report/{html_path.name}"}


# ----------------------------------------------------------------------------- plan

def build_stages(recipe: Recipe) -> list[Stage]:
    """Every stage of the recipe in run order, after checking each one (no work is done)."""
    check_inputs(recipe)
    stages: list[Stage] = []
    if recipe.tokenizer is not None:
        stages.append(tokenizer_stage(recipe))
    if recipe.data is not None:
        stages.append(data_stage(recipe))
    if recipe.pretrain is not None:
        stages.append(pretrain_stage(recipe))
    for name, sec in recipe.finetune.items():
        stages.extend(finetune_stages(recipe, name, sec))
    if recipe.evaluate is not None:
        stages.append(evaluate_stage(recipe))
    if recipe.report is not None:
        stages.append(report_stage(recipe, [s.key for s in stages]))
    return stages


def check_inputs(recipe: Recipe) -> None:
    """Every file a stage reads exists, and every stage has its input (an upstream stage or a path).

    Cheap checks first, all of them before any component is imported or any work starts.
    """
    p = recipe.path
    if not any((recipe.tokenizer, recipe.data, recipe.pretrain, recipe.finetune, recipe.evaluate, recipe.report)):
        raise ConfigError(f"{p}: no stages; add at least one of [tokenizer], [data], [pretrain], "
                          "[finetune.<task>], [evaluate], [report]")
    if recipe.tokenizer is not None:
        if not recipe.tokenizer.input:
            raise ConfigError(f"{p} [tokenizer]: missing key 'input' (the text files to train the vocabulary on)")
        _check_files(recipe.tokenizer.input, f"{p} [tokenizer]", "input")
    if recipe.data is not None:
        source = f"{p} [data]"
        if recipe.data.input:
            _check_files(recipe.data.input, source, "input")
        elif recipe.tokenizer is None:
            raise ConfigError(f"{source}: missing key 'input' (the text to pretrain on)")
        if recipe.data.tokenizer:
            _check_files([recipe.data.tokenizer], source, "tokenizer", directory=True)
        elif recipe.tokenizer is None:
            raise ConfigError(f"{source}: needs a tokenizer: add a [tokenizer] stage or set "
                              "[data] tokenizer = \"DIR\" (an existing tokenizer folder)")
    if recipe.pretrain is not None and recipe.data is None:
        raise ConfigError(f"{p} [pretrain]: needs token shards: add a [data] stage before [pretrain]")
    for name, sec in recipe.finetune.items():
        source = f"{p} [finetune.{name}]"
        for key in ("train", "valid", "test"):
            if getattr(sec, key):
                _check_files([getattr(sec, key)], source, key)
        if sec.model:
            _check_files([sec.model], source, "model", directory=True)
        elif recipe.pretrain is None:
            raise ConfigError(f"{source}: needs a model to fine-tune: add a [pretrain] stage or set "
                              f"[finetune.{name}] model = \"DIR\" (an existing checkpoint)")
    if recipe.evaluate is not None and not recipe.finetune:
        raise ConfigError(f"{p} [evaluate]: nothing to evaluate: add a [finetune.<task>] table")

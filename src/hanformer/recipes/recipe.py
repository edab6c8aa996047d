"""Recipes: one TOML file that names every stage of the main job and its settings.

    [run]                 name, output folder, seed, CPU threads
    [tokenizer]           train a WordPiece vocabulary          -> runs/<name>/tokenizer/
    [data]                text -> token shards                  -> runs/<name>/data/
    [pretrain]            masked-LM + NSP pretraining           -> runs/<name>/pretrain/
    [variant.<v>]         a second pretrained model: the same text with some [data] / [pretrain]
                          settings changed, fine-tuned on every task beside the first
                                                                -> runs/<name>/variant/<v>/{data,pretrain}/
    [finetune.<task>]     one table per task; each task is fine-tuned from the pretrained
                          model AND from scratch (same architecture and settings), and a
                          classification task also trains the TF-IDF baseline on the same labels
                                                                -> runs/<name>/finetune/<task>/{pretrained,scratch,tfidf}/
    [evaluate]            score every fine-tuned model on the task's held-out file
    [translation.<name>]  one table per encoder-decoder model: parallel text -> a trained
                          translation (or question -> answer) model, scored with greedy and
                          beam search on its validation pairs
                                                                -> runs/<name>/translation/<name>/{data,train,score}/
    [language_models]     one text corpus (a seeded carve of held-out documents) and, as sub-tables
                          [language_models.<name>], the models trained on it side by side (n-gram,
                          LSTM, GRU, GPT) at one wall-clock budget, scored per word piece of the
                          held-out text                        -> runs/<name>/lm/{data,<name>/{train,score}}/
    [report]              runs/<name>/report.html + runs/<name>/metrics.json

Each stage table holds the runner's own keys (declared below: input files, budgets, ...) and,
beside them, the settings of the component that does the work (`TokenizerConfig`, the data
preparation config, the pretraining config, the fine-tuning config). Both kinds are checked
before any stage runs (`load_recipe`, then `build_stages` in `stages/build.py`), so a typo in
the last table fails in a second, not after an hour of pretraining.

Relative paths are read from the folder `hanformer run` is started in, like every other path
on the command line (the recipes in `recipes/` are meant to run from the repository root).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hanformer.errors import ConfigError
from hanformer.recipes.stage_config import parse_stage_config
from hanformer.training.config import check_seed
from hanformer.utils.config import load_toml, parse_duration, setting
from hanformer.utils.corpus import FORMATS

STAGE_TABLES = ("run", "tokenizer", "data", "pretrain", "variant", "finetune", "evaluate", "translation",
                "language_models", "report")
# Names a variant cannot take: the other initialisations of a task's fine-tuning runs.
RESERVED_VARIANT_NAMES = ("pretrained", "scratch", "tfidf")


@dataclass
class RunSection:
    """`[run]`: what the run is called and where it writes."""

    name: str = setting("", "name of the run; outputs go to <out_dir>/<name>/ (default: the recipe file's stem)")
    out_dir: str = setting("runs", "folder that holds one sub-folder per run")
    seed: int = setting(42, "seed for every stage (tokenizer sampling, data, initialisation, shuffling)")
    threads: int = setting(0, "CPU threads for PyTorch (0 = PyTorch's default)")
    description: str = setting("", "one line about the recipe, shown at the top of the report")

    def validate(self) -> None:
        if self.name and not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise ConfigError(f"name = {self.name!r}: use letters, digits, '.', '_' or '-' only")
        if self.threads < 0:
            raise ConfigError(f"threads = {self.threads}: must be 0 (default) or more")
        check_seed(self.seed, "seed")


@dataclass
class TokenizerSection:
    """`[tokenizer]`: the text the vocabulary is trained on; other keys go to `TokenizerConfig`."""

    input: list[str] = setting([], "text files to train the vocabulary on")
    budget: str | None = setting(None, "stated wall-clock budget for this stage (e.g. '2m'), shown in the plan and report")
    settings: dict[str, Any] = setting({}, "(the component's own settings; filled from the other keys)")


@dataclass
class DataSection:
    """`[data]`: text -> token shards; other keys go to the data preparation config."""

    input: list[str] = setting([], "text files to pretrain on (default: the [tokenizer] input)")
    tokenizer: str | None = setting(None, "an existing tokenizer folder, instead of a [tokenizer] stage")
    budget: str | None = setting(None, "stated wall-clock budget for this stage")
    settings: dict[str, Any] = setting({}, "(the component's own settings)")


@dataclass
class PretrainSection:
    """`[pretrain]`: masked-LM + NSP; other keys go to the pretraining config."""

    budget: str | None = setting(None, "stated wall-clock budget for this stage (the trainer's max_time when it has one)")
    settings: dict[str, Any] = setting({}, "(the component's own settings)")


@dataclass
class VariantSection:
    """`[variant.<name>]`: a second pretrained model beside `[pretrain]`'s, from the same text and
    tokenizer with some `[data]` and `[pretrain]` settings changed; every task is fine-tuned from it
    too, with the task's settings and seeds, so the report puts it beside the recipe's own model."""

    description: str = setting("", "one line on what the variant changes, shown in the report")
    data: dict[str, Any] = setting({}, "[data] settings that differ, e.g. { entity = { entities = \"kiwi\" } } "
                                   "(none: the variant pretrains on the recipe's own shards)")
    pretrain: dict[str, Any] = setting({}, "[pretrain] settings that differ, e.g. { objective = \"mlm\" }")


@dataclass
class FinetuneSection:
    """`[finetune.<task>]`: one task; other keys go to the fine-tuning config."""

    task: str = setting("", "task name (nsmc, sst2, klue-nli, korsts, klue-ner, conll2003, korquad, ...; default: the table name)")
    train: str = setting("", "training file")
    valid: str | None = setting(None, "validation file (default: a seeded part carved from the training file)")
    test: str | None = setting(None, "held-out file scored by [evaluate] (default: the validation part)")
    model: str | None = setting(None, "an existing checkpoint to fine-tune, instead of the [pretrain] output")
    scratch: bool = setting(True, "also fine-tune the same architecture from random initialisation, for comparison")
    baseline: bool | None = setting(None, "classification tasks: also train the TF-IDF + logistic-regression "
                                    "baseline on the same labels and carve, for comparison (default: when "
                                    "scikit-learn is installed; false: never)")
    budget: str | None = setting(None, "stated wall-clock budget for each of the two fine-tuning runs")
    answer_types: bool = setting(False, "extractive QA: also score each model's validation questions split by "
                                 "answer type, answers overlapping a proper noun Kiwi finds in the context "
                                 "and the others (needs kiwipiepy)")
    settings: dict[str, Any] = setting({}, "(the component's own settings)")


@dataclass
class EvaluateSection:
    """`[evaluate]`: score each fine-tuned model on its task's held-out file."""

    examples: int = setting(12, "example predictions kept per task for the report (mistakes first)")
    batch_size: int = setting(64, "batch size for scoring")
    max_examples: int = setting(0, "score a seeded random subset of this many held-out examples (0: all)")
    budget: str | None = setting(None, "stated wall-clock budget for this stage")

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size = {self.batch_size}: must be at least 1")
        for key in ("examples", "max_examples"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} = {getattr(self, key)}: must be 0 or more")


@dataclass
class TranslationSection:
    """`[translation.<name>]`: one encoder-decoder model; other keys go to `TranslationTrainConfig`
    (`hanformer translation train`'s settings, trainer keys such as `lr` or `max_steps` included)."""

    train: list[dict[str, Any]] = setting([], "training corpora, each a table: { source = FILE, target = FILE } "
                                          "(line-aligned files) or { file = FILE, source_column = ..., "
                                          "target_column = ... } (two columns of one TSV/CSV file)")
    valid: list[dict[str, Any]] = setting([], "validation corpora, the same kind of tables (default: valid_size "
                                          "pairs carved from the training corpora, seeded)")
    beams: int = setting(4, "beam width of the beam-search translations scored after training (greedy ones "
                         "are scored too; 1: greedy only)")
    score_sentences: int = setting(0, "validation pairs translated and scored after training (0: all)")
    score_batch_size: int = setting(32, "sentences translated together when scoring")
    examples: int = setting(20, "translations shown in the report, lowest sentence chrF first")
    alignments: int = setting(3, "validation sentences whose cross-attention the report draws")
    alignment_layer: int = setting(-1, "decoder layer whose cross-attention is drawn (-1 = the last)")
    budget: str | None = setting(None, "stated wall-clock budget of the training (the trainer's max_time "
                                 "unless the table sets one)")
    settings: dict[str, Any] = setting({}, "(the component's own settings)")

    def validate(self) -> None:
        for key in ("beams", "score_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} = {getattr(self, key)}: must be at least 1")
        for key in ("score_sentences", "examples", "alignments"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} = {getattr(self, key)}: must be 0 or more")


LANGUAGE_MODEL_KINDS = ("ngram", "lstm", "gru", "gpt")


@dataclass
class LanguageModelSection:
    """`[language_models.<name>]`: one model; other keys go to its component's config (`NgramConfig`
    for ngram, `RNNTrainConfig` for lstm and gru, `PretrainConfig` with the causal-LM objective for gpt)."""

    kind: str = setting("", f"what the model is: {', '.join(LANGUAGE_MODEL_KINDS)}")
    budget: str | None = setting(None, "wall-clock budget of this model's training (default: the "
                                 "[language_models] budget; n-gram counting is not budgeted)")
    settings: dict[str, Any] = setting({}, "(the component's own settings)")

    def validate(self) -> None:
        if self.kind not in LANGUAGE_MODEL_KINDS:
            raise ConfigError(f"kind = {self.kind!r}: use one of {', '.join(LANGUAGE_MODEL_KINDS)}")


@dataclass
class LanguageModelsSection:
    """`[language_models]`: the shared corpus and tokenizer of the language models compared; every
    sub-table `[language_models.<name>]` is one model (`LanguageModelSection`)."""

    train: list[str] = setting([], "text files the models are trained on (documents are read with the "
                               "project's readers: text, wiki, jsonl, tsv)")
    heldout: str | None = setting(None, "held-out text file (default: heldout_documents documents carved "
                                  "from the training files, seeded)")
    heldout_documents: int = setting(200, "documents carved for the held-out text when no heldout file is given")
    max_documents: int = setting(0, "read at most this many documents of the training files (0: all)")
    input_format: str = setting("auto", "format of the text files: auto, text, wiki, jsonl, tsv")
    tokenizer: str | None = setting(None, "an existing tokenizer folder, instead of the [tokenizer] stage")
    budget: str | None = setting(None, "wall-clock budget of each neural model's training (the trainer's max_time)")
    samples: int = setting(3, "texts sampled from each model for the report, every one from the start of a document")
    sample_tokens: int = setting(40, "word pieces per sample at most")
    temperature: float = setting(1.0, "sampling temperature of the neural models (the n-gram samples its "
                                 "distribution as it is)")
    score_window: int = setting(128, "tokens per forward pass when the neural models score the held-out text")
    models: dict[str, LanguageModelSection] = setting({}, "(the [language_models.<name>] tables)")

    def validate(self) -> None:
        for key in ("heldout_documents", "samples", "sample_tokens", "score_window"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} = {getattr(self, key)}: must be at least 1")
        if self.max_documents < 0:
            raise ConfigError(f"max_documents = {self.max_documents}: must be 0 (all) or more")
        if not self.temperature > 0:
            raise ConfigError(f"temperature = {self.temperature}: must be greater than 0")
        if self.input_format not in FORMATS:
            raise ConfigError(f"input_format = {self.input_format!r}: use one of {', '.join(FORMATS)}")


@dataclass
class ReportSection:
    """`[report]`: the HTML report and metrics.json."""

    title: str = setting("", "report title (default: the run name)")
    attention_text: str = setting("이 영화 정말 재미있어요. 배우들의 연기가 훌륭했다.",
                                  "sentence whose attention is drawn in the report")
    attention_layer: int = setting(-1, "layer drawn in the attention picture (-1 = last)")


# The runner's own keys per table; everything else in a stage table is the component's.
_SECTIONS: dict[str, type] = {
    "tokenizer": TokenizerSection,
    "data": DataSection,
    "pretrain": PretrainSection,
    "finetune": FinetuneSection,
    "translation": TranslationSection,
}


@dataclass
class Recipe:
    """A loaded recipe. Stage sections are None when the table is absent."""

    path: Path
    run: RunSection
    tokenizer: TokenizerSection | None = None
    data: DataSection | None = None
    pretrain: PretrainSection | None = None
    variants: dict[str, VariantSection] = field(default_factory=dict)
    finetune: dict[str, FinetuneSection] = field(default_factory=dict)
    evaluate: EvaluateSection | None = None
    translation: dict[str, TranslationSection] = field(default_factory=dict)
    language_models: LanguageModelsSection | None = None
    report: ReportSection | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run.name or self.path.stem

    @property
    def run_dir(self) -> Path:
        return Path(self.run.out_dir) / self.name


def _split(table: dict[str, Any], section_cls: type, source: str) -> Any:
    """Fill `section_cls` from its own keys; the rest of `table` goes to `.settings`."""
    own = {f.name for f in dataclasses.fields(section_cls)} - {"settings"}
    mine = {k: v for k, v in table.items() if k.replace("-", "_") in own}
    rest = {k.replace("-", "_"): v for k, v in table.items() if k.replace("-", "_") not in own}
    section: Any = parse_stage_config(section_cls, mine, source)
    section.settings = rest
    return section


def _check_budget(budget: str | None, source: str) -> None:
    if budget is not None:
        try:
            parse_duration(budget)
        except ConfigError as e:
            raise ConfigError(f"{source}: budget: {e}") from None


def parse_recipe(data: dict[str, Any], path: str | Path) -> Recipe:
    """Build a `Recipe` from a TOML dict; unknown tables and runner keys are named with the file.

    The component settings (the rest of each stage table) are checked later against the
    component's own config class, by `build_stages` (`stages/build.py`).
    """
    path = Path(path)
    unknown = [k for k in data if k not in STAGE_TABLES]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, STAGE_TABLES, n=1)
            hints.append(f"[{k}]" + (f" (did you mean [{close[0]}]?)" if close else ""))
        raise ConfigError(f"{path}: unknown stage {', '.join(hints)}; "
                          f"valid tables: {', '.join(f'[{t}]' for t in STAGE_TABLES)}")
    for key, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a table ([{key}]), got {value!r}")

    recipe = Recipe(path=path, run=parse_stage_config(RunSection, data.get("run", {}), f"{path} [run]"), raw=data)
    for name in ("tokenizer", "data", "pretrain"):
        if name in data:
            source = f"{path} [{name}]"
            section = _split(data[name], _SECTIONS[name], source)
            _check_budget(section.budget, source)
            setattr(recipe, name, section)
    for name, table in data.get("variant", {}).items():
        recipe.variants[name] = _variant(name, table, path)
    for task_name, table in data.get("finetune", {}).items():
        source = f"{path} [finetune.{task_name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: expected a table per task, e.g. [finetune.nsmc] with train = \"FILE\"; "
                              f"got {task_name} = {table!r}")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", task_name):
            raise ConfigError(f"{source}: task table names use letters, digits, '.', '_' or '-' only")
        section = _split(table, FinetuneSection, source)
        section.task = section.task or task_name
        if not section.train:
            raise ConfigError(f"{source}: missing key 'train' (the training file of the task)")
        _check_budget(section.budget, source)
        recipe.finetune[task_name] = section
    if "evaluate" in data:
        recipe.evaluate = parse_stage_config(EvaluateSection, data["evaluate"], f"{path} [evaluate]")
        _check_budget(recipe.evaluate.budget, f"{path} [evaluate]")
    for name, table in data.get("translation", {}).items():
        source = f"{path} [translation.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: expected a table per model, e.g. [translation.en-de] with "
                              f"train = [{{ source = \"FILE\", target = \"FILE\" }}]; got {name} = {table!r}")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ConfigError(f"{source}: translation table names use letters, digits, '.', '_' or '-' only")
        section = _split(table, TranslationSection, source)
        if not section.train:
            raise ConfigError(f"{source}: missing key 'train' (the training corpora, e.g. "
                              "train = [{ source = \"train.en\", target = \"train.de\" }])")
        _check_budget(section.budget, source)
        recipe.translation[name] = section
    if "language_models" in data:
        recipe.language_models = _language_models(data["language_models"], path)
    if "report" in data:
        recipe.report = parse_stage_config(ReportSection, data["report"], f"{path} [report]")
    return recipe


def _variant(name: str, table: Any, path: Path) -> VariantSection:
    """`[variant.<name>]`: its keys checked here; its settings with the stages they change (`build_stages`)."""
    source = f"{path} [variant.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: expected a table per variant, e.g. [variant.entities] with "
                          f"data = {{ entity = {{ entities = \"kiwi\" }} }}; got {name} = {table!r}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in RESERVED_VARIANT_NAMES:
        raise ConfigError(f"{source}: a variant is named with letters, digits, '.', '_' or '-', and not "
                          f"{', '.join(RESERVED_VARIANT_NAMES)} (the other runs of every task)")
    section = parse_stage_config(VariantSection, table, source)
    for key in ("data", "pretrain"):
        if not isinstance(getattr(section, key), dict):
            raise ConfigError(f"{source}: {key} must be a table of [{key}] settings, e.g. {key} = {{ ... }}")
    if not section.data and not section.pretrain:
        raise ConfigError(f"{source}: changes nothing; give data = {{ ... }} and/or pretrain = {{ ... }} "
                          "with the settings that differ from [data] and [pretrain]")
    return section


def _language_models(table: dict[str, Any], path: Path) -> LanguageModelsSection:
    """`[language_models]` and its model sub-tables (a key whose value is a table is one model)."""
    source = f"{path} [language_models]"
    own = {k: v for k, v in table.items() if not isinstance(v, dict)}
    section = parse_stage_config(LanguageModelsSection, own, source)
    if not section.train:
        raise ConfigError(f"{source}: missing key 'train' (the text files the models are trained on)")
    _check_budget(section.budget, source)
    for name, sub in table.items():
        if not isinstance(sub, dict):
            continue
        model_source = f"{path} [language_models.{name}]"
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ConfigError(f"{model_source}: model table names use letters, digits, '.', '_' or '-' only")
        if "kind" not in sub:
            raise ConfigError(f"{model_source}: missing key 'kind' ({', '.join(LANGUAGE_MODEL_KINDS)})")
        model = _split(sub, LanguageModelSection, model_source)
        _check_budget(model.budget, model_source)
        section.models[name] = model
    if not section.models:
        raise ConfigError(f"{source}: no models; add a table per model, e.g. [language_models.lstm] with kind = \"lstm\"")
    return section


def load_recipe(path: str | Path) -> Recipe:
    """Read and parse a recipe file (checks tables and runner keys; see `build_stages`)."""
    return parse_recipe(load_toml(path), path)

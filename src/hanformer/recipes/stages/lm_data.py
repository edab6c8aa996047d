"""The data stage of `[language_models]`: the training documents and the held-out documents every
model is trained and scored on, written one document per line (see `lm_paths.py` for why)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hanformer.errors import InputError
from hanformer.recipes.stages.lm_paths import LanguageModelLayout
from hanformer.utils.corpus import expand_paths, iter_documents
from hanformer.utils.files import atomic_write


@dataclass(frozen=True)
class CorpusPlan:
    """Which documents the models see: the `[language_models]` corpus keys and the run's seed."""

    train: tuple[str, ...]
    heldout: str | None
    heldout_documents: int
    max_documents: int
    input_format: str
    seed: int


def _documents(paths: list[str], fmt: str, limit: int = 0) -> Iterator[str]:
    """Each document's paragraphs joined into one line (titles left out, as the readers do)."""
    count = 0
    for path in expand_paths(paths):
        for doc in iter_documents(path, fmt):
            text = " ".join(line.strip() for line in doc.lines if line.strip())
            if text:
                yield text
                count += 1
                if limit and count >= limit:
                    return


def _write(path: Path, documents: list[str]) -> int:
    with atomic_write(path) as f:
        f.writelines(f"{doc}\n\n" for doc in documents)
    return sum(len(doc) for doc in documents)


def prepare_lm_corpus(plan: CorpusPlan, layout: LanguageModelLayout) -> dict[str, Any]:
    """Write train.txt and heldout.txt; the held-out documents are carved (seeded) unless given."""
    documents = list(_documents(list(plan.train), plan.input_format, plan.max_documents))
    names = ", ".join(plan.train)
    if plan.heldout:
        held = list(_documents([plan.heldout], plan.input_format))
        train = documents
    else:
        if len(documents) <= plan.heldout_documents:
            raise InputError(f"{names}: {len(documents)} document(s), so {plan.heldout_documents} cannot be held out "
                             "with any left to train on; lower heldout_documents, raise max_documents or give "
                             "heldout = FILE")
        chosen = set(random.Random(plan.seed).sample(range(len(documents)), plan.heldout_documents))
        held = [d for i, d in enumerate(documents) if i in chosen]
        train = [d for i, d in enumerate(documents) if i not in chosen]
    if not held:
        raise InputError(f"{plan.heldout}: no documents to score the models on")
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    return {"train_documents": len(train), "train_characters": _write(layout.train_text, train),
            "heldout_documents": len(held), "heldout_characters": _write(layout.heldout_text, held),
            "heldout_carved": not plan.heldout}

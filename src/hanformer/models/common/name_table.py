"""Two-way renaming of tensors between our names and a checkpoint format's (one table per family).

A table lists `(our name, their name)` prefixes; `{i}` in a prefix stands for a layer number. Every
family adapter (BERT, GPT-2, RoBERTa/ELECTRA heads) renames through this one mechanism.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class NameTable:
    """`to_hf(name)` / `from_hf(name)`: the renamed tensor, or None when no prefix matches.

    With `anywhere=True` a prefix may follow any leading text, which is kept (BERT's tables match
    inside `bert.` or a head's own prefix); otherwise it must start the name."""

    def __init__(self, pairs: Sequence[tuple[str, str]], *, anywhere: bool = False) -> None:
        lead = "^(.*?)" if anywhere else "^()"

        def compile_prefix(template: str) -> re.Pattern[str]:
            return re.compile(lead + re.escape(template).replace(r"\{i\}", r"(\d+)"))

        self._to_hf = [(compile_prefix(ours), theirs) for ours, theirs in pairs]
        self._from_hf = [(compile_prefix(theirs), ours) for ours, theirs in pairs]

    def to_hf(self, name: str) -> str | None:
        return _apply(name, self._to_hf)

    def from_hf(self, name: str) -> str | None:
        return _apply(name, self._from_hf)


def _apply(name: str, table: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, target in table:
        m = pattern.match(name)
        if m:
            lead, *layer = m.groups()
            return lead + (target.replace("{i}", layer[0]) if layer else target) + name[m.end():]
    return None

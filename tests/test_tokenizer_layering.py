"""The tokenization package sits below data/: it reads corpus files through utils, never data/."""

from __future__ import annotations

import subprocess
import sys

from hanformer.data import readers
from hanformer.utils import corpus


def test_tokenization_imports_nothing_of_data_or_torch():
    # Each module is imported in a fresh interpreter, so no earlier import hides an upward one.
    code = ("import sys; import hanformer.tokenization.trainer, hanformer.tokenization.stats, "
            "hanformer.tokenization.tokenizer; "
            "print(sorted(m for m in sys.modules if m.startswith('hanformer.data') or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_data_readers_are_the_corpus_readers_not_copies():
    for name in ("Document", "detect_format", "expand_paths", "iter_documents", "iter_text_lines", "FORMATS"):
        assert getattr(readers, name) is getattr(corpus, name), name

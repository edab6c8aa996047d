"""Text readers of the data layer: corpus files as documents (title + non-empty lines) with positions.

The reading itself lives in `hanformer.utils.corpus`, below tokenization, which trains on the same
files; this module is where the data layer (and its documentation) finds it: `iter_documents`,
`iter_text_lines`, `expand_paths`, `detect_format`, `Document` and the format names.
"""

from __future__ import annotations

from hanformer.utils.corpus import (
    FORMATS,
    Document,
    Format,
    detect_format,
    expand_paths,
    iter_documents,
    iter_text_lines,
)

__all__ = ["FORMATS", "Document", "Format", "detect_format", "expand_paths", "iter_documents", "iter_text_lines"]

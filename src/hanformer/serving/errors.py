"""The refusals the inference side of the app shares (the engine and the translation service)."""

from __future__ import annotations

from hanformer.errors import InputError


class FieldError(InputError):
    """Bad input in one request field; the app answers 422 naming `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def answer_too_large(size: int, limit: int, advice: str) -> str:
    """The one wording of a refused answer size (the engine's estimates and the app's final check)."""
    return (f"the answer would be about {size} bytes, more than max_response_bytes = {limit} "
            f"(`hanformer serve --max-response-bytes`); {advice}")


def check_answer_size(size: float, limit: int, field: str, advice: str) -> None:
    """Refuse (422 naming `field`) an answer foreseen to be over the server's limit."""
    if size > limit:
        raise FieldError(field, f"{field}: {answer_too_large(int(size), limit, advice)}")

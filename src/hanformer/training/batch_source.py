"""What the trainer reads batches from: the one protocol every objective's batches follow.

Its own module (with no torch at run time) so that the trainer's state, the objectives' settings
and the trainer itself can all name it without importing one another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


class BatchSource(Protocol):
    def next_batch(self) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

"""One Tokenizer shared by many threads gives exactly the single-threaded results."""

from __future__ import annotations

import threading

from hanformer import Tokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    "Transformers encode long sentences into contextual representations of every token.",
    "short one",
    "A tokenizer splits words into pieces, and padding fills batches to one length.",
    "Another rather long sentence, so that truncation at small lengths really cuts something off.",
]
# (max_length, truncation, padding) per thread: the settings that used to leak between calls.
SETTINGS = [(8, True, "max_length"), (64, False, False), (12, True, "longest"), (None, False, "longest"),
            (5, "only_first", False), (32, True, "max_length")]


def _job(tok: Tokenizer, k: int):
    max_length, truncation, padding = SETTINGS[k % len(SETTINGS)]
    texts = TEXTS[k % len(TEXTS):] + TEXTS[:k % len(TEXTS)]
    batch = tok.encode_batch(texts, max_length=max_length, truncation=truncation, padding=padding)
    single = tok.encode(texts[0], max_length=max_length, truncation=truncation,
                        padding="max_length" if padding == "max_length" else False)
    tensors = tok(texts, max_length=max_length or 64, padding="max_length", return_tensors=None)
    return [e.ids for e in batch], single.ids, tensors["input_ids"]


def test_concurrent_calls_with_different_settings_equal_sequential(minilm_dir):
    tok = Tokenizer.from_pretrained(minilm_dir)
    n_threads, rounds = 12, 40
    expected = {k: _job(tok, k) for k in range(n_threads)}
    assert len({str(v[0]) for v in expected.values()}) > 3  # the settings really differ
    mismatches: list[int] = []
    start = threading.Barrier(n_threads)

    def worker(k: int) -> None:
        start.wait()
        for _ in range(rounds):
            try:
                if _job(tok, k) != expected[k]:
                    mismatches.append(k)
            except Exception:  # e.g. another thread's truncation setting making this call impossible
                mismatches.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mismatches == []


def test_pickled_copy_encodes_the_same(minilm_dir):
    """Spawned DataLoader workers receive the tokenizer pickled; its lock must not stop that."""
    import pickle

    tok = Tokenizer.from_pretrained(minilm_dir)
    copy = pickle.loads(pickle.dumps(tok))
    assert _job(copy, 0) == _job(tok, 0)


def test_fine_tuning_pieces_are_never_cut_by_another_threads_truncation(minilm_dir):
    """The serving app encodes task inputs (`PieceEncoder`) while other requests call the tokenizer
    with truncation: the pieces must still be whole."""
    from hanformer.tasks.encoding import PieceEncoder

    tok = Tokenizer.from_pretrained(minilm_dir)
    encoder = PieceEncoder(tok)
    texts = [t * 4 for t in TEXTS]
    expected = [p.ids for p in encoder.pieces(texts)]
    stop = threading.Event()

    def truncating() -> None:
        while not stop.is_set():
            tok.encode_batch(TEXTS, max_length=4, truncation=True, padding="max_length")

    other = threading.Thread(target=truncating)
    other.start()
    try:
        cut = sum([p.ids for p in encoder.pieces(texts)] != expected for _ in range(300))
    finally:
        stop.set()
        other.join()
    assert cut == 0

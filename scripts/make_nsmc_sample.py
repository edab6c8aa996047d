"""Regenerate the small NSMC sample shipped in `data/nsmc-sample/` (deterministic).

NSMC (Naver Sentiment Movie Corpus, Lucy Park) is CC0, so a few MB of it can live in the
repository and `make demo` works on a fresh machine with no other data.

    python scripts/make_nsmc_sample.py [--source ../shared/data/nsmc/ratings_train.txt]

The rows are shuffled with a fixed seed and cut into three disjoint parts:

* `pretrain.txt`  - unlabeled reviews for tokenizer training and pretraining, one review per
  line with a blank line after each (the one-document-per-block format of the BERT data);
* `train.tsv`     - labeled reviews for fine-tuning (`id<TAB>document<TAB>label`, as NSMC);
* `test.tsv`      - labeled held-out reviews, never seen in pretraining or fine-tuning: the
  first 2,000 of the shuffle, then 5,000 from after the other parts. It began as the 2,000
  alone; with them a one-point gap between two models was within the noise (±0.9 points for one
  model's accuracy), so 5,000 more were added and the first 2,000 kept, in place and in order.

Running it again gives byte-identical files; their sha256 sums are printed for the README.

* `reviews.txt.xz` - every review of the file except the held-out ones and the 5,000 dev ones
  below (137,995 reviews, `pretrain.txt`'s and `train.tsv`'s texts among them), xz-compressed, as
  the unlabeled text the demo pretrains on: all the in-domain text there is.

With `--study-dir DIR` it also writes, outside the repository, the two files the README's study of
the demo's settings used: `dev.tsv`, the 5,000 labeled reviews after the held-out ones (settings are
chosen on them, never on `test.tsv`), and `reviews.txt`, every review of the file except the
held-out and dev ones as unlabeled text (137,995 reviews, `pretrain.txt` and `train.tsv`'s texts
among them) for pretraining on all the in-domain text there is.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import random
from pathlib import Path

SEED = 20240521
N_PRETRAIN = 20_000
N_TRAIN = 4_000
N_TEST = 2_000
N_TEST_MORE = 5_000
N_DEV = 5_000


def read_nsmc(path: Path) -> list[tuple[str, str, str]]:
    """Rows of an NSMC file, read with quoting off (quotes are part of the text)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["id", "document", "label"]:
            raise SystemExit(f"{path}: unexpected header {header}")
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or not parts[1].strip():
                continue  # a few NSMC documents are empty
            rows.append((parts[0], parts[1].strip(), parts[2]))
    return rows


def main() -> None:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=repo.parent / "shared/data/nsmc/ratings_train.txt",
                        help="NSMC ratings_train.txt (150,000 rows)")
    parser.add_argument("--out", type=Path, default=repo / "data/nsmc-sample", help="output folder")
    parser.add_argument("--study-dir", type=Path, default=None,
                        help="also write dev.tsv and reviews.txt (all other reviews, unlabeled) there")
    args = parser.parse_args()

    rows = read_nsmc(args.source)
    random.Random(SEED).shuffle(rows)
    test = rows[:N_TEST]
    train = rows[N_TEST:N_TEST + N_TRAIN]
    used = N_TEST + N_TRAIN + N_PRETRAIN
    pretrain = rows[N_TEST + N_TRAIN:used]
    test += rows[used:used + N_TEST_MORE]
    dev_end = used + N_TEST_MORE + N_DEV
    # Every review but the held-out and dev ones, as unlabeled text (pretrain.txt's and train.tsv's among them).
    reviews = "".join(f"{doc}\n\n" for _, doc, _ in rows[N_TEST:used] + rows[dev_end:])
    if args.study_dir is not None:
        args.study_dir.mkdir(parents=True, exist_ok=True)
        (args.study_dir / "dev.tsv").write_text(
            "id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in rows[used + N_TEST_MORE:dev_end]),
            encoding="utf-8")
        (args.study_dir / "reviews.txt").write_text(reviews, encoding="utf-8")

    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "pretrain.txt": "".join(f"{doc}\n\n" for _, doc, _ in pretrain),
        "train.tsv": "id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in train),
        "test.tsv": "id\tdocument\tlabel\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in test),
    }
    for name, text in files.items():
        data = text.encode("utf-8")
        (args.out / name).write_bytes(data)
        print(f"| {name} | {len(data)} | {text.count(chr(10))} | `{hashlib.sha256(data).hexdigest()}` |")
    # xz has no timestamps: the same preset gives the same bytes on every run.
    data = lzma.compress(reviews.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME)
    (args.out / "reviews.txt.xz").write_bytes(data)
    print(f"| reviews.txt.xz | {len(data)} | {reviews.count(chr(10))} | `{hashlib.sha256(data).hexdigest()}` |")


if __name__ == "__main__":
    main()

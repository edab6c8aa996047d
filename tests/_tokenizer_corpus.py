"""A small Korean/English corpus for tokenizer tests that must not depend on ../shared/data."""

from __future__ import annotations

from pathlib import Path

SENTENCES = """\
대한민국은 동아시아의 한반도 남부에 위치한 민주 공화국이다.
수도는 서울특별시이며, 인구는 약 5천만 명이다.
나는 오늘 학교에 갔다. 친구들과 점심을 먹었다.
이 영화 정말 재미있어요! 배우들의 연기가 훌륭했습니다.
한국어 위키백과에 오신 것을 환영합니다.
세종대왕은 훈민정음을 창제하였다.
서울은 한국의 수도이고, 부산은 두 번째로 큰 도시이다.
Seoul is the capital of South Korea, and Busan is its second largest city.
The quick brown fox jumps over the lazy dog.
I really liked this movie; the actors were great.
Tokenizers split words into smaller pieces called subwords.
BERT was pretrained with masked language modeling and next sentence prediction.
"""


def write_corpus(directory: Path, repeat: int = 4) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "corpus.txt"
    path.write_text(SENTENCES * repeat, encoding="utf-8")
    return path

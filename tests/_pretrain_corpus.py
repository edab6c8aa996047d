"""A small deterministic Korean/English corpus and tokenizer for pretraining tests."""

from __future__ import annotations

import random
from pathlib import Path

KO = ("서울 부산 대한민국 역사 문화 과학 기술 학교 학생 선생님 도서관 음악 영화 사람 나라 도시 바다 "
      "산 강 마을 시장 회사 정부 대통령 선거 경제 사회 언어 문학 철학 수학 물리 화학 생물 "
      "컴퓨터 인터넷 전화 자동차 기차 비행기 공항 병원 의사 환자 음식 김치 바람 하늘").split()
SUFFIX = ["은", "는", "이", "가", "을", "를", "에서", "으로", "의", "와", ""]
VERBS = ["있다", "했다", "되었다", "만들었다", "좋아한다", "시작되었다", "발표했다", "이어졌다"]
EN = "the city has a long history of music film science and language in the old town by the sea".split()


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.2:
        words = [rng.choice(EN) for _ in range(rng.randint(4, 10))]
        return " ".join(words).capitalize() + "."
    words = [rng.choice(KO) + rng.choice(SUFFIX) for _ in range(rng.randint(3, 9))]
    return " ".join(words) + " " + rng.choice(VERBS) + "."


def write_corpus(path: Path, n_docs: int = 60, seed: int = 0) -> Path:
    """Wiki-extractor style <doc> blocks; paragraphs of 1-4 sentences."""
    rng = random.Random(seed)
    lines = []
    for d in range(n_docs):
        lines.append(f'<doc id="{d}" url="x" title="문서 {d}">')
        lines.append(f"문서 {d}")
        for _ in range(rng.randint(3, 8)):
            lines.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 4))))
        lines.append("</doc>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_tokenizer(corpus: Path, out: Path, vocab_size: int = 600) -> Path:
    from hanformer.tokenization.config import TokenizerConfig
    from hanformer.tokenization.trainer import train_tokenizer

    train_tokenizer([corpus], TokenizerConfig(vocab_size=vocab_size, min_frequency=1), out, progress=False)
    return out


def write_patterned_corpus(path: Path, n_docs: int = 300, seed: int = 0) -> Path:
    """Sentences whose masked words are predictable from context ("X 도시의 상징 색은 Y 색이다."
    with a fixed Y for each X), so a model that learns at all beats the unigram baseline fast."""
    rng = random.Random(seed)
    cities = "서울 부산 대구 인천 광주 대전 울산 수원 창원 고양 용인 성남 청주 전주 천안 안산 포항 제주 김해 평택".split()
    colors = "빨강 주황 노랑 초록 파랑 남색 보라 하양 검정 회색 분홍 갈색 금색 은색 하늘 연두 자주 청록 상아 살구".split()
    color_of = dict(zip(cities, colors, strict=True))
    lines = []
    for d in range(n_docs):
        lines += [f'<doc id="{d}" url="x" title="t{d}">', f"t{d}"]
        for _ in range(8):
            city = rng.choice(cities)
            lines.append(f"{city} 도시의 상징 색은 {color_of[city]} 색이다.")
        lines.append("</doc>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_shards(directory: Path, n_docs: int = 80) -> Path:
    """Corpus -> tokenizer -> shards (10% held out) in `directory`; returns the shard folder."""
    from hanformer.data.prepare import PrepareConfig, prepare_data

    text = write_corpus(directory / "wiki.txt", n_docs=n_docs)
    tok = make_tokenizer(text, directory / "tok")
    prepare_data([text], tok, directory / "shards", PrepareConfig(progress=False, valid_fraction=0.1))
    return directory / "shards"

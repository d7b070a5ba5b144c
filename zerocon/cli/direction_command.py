"""``zerocon direction``: build an edit direction from two words and save it."""

from __future__ import annotations

import argparse
from pathlib import Path

from zerocon.cli.errors import CliError
from zerocon.cli.files import atomic_write
from zerocon.cli.loading import load_pipeline, sentence_source


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``direction`` command.

    Args:
        subparsers: the main parser's sub-parsers.
    """
    p = subparsers.add_parser(
        "direction", help="build an edit direction from two words and save it (safetensors)"
    )
    p.add_argument("--source", required=True, help="the word to edit away from, e.g. 'red'")
    p.add_argument("--target", required=True, help="the word to edit towards, e.g. 'blue'")
    p.add_argument("--out", required=True, type=Path, help="the .safetensors file to write")
    p.add_argument("--model", default=None, help="model folder or hub id (default: embedded)")
    p.add_argument(
        "--sentences",
        default=None,
        help="templates | shapes | lm:MODEL | FILE_OR_FOLDER (default: the model's)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of language-model sentences")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build and save the direction.

    Args:
        args: parsed arguments.

    Returns:
        The exit code (0).

    Raises:
        CliError: for empty words, words the direction cannot be built for, or an unwritable
            destination.
    """
    out: Path = args.out
    if out.is_dir():
        raise CliError(f"--out {str(out)!r} is a folder; give a .safetensors file name")
    if out.exists() and not args.overwrite:
        print(f"{out} exists; skipped (use --overwrite to replace it)")
        return 0
    if not args.source.strip() or not args.target.strip():
        raise CliError("--source and --target must be non-empty words")
    pipe = load_pipeline(args.model)
    source = sentence_source(args.sentences, args.seed)
    try:
        direction = pipe.build_direction([(args.source.strip(), args.target.strip())], source)
    except ValueError as error:
        raise CliError(str(error)) from error
    try:
        atomic_write(out, lambda tmp: direction.save(tmp))
    except OSError as error:
        raise CliError(f"cannot write {str(out)!r}: {error.strerror or error}") from error
    print(f"wrote {out}: {direction!r}")
    return 0

"""The ``zerocon`` command: ``edit``, ``demo``, ``direction``, ``evaluate`` and ``serve``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from zerocon import __version__
from zerocon.cli import (
    demo_command,
    direction_command,
    edit_command,
    evaluate_command,
    serve_command,
)
from zerocon.cli.errors import CliError
from zerocon.cli.method_option import load_plugin_methods


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``zerocon: error: ...``), exit 2.

    Examples:
        >>> OneLineParser(prog="zerocon").prog
        'zerocon'
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"zerocon: error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``zerocon``.

    Returns:
        The parser, with the ``edit``, ``demo`` and ``direction`` sub-commands.

    Examples:
        >>> build_parser().parse_args(["direction", "--source", "red", "--target", "blue",
        ...                            "--out", "d.safetensors"]).source
        'red'
    """
    load_plugin_methods()
    parser = OneLineParser(
        prog="zerocon",
        description="Zero-shot, text-guided image-to-image translation (pix2pix-zeroCon).",
    )
    parser.add_argument("--version", action="version", version=f"zerocon {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    edit_command.add_parser(subparsers)
    demo_command.add_parser(subparsers)
    direction_command.add_parser(subparsers)
    evaluate_command.add_parser(subparsers)
    serve_command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zerocon`` with ``argv`` (default: ``sys.argv[1:]``).

    Bad inputs end with one line on stderr (``zerocon: error: ...``) and a non-zero exit code;
    so do system errors met mid-run (a full disk, say: exit 2). Ctrl-C (exit 130) and SIGTERM
    (exit 143) both unwind the run: claims are released and temporary files removed.

    Args:
        argv: the arguments.

    Returns:
        The exit code.

    Examples:
        >>> main(["edit", "/no/such/image.png", "--target", "a cat"])  # doctest: +SKIP
        2
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # usage errors (2) and --help (0)
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    _quiet_libraries()
    restore = _terminate_like_interrupt()
    try:
        return int(args.run(args))
    except Terminated:
        print("zerocon: terminated", file=sys.stderr)
        return 143
    except CliError as error:
        print(f"zerocon: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # a full disk, a folder that vanished, a permission taken away mid-run
        where = f" ({error.filename})" if error.filename else ""
        print(f"zerocon: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zerocon: interrupted", file=sys.stderr)
        return 130
    finally:
        restore()


class Terminated(BaseException):
    """Raised in the main thread when the process gets SIGTERM, so that it unwinds as Ctrl-C
    does: claims are released and temporary files removed; the exit code is 143 (128 + 15)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def _terminate_like_interrupt() -> Callable[[], None]:
    """Make SIGTERM raise ``Terminated`` (main thread only); returns what puts the old handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    return restore


def _quiet_libraries() -> None:
    """Keep library chatter (warnings of transformers / diffusers loaders) off the terminal."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    # Loading bars of a 5-component folder say nothing useful; zerocon's own bars stay on.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())

"""Sentences read from text files (one sentence per line)."""

from __future__ import annotations

from pathlib import Path

from zerocon.direction.sentence_text import dedupe, word_pattern


class FileSentences:
    """A [`SentenceSource`][zerocon.direction.SentenceSource] backed by text files, one sentence per line.

    Two layouts are understood:

    - a **folder** holding one ``{word}.txt`` per word (e.g. sentences written by a language
      model, as pix2pix-zero ships them): every non-blank line of that file is returned;
    - a **single file**: the lines that contain the word (whole word, case-insensitive) are
      returned.

    Blank lines are ignored, lines are stripped, and repeated lines are returned once.

    Args:
        path: the folder or the file (UTF-8 text).

    Shape:
        No tensors: ``sentences(word)`` returns a non-empty ``list[str]``, one entry per
        distinct matching line.

    Raises:
        FileNotFoundError: if ``path`` does not exist.

    Examples:
        >>> import tempfile, pathlib
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = pathlib.Path(tmp.name)
        >>> _ = (folder / "cat.txt").write_text("a cat on a sofa\\n\\na black cat\\n")
        >>> FileSentences(folder).sentences("cat")
        ['a cat on a sofa', 'a black cat']
        >>> tmp.cleanup()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"sentence file or folder {str(self.path)!r} does not exist")

    def file_for(self, word: str) -> Path:
        """The file the sentences for ``word`` are read from.

        Args:
            word: the word (non-empty).

        Returns:
            ``path / f"{word}.txt"`` in folder mode, ``path`` itself in single-file mode.

        Raises:
            ValueError: if ``word`` is empty.
        """
        word = word.strip()
        if not word:
            raise ValueError("word must be a non-empty string")
        return self.path / f"{word}.txt" if self.path.is_dir() else self.path

    def sentences(self, word: str) -> list[str]:
        """Read the sentences for ``word``.

        Args:
            word: the word or phrase.

        Returns:
            The non-blank, de-duplicated lines (filtered to those containing the word in
            single-file mode).

        Raises:
            ValueError: if ``word`` is empty, or no usable line is found.
            FileNotFoundError: in folder mode, if ``{word}.txt`` is missing.
        """
        file = self.file_for(word)
        if not file.is_file():
            raise FileNotFoundError(
                f"no sentence file for {word.strip()!r}: expected {str(file)!r}"
            )
        lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        if self.path.is_dir():
            if not lines:
                raise ValueError(f"sentence file {str(file)!r} holds no non-blank line")
            return dedupe(lines)
        pattern = word_pattern(word)
        kept = [line for line in lines if pattern.search(line)]
        if not kept:
            raise ValueError(
                f"no line of {str(file)!r} contains the word {word.strip()!r} "
                f"({len(lines)} non-blank lines searched, whole-word, case-insensitive)"
            )
        return dedupe(kept)

    def __repr__(self) -> str:
        mode = "folder" if self.path.is_dir() else "file"
        return f"FileSentences({mode}={str(self.path)!r})"

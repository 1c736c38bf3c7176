"""The command line's one convention for reading input and reporting errors.

Every ``blockgen`` subcommand reads its input and reports its errors through this module:

* **Encoding**: files and standard input are read as bytes and decoded as strict UTF-8,
  whatever the locale (a UTF-8 byte-order mark at the start is skipped). Invalid UTF-8 is an
  error naming the file (or "standard input") and the byte offset; nothing is dropped or
  replaced. Output is written as UTF-8 too (:func:`utf8_streams`).
* **Lines**: input is split on ``"\\n"`` and ``"\\r\\n"`` only. U+2028, U+2029, U+0085,
  ``\\x0b``, ``\\x0c`` and a lone ``\\r`` stay inside their line (``str.splitlines`` would
  split there). Line numbers count every line, blank ones included.
* **JSON output** (``--json``): one record per line; U+2028, U+2029 and U+0085 are escaped
  (``\\u2028``) so that no reader splits a record.
* **Errors**: every error is one line on standard error, ``blockgen COMMAND: message``,
  and exit code 2 (:class:`CLIError`); never a traceback. An unexpected exception is caught
  by the last-resort guard of :func:`blockgen.cli.main` (:func:`unexpected`) and reported the
  same way.
"""

from __future__ import annotations

import io
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, TextIO, Union

__all__ = [
    "CLIError", "InputError", "EXIT_USAGE", "at_line", "decode", "read_bytes", "read_text", "split_lines", "numbered_lines",
    "json_line", "one_line", "report", "unexpected", "utf8_streams",
]

#: Exit code of every error (usage, unreadable input, a failed run).
EXIT_USAGE = 2
#: A message that already names the command.
_PREFIXED = re.compile(r"blockgen(?: [\w.-]+)?: ")
#: Where standard input is named in messages.
STDIN_NAME = "standard input"


class CLIError(Exception):
    """An error of a command: one line on standard error and exit code ``code`` (2)."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class InputError(CLIError):
    """Input that cannot be read: a missing file, a directory, invalid UTF-8, binary data."""


def one_line(err: Union[BaseException, str], limit: int = 500) -> str:
    """The message of ``err`` on one line (blanks squeezed), at most ``limit`` characters."""
    text = " ".join(str(err).split())
    if not text and isinstance(err, BaseException):
        text = type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report(stderr: TextIO, message: Union[BaseException, str], prog: str = "blockgen", code: int = EXIT_USAGE) -> int:
    """Print ``prog: message`` as one line on ``stderr``; returns ``code``."""
    text = one_line(message)
    if _PREFIXED.match(text):  # already "blockgen: ..." or "blockgen COMMAND: ..." (argparse's messages)
        print(text, file=stderr)
    else:
        print(f"{prog}: {text}", file=stderr)
    return code


def unexpected(err: BaseException) -> str:
    """The one-line message for an exception no command expected (the last-resort guard)."""
    if isinstance(err, RecursionError):
        return "the input nests too deeply for this version of blockgen (RecursionError); please report it"
    if isinstance(err, MemoryError):
        return "out of memory"
    return f"internal error: {type(err).__name__}: {one_line(err, 300)} (please report it)"


@contextmanager
def at_line(number: Optional[int], *expected: type) -> Iterator[None]:
    """Turn an exception no command expected, raised while handling input line ``number``,
    into a :class:`CLIError` naming the line (e.g. a query nested too deeply). The
    ``expected`` exception types (the command's own answers) pass through."""
    try:
        yield
    except (CLIError, BrokenPipeError) + tuple(expected):
        raise
    except Exception as err:  # noqa: BLE001 - reported as one line, never a traceback
        where = f"line {number}: " if number is not None else ""
        raise CLIError(where + unexpected(err)) from None


# ---------------------------------------------------------------- reading


def read_bytes(file: Optional[str], stdin: TextIO) -> tuple[Union[bytes, str], str]:
    """``(data, name)`` of ``file``, or of standard input when ``file`` is ``None`` or ``-``.

    Standard input is read from its binary buffer when it has one; a text-only stream (a
    ``StringIO`` in tests) gives ``str``.
    """
    if file in (None, "-"):
        buffer = getattr(stdin, "buffer", None)
        try:
            if buffer is not None:
                return buffer.read(), STDIN_NAME
            return stdin.read(), STDIN_NAME
        except UnicodeDecodeError as err:  # a text stream decoding with the locale's codec
            raise InputError(f"{STDIN_NAME} is not UTF-8 text ({err.reason} at byte {err.start})") from None
        except OSError as err:
            raise InputError(f"cannot read {STDIN_NAME}: {err.strerror or err}") from None
    path = Path(file)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if path.is_dir():
        raise InputError(f"not a file: {path}")
    try:
        return path.read_bytes(), str(path)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def decode(data: Union[bytes, str], name: str, binary_ok: bool = True) -> str:
    """``data`` decoded as strict UTF-8 (a leading byte-order mark skipped), or :class:`InputError`.

    ``binary_ok=False`` also refuses NUL characters (binary data, not text).
    """
    if isinstance(data, str):
        text = data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:  # undecodable bytes smuggled in as surrogates (argv, a lenient stream)
            raise InputError(f"{name} is not UTF-8 text (undecodable byte at character {err.start})") from None
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{name} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not binary_ok and "\x00" in text:
        raise InputError(f"{name} is binary, not text (it holds NUL bytes)")
    return text


def read_text(file: Optional[str], stdin: TextIO, query: Optional[str] = None, binary_ok: bool = True) -> str:
    """The text of ``-q QUERY``, a FILE, or standard input (``None``/``-``), as strict UTF-8."""
    if query is not None and file not in (None, "-"):
        raise InputError("give a FILE or -q QUERY, not both")
    if query is not None:
        return decode(query, "the -q query", binary_ok)
    data, name = read_bytes(file, stdin)
    return decode(data, name, binary_ok)


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, split on ``"\\n"`` and ``"\\r\\n"`` only; no empty last line after a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def numbered_lines(text: str) -> list[tuple[int, str]]:
    """``(number, line)`` of the non-blank lines of ``text`` (numbers are 1-based and count every line)."""
    return [(i, line) for i, line in enumerate(split_lines(text), 1) if line.strip()]


# ---------------------------------------------------------------- output

#: Characters that some line readers (``str.splitlines``, JavaScript) take as line breaks:
#: escaped in JSON output so that one record is one line for every reader.
_JSON_ESCAPES = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(record: object) -> str:
    """``record`` as one line of JSON: UTF-8 text kept, but U+2028, U+2029 and U+0085 escaped."""
    import json

    text = json.dumps(record, ensure_ascii=False)
    for char, escape in _JSON_ESCAPES.items():
        if char in text:
            text = text.replace(char, escape)
    return text



def utf8_streams(stdout: TextIO, stderr: TextIO) -> None:
    """Make the process's own standard output UTF-8 (strict) and standard error UTF-8 (escaping
    what cannot be written), whatever the locale. Other streams (tests' ``StringIO``) are left alone."""
    for stream, errors in ((stdout, "strict"), (stderr, "backslashreplace")):
        if stream is not sys.stdout and stream is not sys.stderr:
            continue
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(encoding="utf-8", errors=errors)
            except (ValueError, OSError):  # pragma: no cover - a stream already written in another encoding
                pass

"""COMMAND DOCS ``arguments`` from each handler's syntax line.

Every handler's docstring starts with the command's syntax in the notation of Redis's command
pages (``SET key value [NX | XX] [EX seconds | PX milliseconds]``): ``[...]`` is optional,
``<a | b>`` a required choice, ``x [x ...]`` a repetition, uppercase words are tokens and
lowercase words are values. This module turns that line into the argument tree COMMAND DOCS
replies with (what redis-cli builds its hints from), so the syntax is written once, where the
handler is, and the two cannot drift apart.

Names follow the syntax line; the types are inferred from them (``key`` and the like are keys,
``count`` an integer, ``score`` a double, ...), which is all a client needs to show hints.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN_RE = re.compile(r"\[|\]|<|>|\||\.\.\.|[^\s\[\]<>|]+")

#: Value names that are keys (the command's key positions, in order).
_KEYS = frozenset({"key", "destination", "source", "dst", "src", "newkey"})
_NUMBERED_KEY = re.compile(r"key[0-9]+")
_INTEGERS = frozenset({
    "count", "numkeys", "numfields", "timeout", "seconds", "milliseconds", "offset", "index", "rank",
    "len", "db", "index1", "index2", "port", "num-matches", "numreplicas", "numlocal", "increment",
    "maxcount", "maxsize", "min-idle-time", "limit", "cursor", "numsub", "threshold-count", "delta",
    "value-integer", "decrement", "length", "ttl", "client-id", "priority", "idmp-duration",
    "idmp-maxsize", "entries-read", "idle", "retrycount", "time", "num",
})
_DOUBLES = frozenset({"score", "min", "max", "increment-float", "weight"})
_TIMES = frozenset({"unix-time-seconds", "unix-time-milliseconds"})

Arg = dict[bytes, Any]


class SyntaxLineError(ValueError):
    """A handler's syntax line does not parse."""


def arguments(syntax: str, name_words: int) -> list[Arg]:
    """The COMMAND DOCS ``arguments`` of ``syntax``, whose first ``name_words`` words are the
    command's name (two for a subcommand)."""
    parser = _Parser(_TOKEN_RE.findall(syntax)[name_words:])
    items = parser.sequence(closing=None)[0]
    if parser.peek() is not None:
        raise SyntaxLineError(f"unexpected {parser.peek()!r} in {syntax!r}")
    keys = 0
    for item in items:
        keys = _number_keys(item, keys)
    return items


def _is_token(word: str) -> bool:
    return not any(ch.islower() for ch in word) and word not in ("[", "]", "<", ">", "|", "...")


def _number_keys(arg: Arg, index: int) -> int:
    if arg.get(b"type") == b"key":
        arg[b"key_spec_index"] = index
        return index + 1
    for child in arg.get(b"arguments", ()):
        index = _number_keys(child, index)
    return index


class _Parser:
    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.at = 0

    def peek(self) -> str | None:
        return self.words[self.at] if self.at < len(self.words) else None

    def take(self) -> str:
        word = self.words[self.at]
        self.at += 1
        return word

    def sequence(self, closing: str | None) -> tuple[list[Arg], bool]:
        """Items up to ``closing`` (or ``|``, or the end), with ``x [x ...]`` folded into ``x``
        multiple; and whether the sequence ended with ``...`` repeating all of it (``[a b ...]``)."""
        items: list[Arg] = []
        while True:
            word = self.peek()
            if word is None or word == closing or word == "|":
                if closing is not None and word is None:
                    raise SyntaxLineError(f"missing {closing!r}")
                return items, False
            self.take()
            if word == "[" and self.words[self.at:self.at + 2] == ["...", "]"]:
                self.at += 2  # "x [...]": x repeats
                if items:
                    _flag(items[-1], b"multiple")
                continue
            if word in ("[", "<"):
                group = self.alternatives(closing="]" if word == "[" else ">")
                if word == "[" and _repeats(group, items):
                    continue
                if word == "[":
                    _flag(group, b"optional")
                items.append(group)
            elif word == "...":
                if len(items) > 1 and self.peek() == closing:
                    return items, True
                if items:
                    _flag(items[-1], b"multiple")
            else:
                items.append(_word(word))

    def alternatives(self, closing: str) -> Arg:
        """The inside of ``[...]`` or ``<...>``: one item, a block, or a one-of choice."""
        choices = [self.choice(closing)]
        while self.peek() == "|":
            self.take()
            choices.append(self.choice(closing))
        if self.peek() != closing:
            raise SyntaxLineError(f"missing {closing!r}")
        self.take()
        if len(choices) == 1:
            return choices[0]
        return {b"name": "-".join(_name(c) for c in choices).encode(), b"type": b"oneof",
                b"arguments": choices}

    def choice(self, closing: str) -> Arg:
        items, repeated = self.sequence(closing)
        arg = _collapse(items)
        if repeated:
            _flag(arg, b"multiple")
        return arg


def _word(word: str) -> Arg:
    if _is_token(word):
        return {b"name": word.lower().encode(), b"type": b"pure-token", b"token": word.encode()}
    return {b"name": word.encode(), b"type": _value_type(word)}


def _value_type(name: str) -> bytes:
    if name in _KEYS or _NUMBERED_KEY.fullmatch(name):
        return b"key"
    if name in _INTEGERS:
        return b"integer"
    if name in _DOUBLES:
        return b"double"
    if name in _TIMES:
        return b"unix-time"
    if name == "pattern":
        return b"pattern"
    return b"string"


def _collapse(items: list[Arg]) -> Arg:
    """One alternative: ``TOKEN`` (pure token), ``TOKEN value`` (a value with a token), or a
    block (``TOKEN a b``, ``a b``); a single item stands for itself."""
    if not items:
        raise SyntaxLineError("empty group")
    if len(items) == 1:
        return items[0]
    first = items[0]
    if first[b"type"] == b"pure-token" and b"flags" not in first:
        rest = items[1:]
        if len(rest) == 1 and rest[0][b"type"] != b"pure-token" and b"token" not in rest[0]:
            return {**rest[0], b"token": first[b"token"]}  # TOKEN value, TOKEN <a | b>, TOKEN [a b]
        return {b"name": first[b"name"], b"type": b"block", b"token": first[b"token"], b"arguments": rest}
    return {b"name": "_".join(_name(i) for i in items).encode(), b"type": b"block", b"arguments": items}


def _repeats(group: Arg, before: list[Arg]) -> bool:
    """``[x ...]`` right after ``x`` (or ``[a b ...]`` after ``a b``): the group repeats what
    precedes it, which becomes multiple."""
    if not before or b"multiple" not in group.get(b"flags", ()):
        return False
    repeated = _strip(group)
    if repeated == _strip(before[-1]):
        _flag(before[-1], b"multiple")
        return True
    token = repeated.get(b"token")
    if token is not None and len(before) >= 2 and before[-2] == {b"name": token.lower(), b"type": b"pure-token",
                                                                  b"token": token}:
        value = {k: v for k, v in repeated.items() if k != b"token"}
        if _strip(before[-1]) == value:  # "TOKEN x [TOKEN x ...]": the token repeats with each value
            del before[-2:]
            before.append({**repeated, b"flags": [b"multiple", b"multiple_token"]})
            return True
    inner = repeated.get(b"arguments")
    if repeated.get(b"type") == b"block" and b"token" not in repeated and inner and len(before) >= len(inner):
        tail = before[-len(inner):]
        if [_strip(a) for a in tail] == inner:
            del before[-len(inner):]
            before.append({b"name": repeated[b"name"], b"type": b"block", b"flags": [b"multiple"],
                           b"arguments": tail})
            return True
    return False


def _strip(arg: Arg) -> Arg:
    return {k: v for k, v in arg.items() if k != b"flags"}


def _flag(arg: Arg, flag: bytes) -> None:
    """Add ``flag``, keeping Redis's order (optional before multiple)."""
    flags = arg.setdefault(b"flags", [])
    if flag not in flags:
        flags.append(flag)
        flags.sort(key=_FLAG_ORDER.index)


_FLAG_ORDER = [b"optional", b"multiple", b"multiple_token"]


def _name(arg: Arg) -> str:
    return arg[b"name"].decode()

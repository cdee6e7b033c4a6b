"""Redis's glob-style matching (``stringmatchlen``): KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET.

Supports ``*``, ``?``, ``[abc]``, ``[^abc]``, ``[a-z]`` and ``\\x`` escapes, byte-wise. Redis's
recursive matcher can take exponential time on patterns like ``a*a*a*...b``; here the pattern is
compiled once into tokens and matched by dynamic programming over (token, position) states, so the
cost is O(len(pattern) * len(subject)) whatever the pattern.
"""

from __future__ import annotations

from functools import lru_cache

_STAR = 0
_ANY = 1
_LITERAL = 2
_CLASS = 3

Token = tuple[int, object]


@lru_cache(maxsize=4096)
def _compile(pattern: bytes, nocase: bool) -> tuple[Token, ...]:
    """The pattern as tokens, runs of ``*`` merged; with ``nocase`` letters are lower-cased here, once,
    so matching compares bytes only. Cached: the same patterns (PSUBSCRIBE, SCAN MATCH) recur."""
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            if not tokens or tokens[-1][0] != _STAR:
                tokens.append((_STAR, None))
        elif c == 0x3F:  # '?'
            tokens.append((_ANY, None))
        elif c == 0x5B:  # '['
            i += 1
            negate = i < n and pattern[i] == 0x5E  # '^'
            if negate:
                i += 1
            members: set[int] = set()
            while i < n and pattern[i] != 0x5D:  # ']'
                if pattern[i] == 0x5C and i + 1 < n:  # escaped member
                    i += 1
                    members.add(pattern[i])
                elif i + 2 < n and pattern[i + 1] == 0x2D and pattern[i + 2] != 0x5D:  # range a-z
                    lo, hi = pattern[i], pattern[i + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    members.update(range(lo, hi + 1))
                    i += 2
                else:
                    members.add(pattern[i])
                i += 1
            if nocase:
                members |= {m + 0x20 for m in members if 0x41 <= m <= 0x5A}
            tokens.append((_CLASS, (negate, frozenset(members))))
            # An unterminated class ends the pattern, as in Redis.
        elif c == 0x5C and i + 1 < n:  # '\\x' escape
            i += 1
            tokens.append((_LITERAL, _folded(pattern[i], nocase)))
        else:
            tokens.append((_LITERAL, _folded(c, nocase)))
        i += 1
    return tuple(tokens)


def _folded(byte: int, nocase: bool) -> int:
    """``byte`` lower-cased when matching ignores case (ASCII only, as Redis's ``tolower``)."""
    return byte + 0x20 if nocase and 0x41 <= byte <= 0x5A else byte


def glob_match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """Whether ``subject`` matches the glob ``pattern``."""
    if pattern == b"*":
        return True
    tokens = _compile(pattern, nocase)
    if nocase:
        subject = subject.lower()  # bytes.lower() folds ASCII only, like the tokens
    # states: set of token indexes reachable after consuming the subject so far
    states = _closure(tokens, {0})
    for ch in subject:
        nxt: set[int] = set()
        for t in states:
            if t == len(tokens):
                continue
            kind, arg = tokens[t]
            if kind == _STAR:
                nxt.add(t)
            elif kind == _ANY:
                nxt.add(t + 1)
            elif kind == _LITERAL:
                if arg == ch:
                    nxt.add(t + 1)
            else:
                negate, members = arg  # type: ignore[misc]
                if (ch in members) != negate:
                    nxt.add(t + 1)
        if not nxt:
            return False
        states = _closure(tokens, nxt)
    return len(tokens) in states


def _closure(tokens: tuple[Token, ...], states: set[int]) -> set[int]:
    """A ``*`` may match nothing: being before it also means being after it."""
    result = set(states)
    stack = list(states)
    while stack:
        t = stack.pop()
        if t < len(tokens) and tokens[t][0] == _STAR and t + 1 not in result:
            result.add(t + 1)
            stack.append(t + 1)
    return result

"""LZF, as the liblzf 3.6 bundled with Redis compresses RDB strings (FUNCTION DUMP payloads).

Compression follows ``lzf_c.c`` with Redis's settings (``HLOG`` 16, ``VERY_FAST``), so payloads
are byte-identical to redis-server's; a table slot never written is empty (``INIT_HTAB`` leaves it
undefined in C, where the bounds checks make such garbage harmless).
"""

from __future__ import annotations

HLOG = 16
HSIZE = 1 << HLOG
MAX_LIT = 1 << 5
MAX_OFF = 1 << 13
MAX_REF = (1 << 8) + (1 << 3)


def _index(h: int) -> int:
    return ((h >> (24 - HLOG)) - h * 5) & (HSIZE - 1)


def compress(data: bytes, out_len: int) -> bytes | None:
    """``data`` compressed into at most ``out_len`` bytes, or ``None`` if it does not fit."""
    in_len = len(data)
    if not in_len or not out_len:
        return None
    table: dict[int, int] = {}
    out = bytearray(b"\0")  # the first literal run's length byte
    lit = 0
    ip = 0
    hval = (data[0] << 8) | data[1] if in_len > 1 else data[0] << 8
    while ip < in_len - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
        slot = _index(hval)
        ref = table.get(slot, 0)
        table[slot] = ip
        off = ip - ref - 1
        if 0 <= off < MAX_OFF and ref > 0 and data[ref + 2] == data[ip + 2] and data[ref:ref + 2] == data[ip:ip + 2]:
            length = 2
            maxlen = min(in_len - ip - length, MAX_REF)
            if len(out) + 3 + 1 >= out_len and len(out) - (0 if lit else 1) + 3 + 1 >= out_len:
                return None
            out[-lit - 1] = lit - 1 & 0xFF
            if not lit:
                out.pop()
            while True:
                length += 1
                if not (length < maxlen and data[ref + length] == data[ip + length]):
                    break
            length -= 2
            ip += 1
            if length < 7:
                out.append((off >> 8) + (length << 5))
            else:
                out.append((off >> 8) + (7 << 5))
                out.append(length - 7)
            out.append(off & 0xFF)
            lit = 0
            out.append(0)
            ip += length + 1
            if ip >= in_len - 2:
                break
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
            table[_index(hval)] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFF
            table[_index(hval)] = ip
            ip += 1
        else:
            if len(out) >= out_len:
                return None
            lit += 1
            out.append(data[ip])
            ip += 1
            if lit == MAX_LIT:
                out[-lit - 1] = lit - 1
                lit = 0
                out.append(0)
    if len(out) + 3 > out_len:
        return None
    while ip < in_len:
        lit += 1
        out.append(data[ip])
        ip += 1
        if lit == MAX_LIT:
            out[-lit - 1] = lit - 1
            lit = 0
            out.append(0)
    out[-lit - 1] = lit - 1 & 0xFF
    if not lit:
        out.pop()
    return bytes(out)


def decompress(data: bytes, out_len: int) -> bytes:
    """Inverse of :func:`compress`; raises ``ValueError`` on corrupt input."""
    out = bytearray()
    ip = 0
    while ip < len(data):
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:
            run = ctrl + 1
            if ip + run > len(data):
                raise ValueError("corrupt LZF data")
            out += data[ip:ip + run]
            ip += run
            continue
        length = ctrl >> 5
        if length == 7:
            length += data[ip]
            ip += 1
        ref = len(out) - ((ctrl & 0x1F) << 8) - data[ip] - 1
        ip += 1
        if ref < 0:
            raise ValueError("corrupt LZF data")
        for i in range(length + 2):
            out.append(out[ref + i])
    if len(out) != out_len:
        raise ValueError("corrupt LZF data")
    return bytes(out)

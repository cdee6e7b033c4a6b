"""Lua scripting: EVAL scripts and FUNCTION libraries, run in a sandboxed Lua 5.1 (lupa).

Modules, one job each:

- :mod:`.runtime`: the :class:`~.runtime.LuaEngine`, one Lua runtime per broker, the Python half
  of the ``redis`` library (``redis.call`` runs commands through ``Broker.call`` after Redis's
  in-script checks), script runs and their errors;
- ``sandbox.lua``: the environment Redis gives scripts (read-only globals and libraries, the
  error handler, the ``redis`` table, the count hook, library loading, and the encoding of the
  tables scripts return straight to RESP);
- :mod:`.conversions`: reply ⇄ Lua value conversions in RESP2 and RESP3;
- :mod:`.libraries`: ``cjson``, ``cmsgpack``, ``bit``, ``struct``;
- :mod:`.functions`: FUNCTION LOAD parsing, the library registry, DUMP/RESTORE payloads;
- :mod:`.busy`: answering other clients while a script runs too long (BUSY, SCRIPT KILL,
  SHUTDOWN NOSAVE).

Runaway scripts. Lua runs on the event-loop thread, so nothing else runs while a script does.
Rather than a watchdog thread (which could not safely touch broker state) the sandbox installs a
Lua count hook that calls back into Python every 100 000 instructions. Past
``busy-reply-threshold`` the hook polls the listening and client sockets itself (non-blocking
``selectors``) and answers them in a restricted mode: ``allow_busy`` commands run, all others get
BUSY. SCRIPT KILL / FUNCTION KILL mark the run killed and the hook raises the kill error in Lua;
a script that already wrote is UNKILLABLE. The runtime's allocator is capped at
:data:`.runtime.MAX_MEMORY`; a script exceeding it fails with an error and the memory is collected.

Python objects reachable from Lua (``redis.call``, the library functions, ``cjson.null``) are
opaque: the runtime's attribute filter refuses every attribute, so a script cannot walk from
``redis.call.__class__`` into Python.
"""

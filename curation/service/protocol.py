"""The wire between a workspace client and its service: length-prefixed frames on a Unix socket.

A frame is a 16-byte header (two big-endian uint64: the pickled message's length, the Arrow payload's length), the
message (a dict, pickled), then an optional Arrow IPC stream (a table registered by the client, or a query's result
as Arrow). Pickle, because DuckDB hands back datetimes with zones, Decimals, UUIDs, dicts for MAPs, timedeltas:
every value arrives as the type DuckDB gave the service, which JSON or Arrow-to-Python conversion would change. Only
processes of the same user reach the socket (0600 in a 0700 folder, ``paths.py``), who could run any code anyway.

Exceptions travel pickled too (their class is importable on both sides: DuckDB's, ours, builtins), so callers
catch ``duckdb.InterruptException`` or ``UserError`` as if the statement had run in their process.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

PROTOCOL = 1  # bump when a message changes shape; a client refuses a service speaking another
_HEADER = struct.Struct("!QQ")


class Closed(ConnectionError):
    """The other end closed the socket (or died)."""


def arrow_payload(table: pa.Table) -> Any:
    """``table`` as one Arrow IPC stream buffer."""
    import pyarrow as pa  # only processes that move Arrow tables pay for pyarrow

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def send(sock: socket.socket, msg: dict[str, Any], table: pa.Table | None = None) -> None:
    """Write one frame: ``msg`` and, if given, ``table`` as Arrow."""
    body = pickle.dumps(msg, protocol=5)
    payload = arrow_payload(table) if table is not None else None
    sock.sendall(_HEADER.pack(len(body), payload.size if payload is not None else 0) + body)
    if payload is not None:
        sock.sendall(memoryview(payload))


def _read_exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise Closed("connection closed")
        got += k
    return buf


def recv(sock: socket.socket) -> dict[str, Any]:
    """Read one frame; its Arrow payload, if any, is the message's ``"table"``. ``Closed`` at end of stream."""
    n_body, n_arrow = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    msg: dict[str, Any] = pickle.loads(_read_exactly(sock, n_body))
    if n_arrow:
        import pyarrow as pa

        msg["table"] = pa.ipc.open_stream(pa.py_buffer(_read_exactly(sock, n_arrow))).read_all()
    return msg


def error_reply(exc: BaseException) -> dict[str, Any]:
    """A reply carrying ``exc``; one that cannot be pickled travels as a RuntimeError naming its type."""
    try:
        pickle.loads(pickle.dumps(exc, protocol=5))  # an exception whose __init__ wants other arguments fails here
        return {"error": exc}
    except Exception:
        return {"error": RuntimeError(f"{type(exc).__name__}: {exc}")}

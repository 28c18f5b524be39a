"""A call's bytes: its input, its bounded output streams, and the variables given to it.

One mechanism for every byte stream between a Spirit and its caller. ``host_input_len``
and ``host_input_read`` read :attr:`RunIO.input`; ``host_output_write`` appends to the
``"output"`` stream; WASI's ``fd_read`` on stdin reads the same input (sequentially,
through :meth:`RunIO.take`), and its ``fd_write`` on fds 1 and 2 appends to ``"stdout"``
and ``"stderr"`` through the same :meth:`RunIO.write`.

Bounds: the input is at most ``Limits.max_input_bytes`` (checked when it is given), and
everything written to all streams during one call is at most ``Limits.max_output_bytes``:
a write that would pass it writes nothing and returns False (the host function then
returns QUOTA_EXCEEDED, WASI ``EFBIG``), so the guest can tell and a runaway cannot grow
the host's memory.

A stream may have a *sink*, a callable the bytes are handed to as they are written (the
CLI writes them straight to its stdout, so ``vudo run`` streams and composes in pipes).
A stream with a sink is not buffered: :meth:`RunIO.output` of it is empty. Sinks run on
the guest's thread, inside the host call: they must be quick, and one that raises turns
that write into INTERNAL_ERROR for the guest, never a crash of the host.

Counts (bytes read of the input, bytes written per stream) add up over the sandbox's
life, like the rest of the receipt; the buffered output belongs to the current call and
is cleared when the next call starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

#: The stream ``host_output_write`` appends to.
OUTPUT = "output"
#: A write at least this big is kept as its own chunk (not copied again).
_BIG_WRITE = 64 * 1024

Sink = Callable[[bytes], None]


class RunIO:
    """The input, output streams and byte counts of one sandbox (see the module doc)."""

    __slots__ = (
        "_buffers",
        "_tails",
        "counts",
        "cursor",
        "input",
        "max_output",
        "sinks",
        "written",
    )

    def __init__(
        self,
        *,
        input: bytes = b"",
        max_output: int,
        sinks: Mapping[str, Sink] | None = None,
    ) -> None:
        self.input = input
        self.cursor = 0
        self.max_output = max_output
        self.sinks: dict[str, Sink] = dict(sinks) if sinks else {}
        self._buffers: dict[str, list[bytes | bytearray]] = {}
        #: each buffered stream's last chunk while it is a bytearray small writes extend
        self._tails: dict[str, bytearray] = {}
        #: bytes written (all streams) during the current call, against ``max_output``
        self.written = 0
        #: ``{"input": read, "<stream>": written}``, over the sandbox's life
        self.counts: dict[str, int] = {}

    def start_call(self, input: bytes | None) -> None:
        """A new call: fresh output buffers and write budget; ``input`` replaces the
        input (None keeps it) and the sequential read position goes back to 0."""
        if input is not None:
            self.input = input
        self.cursor = 0
        if self.written or self._buffers:
            self._buffers = {}
            self._tails = {}
            self.written = 0

    # -- input ---------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """``input[offset:offset+length]`` (shorter at the end; empty past it), counted."""
        data = self.input[offset : offset + length]
        if data:
            self.counts["input"] = self.counts.get("input", 0) + len(data)
        return data

    def take(self, length: int) -> bytes:
        """The next ``length`` input bytes from the sequential position (WASI stdin)."""
        data = self.read(self.cursor, length)
        self.cursor += len(data)
        return data

    # -- output --------------------------------------------------------------------

    def room(self) -> int:
        """How many more bytes this call may write (all streams together)."""
        return self.max_output - self.written

    def write(self, stream: str, data: bytes | memoryview) -> bool:
        """Append ``data`` to ``stream`` (or hand it to the stream's sink).

        False, with nothing written, when it would take this call past ``max_output``.
        A sink's exception propagates (the host function turns it into INTERNAL_ERROR).
        """
        size = len(data)
        written = self.written + size
        if written > self.max_output:
            return False
        self.written = written
        counts = self.counts
        # Small writes gather in the stream's open bytearray (a chunk each would cost ~50
        # bytes of object per written byte to a guest writing a byte at a time): the
        # common case, one lookup and one append (a stream with a tail has a count).
        tail = self._tails.get(stream)
        if tail is not None and size < _BIG_WRITE:
            tail += data
            counts[stream] += size
            return True
        counts[stream] = counts.get(stream, 0) + size
        sink = self.sinks.get(stream)
        if sink is not None:
            sink(bytes(data))
            return True
        # Chunks, joined once when read: one big write is never copied again.
        chunks = self._buffers.get(stream)
        if chunks is None:
            chunks = self._buffers[stream] = []
        if size >= _BIG_WRITE:
            chunks.append(bytes(data))
            self._tails.pop(stream, None)
        else:
            tail = self._tails[stream] = bytearray(data)
            chunks.append(tail)
        return True

    def output(self, stream: str = OUTPUT) -> bytes:
        """The bytes written to ``stream`` during the current (or last) call."""
        chunks = self._buffers.get(stream)
        if not chunks:
            return b""
        if len(chunks) > 1 or isinstance(chunks[0], bytearray):
            chunks[:] = [b"".join(chunks)]
            self._tails.pop(stream, None)
        return bytes(chunks[0])

"""Plugin I/O on real wasmtime: a call's input and output bytes, its environment and its
notifications (host_input_len/read, host_output_write, host_env_get, host_notify)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from engine_helpers import config

from vudo.capabilities import Capability as C
from vudo.engine import Engine, Notification, OutputWritten, Sandbox, SandboxConfig
from vudo.engine.abi import ABI
from vudo.engine.abi import ErrorCode as E
from vudo.engine.config import Limits
from vudo.errors import ResourceLimitExceeded, UsageError

Make = Callable[..., Sandbox]

IO_IMPORTS = (
    "host_input_len",
    "host_input_read",
    "host_output_write",
    "host_env_get",
    "host_notify",
)


def _forwarders() -> str:
    """Each plugin I/O import re-exported as ``f_<name>`` with the same signature."""
    imports, funcs = [], []
    for name in IO_IMPORTS:
        row = ABI[name]
        p, r = " ".join(row.params), " ".join(row.results)
        gets = " ".join(f"(local.get {i})" for i in range(len(row.params)))
        imports.append(f'(import "vudo" "{name}" (func ${name} (param {p}) (result {r})))')
        funcs.append(f'(func (export "f_{name}") (param {p}) (result {r}) (call ${name} {gets}))')
    return "(module " + " ".join(imports) + ' (memory (export "memory") 1) ' + " ".join(funcs) + ")"


IO = _forwarders()

# Upper-cases its whole input in place and writes it back with one call; returns the
# result of host_output_write.
UPPER = r"""(module
 (import "vudo" "host_input_len" (func $len (result i64)))
 (import "vudo" "host_input_read" (func $read (param i32 i32 i64) (result i32)))
 (import "vudo" "host_output_write" (func $write (param i32 i32) (result i32)))
 (memory (export "memory") 2)
 (func (export "upper") (result i32) (local $n i32) (local $i i32) (local $c i32)
   (local.set $n (i32.wrap_i64 (call $len)))
   (drop (call $read (i32.const 0) (local.get $n) (i64.const 0)))
   (block $done (loop $l
     (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
     (local.set $c (i32.load8_u (local.get $i)))
     (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))
       (then (i32.store8 (local.get $i) (i32.sub (local.get $c) (i32.const 32)))))
     (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
   (call $write (i32.const 0) (local.get $n))))"""


def call(sb: Sandbox, name: str, *args: int) -> int:
    (result,) = sb.call(f"f_{name}", list(args))
    return int(result)


# -- input -----------------------------------------------------------------------------


def test_input_len_and_read_with_offsets(make: Make) -> None:
    sb = make(IO, config(input=b"hello, spirit"))
    assert call(sb, "host_input_len") == 13
    assert call(sb, "host_input_read", 100, 5, 7) == 5
    assert sb.read_memory(100, 5) == b"spiri"
    assert call(sb, "host_input_read", 200, 64, 10) == 3  # short at the end
    assert sb.read_memory(200, 3) == b"rit"
    assert call(sb, "host_input_read", 300, 8, 13) == 0  # at the end: nothing
    assert call(sb, "host_input_read", 300, 8, 2**40) == 0  # far past it: nothing
    assert call(sb, "host_input_read", 300, 8, -1) == E.INVALID_PARAMETER
    assert call(sb, "host_input_read", 65530, 8, 0) == E.INVALID_MEMORY  # runs off memory
    assert call(sb, "host_input_read", -1, 8, 0) == E.INVALID_MEMORY
    receipt = sb.receipt()
    assert receipt.io == {"input": 8}
    assert receipt.host_calls == {"io": {"allowed": 8, "denied": 0}}
    assert sb.state == "ready"


def test_each_call_gets_its_own_input_and_output(make: Make) -> None:
    sb = make(UPPER, config(input=b"default"))
    assert sb.call("upper") == [0]
    assert sb.output() == b"DEFAULT"
    assert sb.call("upper", input=b"abc xyz") == [0]
    assert sb.output() == b"ABC XYZ"  # the first call's output is gone
    assert sb.call("upper", input=bytearray(b"q")) == [0]
    assert sb.output() == b"Q"
    assert sb.receipt().io == {"input": 15, "output": 15}


def test_input_over_the_limit_is_refused_before_running(make: Make, engine: Engine) -> None:
    module = engine.load(UPPER)
    with pytest.raises(ResourceLimitExceeded, match="input of 9 bytes is over the 8-byte"):
        Sandbox(engine, module, config(input=b"123456789", limits=Limits(max_input_bytes=8)))
    sb = make(UPPER, config(limits=Limits(max_input_bytes=8)))
    with pytest.raises(ResourceLimitExceeded, match="input limit") as info:
        sb.call("upper", input=b"x" * 9)
    assert info.value.exit_code == 13
    assert sb.state == "ready"  # nothing ran
    assert sb.call("upper", input=b"x" * 8) == [0] and sb.output() == b"X" * 8
    with pytest.raises(UsageError, match="must be bytes"):
        sb.call("upper", input="text")  # type: ignore[arg-type]


# -- output ----------------------------------------------------------------------------


def test_output_write_bad_memory_and_events(make: Make) -> None:
    sb = make(IO, config())
    events: list[object] = []
    sb.subscribe(events.append)
    sb.write_memory(0, b"chunk one|chunk two")
    assert call(sb, "host_output_write", 0, 9) == 0
    assert call(sb, "host_output_write", 9, 10) == 0
    assert call(sb, "host_output_write", 65530, 10) == E.INVALID_MEMORY
    assert call(sb, "host_output_write", -1, 1) == E.INVALID_MEMORY
    # one call per sb.call: the output of the last call only
    assert sb.output() == b""
    written = [e for e in events if isinstance(e, OutputWritten)]
    assert [(e.stream, e.data) for e in written] == [
        ("output", b"chunk one"),
        ("output", b"|chunk two"),
    ]
    assert sb.receipt().io == {"output": 19}
    assert sb.receipt().bytes_out == 19


def test_output_past_the_limit_is_quota_exceeded_and_the_guest_goes_on(make: Make) -> None:
    sb = make(UPPER, config(limits=Limits(max_output_bytes=4)))
    assert sb.call("upper", input=b"abcd") == [0]
    assert sb.output() == b"ABCD"
    assert sb.call("upper", input=b"abcde") == [E.QUOTA_EXCEEDED]
    assert sb.output() == b""  # nothing of the refused write
    assert sb.host_calls()[-1].reason == "over the 4-byte output limit"
    assert sb.state == "ready"
    assert sb.call("upper", input=b"ok") == [0] and sb.output() == b"OK"


def test_output_limit_counts_every_write_of_a_call(make: Make) -> None:
    sb = make(IO, config(limits=Limits(max_output_bytes=10)))
    sb.write_memory(0, b"0123456789")
    # one wasm call writing 6 then 6 bytes: the second is refused
    wat_sb = make(
        """(module (import "vudo" "host_output_write" (func $w (param i32 i32) (result i32)))
        (memory (export "memory") 1) (data (i32.const 0) "abcdef")
        (func (export "twice") (result i32)
          (drop (call $w (i32.const 0) (i32.const 6))) (call $w (i32.const 0) (i32.const 6))))""",
        config(limits=Limits(max_output_bytes=10)),
    )
    assert wat_sb.call("twice") == [E.QUOTA_EXCEEDED]
    assert wat_sb.output() == b"abcdef"
    assert wat_sb.call("twice") == [E.QUOTA_EXCEEDED]  # a new call has a new budget
    assert call(sb, "host_output_write", 0, 10) == 0


def test_sinks_receive_output_as_written(engine: Engine) -> None:
    got: list[bytes] = []
    module = engine.load(UPPER)
    with Sandbox(engine, module, config(sinks={"output": got.append})) as sb:
        sb.instantiate()
        assert sb.call("upper", input=b"stream me") == [0]
    assert got == [b"STREAM ME"]
    assert sb.output() == b""  # streamed, not kept


def test_a_sink_that_raises_is_internal_error_not_a_crash(engine: Engine) -> None:
    def broken(data: bytes) -> None:
        raise BrokenPipeError("stdout closed")

    module = engine.load(UPPER)
    with Sandbox(engine, module, config(sinks={"output": broken})) as sb:
        sb.instantiate()
        assert sb.call("upper", input=b"x") == [E.INTERNAL_ERROR]
        assert "stdout closed" in sb.host_calls()[-1].reason
        assert sb.state == "ready"


# -- environment -----------------------------------------------------------------------


def test_env_get_allowed_denied_and_snprintf_style(make: Make) -> None:
    sb = make(IO, config(C.SENSOR_ENVIRONMENT, env={"LANG": "fr_FR.UTF-8", "EMPTY": ""}))
    sb.write_memory(0, b"LANGEMPTYNOPE\xff")
    assert call(sb, "host_env_get", 0, 4, 100, 64) == 11
    assert sb.read_memory(100, 11) == b"fr_FR.UTF-8"
    assert call(sb, "host_env_get", 0, 4, 200, 2) == 11  # full length, 2 bytes copied
    assert sb.read_memory(200, 3) == b"fr\0"
    assert call(sb, "host_env_get", 4, 5, 300, 8) == 0
    assert call(sb, "host_env_get", 9, 4, 300, 8) == E.NOT_FOUND
    assert call(sb, "host_env_get", 13, 1, 300, 8) == E.INVALID_PARAMETER  # not UTF-8
    assert call(sb, "host_env_get", 65535, 4, 300, 8) == E.INVALID_MEMORY
    assert call(sb, "host_env_get", 0, 4, 65535, 8) == E.INVALID_MEMORY
    denied = make(IO, config(env={"LANG": "fr"}))
    denied.write_memory(0, b"LANG")
    assert call(denied, "host_env_get", 0, 4, 100, 8) == E.CAPABILITY_DENIED
    assert denied.read_memory(100, 2) == b"\0\0"
    assert denied.receipt().host_calls == {"sensor_environment": {"allowed": 0, "denied": 1}}


def test_env_never_reads_the_host_environment(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VUDO_TEST_SECRET", "s3cret")
    sb = make(IO, config(C.SENSOR_ENVIRONMENT))
    sb.write_memory(0, b"VUDO_TEST_SECRET")
    assert call(sb, "host_env_get", 0, 16, 100, 64) == E.NOT_FOUND


def test_env_names_and_values_are_checked() -> None:
    for env in ({"A=B": "x"}, {"": "x"}, {"A": "nul\0"}, {"A\0": "x"}, {"A": 1}):
        with pytest.raises(ValueError, match="environment variable"):
            SandboxConfig(env=env)  # type: ignore[arg-type]
    source = {"K": "v"}
    cfg = SandboxConfig(env=source)
    source["K"] = "changed"  # the config keeps its own copy, read-only
    assert cfg.env == {"K": "v"}
    with pytest.raises(TypeError):
        cfg.env["K"] = "x"  # type: ignore[index]


def test_env_name_over_the_key_limit_stops_the_run(make: Make) -> None:
    sb = make(IO, config(C.SENSOR_ENVIRONMENT, limits=Limits(max_storage_key=8)))
    with pytest.raises(ResourceLimitExceeded, match="environment variable name of 9 bytes"):
        call(sb, "host_env_get", 0, 9, 100, 8)


# -- notify ----------------------------------------------------------------------------


def test_notify_event_stderr_line_and_denial(engine: Engine) -> None:
    module = engine.load(IO)
    stderr = io.StringIO()
    with Sandbox(
        engine, module, config(C.ACTUATOR_NOTIFY, log_to_stderr=True), stderr=stderr
    ) as sb:
        sb.instantiate()
        events: list[object] = []
        sb.subscribe(events.append)
        sb.write_memory(0, b"done\n\x1b[2Jerror: fake")
        assert call(sb, "host_notify", 3, 0, 4) == 0
        assert call(sb, "host_notify", 2, 0, 20) == 0
        assert call(sb, "host_notify", 5, 0, 4) == E.INVALID_PARAMETER
        assert call(sb, "host_notify", 2, 65534, 4) == E.INVALID_MEMORY
        notes = [e for e in events if isinstance(e, Notification)]
        assert [(n.level, n.message) for n in notes] == [
            (3, "done"),
            (2, "done\n\x1b[2Jerror: fake"),
        ]
        # one escaped line each: the guest cannot clear the screen or fake vudo's lines
        assert stderr.getvalue().splitlines() == [
            "[notify warn] done",
            "[notify info] done\\n\\x1b[2Jerror: fake",
        ]
    quiet = Sandbox(engine, module, config())
    with quiet:
        quiet.instantiate()
        assert call(quiet, "host_notify", 2, 0, 4) == E.CAPABILITY_DENIED


def test_notify_over_its_limit_stops_the_run(make: Make) -> None:
    sb = make(IO, config(C.ACTUATOR_NOTIFY, limits=Limits(max_notify_bytes=16)))
    with pytest.raises(ResourceLimitExceeded, match="notification of 17 bytes"):
        call(sb, "host_notify", 2, 0, 17)
    assert sb.state == "failed"


def test_io_calls_are_priced_per_call_and_byte(make: Make) -> None:
    sb = make(UPPER, config(host_call_fuel=1_000, host_byte_fuel=10))
    sb.call("upper", input=b"x" * 100)
    small = sb.fuel_used
    sb2 = make(UPPER, config(host_call_fuel=1_000, host_byte_fuel=10))
    sb2.call("upper", input=b"x" * 200)
    # 100 more bytes read and written, 10 fuel each, plus the loop's own instructions
    assert sb2.fuel_used - small >= 2 * 100 * 10


def test_run_io_keeps_the_order_of_small_and_big_writes() -> None:
    from vudo.engine.runio import RunIO

    run = RunIO(max_output=1 << 20)
    pieces = [b"a" * 10, b"b" * (70 * 1024), b"c", b"d" * 5, b"e" * (64 * 1024)]
    for piece in pieces:
        assert run.write("output", piece)
    assert run.write("stderr", b"elsewhere")
    assert run.output() == b"".join(pieces)
    assert run.output() == b"".join(pieces)  # reading twice changes nothing
    assert run.output("stderr") == b"elsewhere" and run.output("stdout") == b""
    assert not run.write("output", b"x" * (1 << 20))  # past the call's budget: nothing
    assert run.room() == (1 << 20) - sum(map(len, pieces)) - 9
    run.start_call(b"new input")
    assert run.output() == b"" and run.room() == 1 << 20
    assert run.take(4) == b"new " and run.take(100) == b"input" and run.take(1) == b""
    assert run.counts == {"output": sum(map(len, pieces)), "stderr": 9, "input": 9}

"""Host functions an application defines in Python (vudo.engine.custom), on real wasmtime:
granted and denied like the built-in ones, priced, logged, counted; a function that raises
is INTERNAL_ERROR for the guest and the host goes on; bad definitions are refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import config, grant

from vudo.capabilities import Capability as C
from vudo.capabilities import CustomCapability, parse_any_capability
from vudo.engine import Engine, HostCall, Sandbox
from vudo.engine.abi import ErrorCode as E
from vudo.engine.abi import HostCallError
from vudo.engine.custom import HostContext, HostFunctions
from vudo.engine.grants import Grant, GrantChecker, parse_grant_spec
from vudo.errors import InvalidInputError, ModuleError, UsageError

LOOKUP = "x:myapp.lookup"

WAT = r"""(module
 (import "myapp" "lookup" (func $lookup (param i32 i32 i32 i32) (result i32)))
 (import "myapp" "boom" (func $boom (result i32)))
 (import "myapp" "wide" (func $wide (param i64 f32 f64) (result i64)))
 (import "myapp" "bad_result" (func $bad (result i32)))
 (import "vudo" "host_output_write" (func $out (param i32 i32) (result i32)))
 (memory (export "memory") 1)
 (data (i32.const 0) "colour")
 (func (export "lookup") (param i32 i32 i32 i32) (result i32)
   (call $lookup (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
 (func (export "boom") (result i32) (call $boom))
 (func (export "wide") (result i64) (call $wide (i64.const -5) (f32.const 1.5) (f64.const 2.25)))
 (func (export "bad_result") (result i32) (call $bad)))"""

TABLE = {"colour": "blue", "shape": "round"}


def _host() -> HostFunctions:
    host = HostFunctions()

    @host.function("myapp", params=("i32", "i32", "i32", "i32"), capability=LOOKUP, fuel=500)
    def lookup(ctx: HostContext, kptr: int, klen: int, vptr: int, vcap: int) -> int:
        value = TABLE.get(ctx.read_text(kptr, klen))
        if value is None:
            raise HostCallError(E.NOT_FOUND, "no such key")
        data = value.encode()
        ctx.write(vptr, data[:vcap])
        return len(data)

    @host.function("myapp", "boom")
    def explode(ctx: HostContext) -> int:
        raise RuntimeError("the application's bug")

    seen: list[Any] = []

    @host.function("myapp", params=["i64", "f32", "f64"], result="i64", fuel=0)
    def wide(ctx: HostContext, a: int, b: float, c: float) -> int:
        seen.append((a, b, c, ctx.sandbox_id))
        return -(2**40)

    host.define("myapp", "bad_result", lambda ctx: "not a number")  # type: ignore[arg-type,return-value]
    host.seen = seen  # type: ignore[attr-defined]
    return host


@pytest.fixture(scope="module")
def host() -> HostFunctions:
    return _host()


@pytest.fixture(scope="module")
def custom_engine(host: HostFunctions) -> Iterator[Engine]:
    with Engine(host_functions=host) as engine:
        yield engine


def _sandbox(engine: Engine, *grants: Grant | C, **kwargs: Any) -> Sandbox:
    sb = Sandbox(engine, engine.load(WAT, name="plugin"), config(*grants, **kwargs))
    sb.instantiate()
    return sb


def test_granted_custom_function_reads_writes_and_is_priced(custom_engine: Engine) -> None:
    with _sandbox(custom_engine, grant(CustomCapability(LOOKUP)), host_byte_fuel=1) as sb:
        events: list[object] = []
        sb.subscribe(events.append)
        assert sb.call("lookup", [0, 6, 100, 64]) == [4]
        assert sb.read_memory(100, 4) == b"blue"
        assert sb.call("lookup", [0, 6, 200, 2]) == [4]  # snprintf style: 2 bytes copied
        assert sb.read_memory(200, 3) == b"bl\0"
        assert sb.call("lookup", [0, 5, 300, 8]) == [E.NOT_FOUND]  # "colou"
        assert sb.call("lookup", [65534, 6, 300, 8]) == [E.INVALID_MEMORY]
        calls = [e for e in events if isinstance(e, HostCall)]
        assert [c.function for c in calls] == ["myapp.lookup"] * 4
        assert calls[0].capability == LOOKUP and calls[0].allowed
        assert calls[0].fuel == 500 + 6 + 4  # its price plus a fuel unit per byte moved
        assert calls[2].reason == "no such key"
        receipt = sb.receipt()
        assert receipt.host_calls == {LOOKUP: {"allowed": 4, "denied": 0}}
        assert receipt.bytes_in == 4 + 2 and receipt.bytes_out == 6 + 6 + 5
        logged = sb.host_calls()[0]
        assert logged.function == "myapp.lookup" and logged.capability == LOOKUP


def test_denied_without_its_grant_and_the_function_never_runs(custom_engine: Engine) -> None:
    with _sandbox(custom_engine, C.SENSOR_TIME) as sb:
        assert sb.call("lookup", [0, 6, 100, 64]) == [E.CAPABILITY_DENIED]
        assert sb.read_memory(100, 4) == bytes(4)
        assert sb.receipt().host_calls == {LOOKUP: {"allowed": 0, "denied": 1}}
        assert sb.host_calls()[-1].reason == f"no grant for {LOOKUP}"
    # a grant of another custom capability, or of unrestricted's neighbours, does not do
    other = grant(CustomCapability("x:myapp.other"))
    with _sandbox(custom_engine, other) as sb:
        assert sb.call("lookup", [0, 6, 100, 64]) == [E.CAPABILITY_DENIED]


def test_unrestricted_covers_custom_capabilities(custom_engine: Engine) -> None:
    with _sandbox(custom_engine, C.UNRESTRICTED) as sb:
        assert sb.call("lookup", [0, 6, 100, 64]) == [4]


def test_a_raising_function_is_internal_error_and_the_host_goes_on(custom_engine: Engine) -> None:
    with _sandbox(custom_engine) as sb:
        assert sb.call("boom") == [E.INTERNAL_ERROR]
        assert sb.host_calls()[-1].reason == "RuntimeError in myapp.boom: the application's bug"
        assert sb.state == "ready"
        assert sb.call("boom") == [E.INTERNAL_ERROR]  # and again: nothing broke
        assert sb.receipt().host_calls == {"custom": {"allowed": 2, "denied": 0}}
        assert sb.call("bad_result") == [E.INTERNAL_ERROR]
        assert "returned not a number, not an i32" in sb.host_calls()[-1].reason


def test_float_and_i64_parameters_and_an_i64_result(
    custom_engine: Engine, host: HostFunctions
) -> None:
    with _sandbox(custom_engine) as sb:
        assert sb.call("wide") == [-(2**40)]
    assert host.seen[-1][:3] == (-5, 1.5, 2.25)  # type: ignore[attr-defined]


def test_unregistered_import_is_todays_clear_error() -> None:
    with Engine() as engine, pytest.raises(ModuleError, match='is not from module "vudo"'):
        engine.load(WAT)


def test_import_with_the_wrong_signature_is_refused(custom_engine: Engine) -> None:
    wat = '(module (import "myapp" "boom" (func (param i32) (result i32))))'
    with pytest.raises(
        ModuleError, match=r"has signature \(i32\) -> \(i32\), expected \(\) -> \(i32\)"
    ):
        custom_engine.load(wat)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"module": "vudo"}, 'import module "vudo" is reserved'),
        ({"module": "wasi_snapshot_preview1"}, "is reserved"),
        ({"module": "My App"}, "bad import module name"),
        ({"name": "no-dash"}, "bad function name"),
        ({"params": ("i32", "v128")}, "unsupported parameter type(s) 'v128'"),
        ({"params": ("externref",)}, "unsupported parameter type"),
        ({"params": ("i32",) * 17}, "more than 16 parameters"),
        ({"result": "f64"}, "unsupported result type 'f64'"),
        ({"result": ""}, "unsupported result type"),
        ({"capability": "lookup"}, 'unknown capability "lookup"'),
        ({"capability": "x:lookup"}, "is not a custom capability name"),
        ({"capability": "x:My.App"}, "is not a custom capability name"),
        ({"capability": "unrestricted"}, "cannot be guarded by unrestricted"),
        ({"capability": "x:other.lookup"}, 'custom capability "x:other.lookup" is not named after'),
        ({"fuel": -1}, "fuel must be a non-negative int"),
        ({"fuel": 1.5}, "fuel must be a non-negative int"),
    ],
)
def test_bad_definitions_are_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    host = HostFunctions()
    args: dict[str, Any] = {"module": "app", "name": "f", "func": lambda ctx: 0}
    args.update(kwargs)
    with pytest.raises(UsageError) as info:
        host.define(**args)
    assert message in info.value.message
    assert info.value.exit_code == 2
    assert len(host) == 0


def test_defined_twice_and_after_linking_are_refused() -> None:
    host = HostFunctions()
    host.define("app", "f", lambda ctx: 0)
    with pytest.raises(UsageError, match=r"host function app\.f is already defined"):
        host.define("app", "f", lambda ctx: 1)
    with Engine(host_functions=host):
        pass
    with pytest.raises(UsageError, match="already linked into an engine"):
        host.define("app", "g", lambda ctx: 0)
    with pytest.raises(UsageError, match="is not callable"):
        HostFunctions().define("app", "f", "not a function")  # type: ignore[arg-type]


def test_a_built_in_capability_can_guard_a_custom_function() -> None:
    host = HostFunctions()
    host.define("app", "now", lambda ctx: 7, capability="sensor_time")
    wat = (
        '(module (import "app" "now" (func $n (result i32))) '
        '(func (export "main") (result i32) (call $n)))'
    )
    with Engine(host_functions=host) as engine:
        module = engine.load(wat)
        for caps, want in (((C.SENSOR_TIME,), 7), ((), E.CAPABILITY_DENIED)):
            with Sandbox(engine, module, config(*caps)) as sb:
                sb.instantiate()
                assert sb.call("main") == [want]
    assert host.capabilities() == (C.SENSOR_TIME,)


def test_custom_capability_names_never_collide_with_built_ins() -> None:
    for cap in C:
        with pytest.raises(InvalidInputError):
            CustomCapability(cap.value)
        with pytest.raises(InvalidInputError):
            CustomCapability("x:" + cap.value)  # one word: no dot
    assert (
        parse_any_capability(LOOKUP) == LOOKUP
        and parse_any_capability("sensor_time") is C.SENSOR_TIME
    )
    assert CustomCapability("x:a.b.c.d").value == "x:a.b.c.d"
    for bad in ("x:a.b.c.d.e", "x:" + "a" * 40 + ".b", "x:a.b\n", "X:a.b", "x:a..b"):
        with pytest.raises(InvalidInputError):
            CustomCapability(bad)


def test_custom_grants_sign_round_trip_and_check() -> None:
    from engine_helpers import GRANTER_HEX, IDENTITY

    g = grant(CustomCapability(LOOKUP), "global")
    again = Grant.from_dict(g.to_dict())
    assert again == g and isinstance(again.capability, CustomCapability)
    checker = GrantChecker([again], grantee=IDENTITY, trusted_granters=(GRANTER_HEX,))
    assert checker.check(CustomCapability(LOOKUP)).allowed
    assert not checker.check(CustomCapability("x:myapp.other")).allowed
    assert not checker.check(C.SENSOR_TIME).allowed
    assert parse_grant_spec(f"{LOOKUP}=global") == (LOOKUP, "global")


def test_calling_back_into_the_same_sandbox_is_internal_error() -> None:
    host = HostFunctions()
    box: list[Sandbox] = []
    host.define("app", "again", lambda ctx: box[0].call("main")[0])
    wat = (
        '(module (import "app" "again" (func $a (result i32))) '
        '(func (export "main") (result i32) (call $a)))'
    )
    with Engine(host_functions=host) as engine:
        sb = Sandbox(engine, engine.load(wat), config())
        with sb:
            box.append(sb)
            sb.instantiate()
            assert sb.call("main") == [E.INTERNAL_ERROR]
            assert "already running a call" in sb.host_calls()[-1].reason
            assert sb.state == "ready"

"""Reading a wasm binary's shape (imports, exports, function count, code size) ourselves.

Why not ask wasmtime: its C API aborts the whole process when asked to describe a type it
does not support (a ``v128`` or a typed reference such as ``anyref`` in a function
signature, global or table), and the Python binding offers no way to check first. So the
loader reads the module's outline with this scanner and never asks wasmtime for the type
of an import or export: :func:`scan` returns every import and export with its type names,
and raises ModuleError for one whose type the C API cannot describe.

It reads the whole type section (rec groups, ``sub``/``sub final``, struct, array and
function types), imports, functions, tables, globals (skipping their constant
initializers), exports and tags, and skips the other sections by their size. The scanner
fails closed: anything it does not understand (a new section id, type form, value type or
constant instruction) is a ModuleError, never a guess. Call it only on a module wasmtime
has validated, so a surprise means a feature newer than this scanner, not a malformed file.

The per-function limits are counted here too (defined functions and code bytes), so the
engine can decide how to compile a module before compiling it.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each), and this module is on every ``vudo run``
# path (see vudo.engine.config).

from typing import NamedTuple

from vudo.errors import ModuleError

#: Value types the wasmtime C API can describe, by their binary encoding; the names are
#: the ones wasmtime-py prints (it calls externref "anyref").
DESCRIBABLE = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x70: "funcref", 0x6F: "anyref"}
#: Every other value type this scanner knows, with a readable name for messages.
_OTHER_VALTYPES = {
    0x7B: "v128",
    0x6E: "(ref null any)",
    0x6D: "(ref null eq)",
    0x6C: "(ref null i31)",
    0x6B: "(ref null struct)",
    0x6A: "(ref null array)",
    0x71: "(ref null none)",
    0x72: "(ref null noextern)",
    0x73: "(ref null nofunc)",
    0x69: "(ref null exn)",
    0x74: "(ref null noexn)",
    0x68: "(ref null cont)",
    0x75: "(ref null nocont)",
}
#: Abstract heap types (the byte of the negative s33 they are encoded as).
_HEAP_TYPES = {
    0x70: "func",
    0x6F: "extern",
    0x6E: "any",
    0x6D: "eq",
    0x6C: "i31",
    0x6B: "struct",
    0x6A: "array",
    0x71: "none",
    0x72: "noextern",
    0x73: "nofunc",
    0x69: "exn",
    0x74: "noexn",
    0x68: "cont",
    0x75: "nocont",
}
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
_KNOWN_SECTIONS = frozenset(range(14))  # custom .. tag; anything newer fails closed


class Extern(NamedTuple):
    """One import (``module`` set) or export (``module`` empty) and its type's names.

    ``params``/``results`` are a function's or tag's signature; a global's value type and
    a table's element type are in ``results``; a memory has neither.
    """

    module: str
    name: str
    kind: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    #: False for a function type that is not final or shares a ``rec`` group: a distinct
    #: type from the plain ``(func ...)`` of the same signature (imports must match it)
    plain: bool = True


class ModuleShape(NamedTuple):
    """The outline of a module: its boundary and how much code it has to compile."""

    imports: tuple[Extern, ...]
    exports: tuple[Extern, ...]
    functions: int  # defined (not imported) functions
    code_bytes: int  # size of the code section


class _Unsupported(Exception):
    """The module uses an encoding this scanner does not understand."""


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Unsupported("unexpected end of a section")
        self.pos += 1
        return self.data[self.pos - 1]

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result
            if shift > 63:
                raise _Unsupported("an over-long LEB128 number")

    def sleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                return result
            if shift > 63:
                raise _Unsupported("an over-long LEB128 number")

    def skip(self, n: int) -> None:
        if n > self.end - self.pos:
            raise _Unsupported("a length past the end of its section")
        self.pos += n

    def name(self) -> str:
        n = self.uleb()
        self.skip(n)
        try:
            return self.data[self.pos - n : self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise _Unsupported("a name that is not UTF-8") from None

    def heap_type(self) -> str:
        value = self.sleb()
        if value >= 0:
            return f"${value}"
        code = value & 0x7F
        if code not in _HEAP_TYPES or value < -64:
            raise _Unsupported(f"heap type {value}")
        return _HEAP_TYPES[code]

    def valtype(self) -> str:
        b = self.byte()
        if b in DESCRIBABLE:
            return DESCRIBABLE[b]
        if b in _OTHER_VALTYPES:
            return _OTHER_VALTYPES[b]
        if b in (0x63, 0x64):
            heap = self.heap_type()
            if b == 0x63 and heap in ("func", "extern"):  # the same types as the shorthands
                return "funcref" if heap == "func" else "anyref"
            return f"(ref null {heap})" if b == 0x63 else f"(ref {heap})"
        raise _Unsupported(f"value type 0x{b:02x}")

    def limits(self, *, table: bool = False) -> None:
        flags = self.byte()
        if flags & ~(0x05 if table else 0x0F):
            raise _Unsupported(f"limits flags 0x{flags:02x}")
        self.uleb()
        if flags & 0x01:
            self.uleb()
        if flags & 0x08:
            self.uleb()  # custom page size (log2)

    def const_expr(self) -> None:
        """Skip a constant expression up to its ``end``."""
        while True:
            op = self.byte()
            if op == 0x0B:
                return
            if op in (0x41, 0x42):
                self.sleb()
            elif op == 0x43:
                self.skip(4)
            elif op == 0x44:
                self.skip(8)
            elif op in (0x23, 0xD2):  # global.get, ref.func
                self.uleb()
            elif op == 0xD0:  # ref.null
                self.heap_type()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                pass
            elif op == 0xFD and self.uleb() == 12:  # v128.const
                self.skip(16)
            elif op == 0xFB:
                sub = self.uleb()
                if sub in (0, 1, 6, 7):  # struct.new(_default), array.new(_default)
                    self.uleb()
                elif sub == 8:  # array.new_fixed
                    self.uleb()
                    self.uleb()
                elif sub not in (26, 27, 28):  # any.convert_extern, extern.convert_any, ref.i31
                    raise _Unsupported(f"constant instruction 0xfb {sub}")
            else:
                raise _Unsupported(f"constant instruction 0x{op:02x}")


_FuncSig = tuple[tuple[str, ...], tuple[str, ...]]


def _composite(r: _Reader) -> _FuncSig | None:
    """One composite type: a function's signature, or None for a struct or array."""
    form = r.byte()
    if form == 0x60:
        params = tuple(r.valtype() for _ in range(r.uleb()))
        results = tuple(r.valtype() for _ in range(r.uleb()))
        return params, results
    if form == 0x5F:
        for _ in range(r.uleb()):
            _field(r)
        return None
    if form == 0x5E:
        _field(r)
        return None
    raise _Unsupported(f"composite type 0x{form:02x}")


def _field(r: _Reader) -> None:
    b = r.data[r.pos] if r.pos < r.end else -1
    if b in (0x78, 0x77):  # packed i8, i16
        r.byte()
    else:
        r.valtype()
    if r.byte() not in (0, 1):
        raise _Unsupported("field mutability")


def _subtype(r: _Reader) -> tuple[_FuncSig | None, bool]:
    """One subtype: its function signature (None for struct/array), and whether it is
    final with no supertype, i.e. the same type as a plain composite type."""
    b = r.data[r.pos] if r.pos < r.end else -1
    plain = True
    if b in (0x50, 0x4F):  # sub, sub final
        r.byte()
        supertypes = r.uleb()
        for _ in range(supertypes):
            r.uleb()
        plain = b == 0x4F and supertypes == 0
    return _composite(r), plain


def _types(r: _Reader) -> list[_FuncSig | None]:
    return [sig for sig, _ in _typedefs(r)]


def _typedefs(r: _Reader) -> list[tuple[_FuncSig | None, bool]]:
    types: list[tuple[_FuncSig | None, bool]] = []
    for _ in range(r.uleb()):
        if r.pos < r.end and r.data[r.pos] == 0x4E:  # rec group
            r.byte()
            group = [_subtype(r) for _ in range(r.uleb())]
            alone = len(group) == 1
            types.extend((sig, plain and alone) for sig, plain in group)
        else:
            types.append(_subtype(r))
    return types


def _signature(types: list[_FuncSig | None], index: int) -> _FuncSig:
    if index >= len(types) or types[index] is None:
        raise _Unsupported(f"type index {index} is not a function type")
    sig = types[index]
    assert sig is not None
    return sig


def scan(wasm: bytes, name: str = "spirit") -> ModuleShape:
    """The shape of a validated module; ModuleError if a boundary type cannot be described
    or the module uses anything this scanner does not understand."""
    try:
        shape = _scan(wasm)
    except _Unsupported as exc:
        raise ModuleError(
            f"{name}: uses a WebAssembly encoding vudo cannot inspect ({exc})",
            hint="vudo refuses what it cannot check; build the Spirit without newer "
            "WebAssembly proposals",
        ) from None
    for ext in (*shape.imports, *shape.exports):
        bad = next((t for t in (*ext.params, *ext.results) if t not in _DESCRIBABLE_NAMES), None)
        if bad is None:
            continue
        where = f'import "{ext.module}" "{ext.name}"' if ext.module else f'export "{ext.name}"'
        role = {
            "func": "parameter or result",
            "tag": "parameter",
            "global": "value",
            "table": "element type",
        }[ext.kind]
        raise ModuleError(
            f"{name}: {where} has a {bad} {role}, which vudo cannot pass across the host boundary",
            hint="use i32, i64, f32 or f64 in imported and exported functions and globals "
            "(SIMD and typed references can stay inside the module)",
        )
    return shape


_DESCRIBABLE_NAMES = frozenset(DESCRIBABLE.values())


def _scan(wasm: bytes) -> ModuleShape:
    if wasm[:8] != b"\0asm\x01\0\0\0":
        raise _Unsupported("not a core module of version 1")
    types: list[_FuncSig | None] = []
    plain: list[bool] = []
    funcs: list[int] = []  # per function index (imports first): its type index
    globals_: list[str] = []
    tables: list[str] = []
    tags: list[int] = []
    imports: list[Extern] = []
    raw_exports: list[tuple[str, int, int]] = []
    defined = code_bytes = 0
    r = _Reader(wasm, 8, len(wasm))
    while r.pos < r.end:
        section, size = r.byte(), r.uleb()
        if section not in _KNOWN_SECTIONS:
            raise _Unsupported(f"section id {section}")
        body = _Reader(wasm, r.pos, r.pos + size)
        r.skip(size)
        if section == 1:
            defs = _typedefs(body)
            types, plain = [sig for sig, _ in defs], [p for _, p in defs]
        elif section == 2:
            for _ in range(body.uleb()):
                module, field, kind = body.name(), body.name(), body.byte()
                if kind == 0:
                    funcs.append(body.uleb())
                    sig = _signature(types, funcs[-1])
                    imports.append(Extern(module, field, "func", *sig, plain[funcs[-1]]))
                elif kind == 1:
                    tables.append(body.valtype())
                    body.limits(table=True)
                    imports.append(Extern(module, field, "table", (), (tables[-1],)))
                elif kind == 2:
                    body.limits()
                    imports.append(Extern(module, field, "memory", (), ()))
                elif kind == 3:
                    globals_.append(body.valtype())
                    body.byte()
                    imports.append(Extern(module, field, "global", (), (globals_[-1],)))
                elif kind == 4:
                    body.byte()
                    tags.append(body.uleb())
                    params = _signature(types, tags[-1])[0]
                    imports.append(Extern(module, field, "tag", params, ()))
                else:
                    raise _Unsupported(f"import kind 0x{kind:02x}")
        elif section == 3:
            defined = body.uleb()
            funcs.extend(body.uleb() for _ in range(defined))
        elif section == 4:
            for _ in range(body.uleb()):
                init = body.data[body.pos] == 0x40 if body.pos < body.end else False
                if init:
                    body.byte()
                    if body.byte() != 0:
                        raise _Unsupported("table initializer form")
                tables.append(body.valtype())
                body.limits(table=True)
                if init:
                    body.const_expr()
        elif section == 6:
            for _ in range(body.uleb()):
                globals_.append(body.valtype())
                body.byte()
                body.const_expr()
        elif section == 7:
            for _ in range(body.uleb()):
                field, kind, index = body.name(), body.byte(), body.uleb()
                if kind not in _KINDS:
                    raise _Unsupported(f"export kind 0x{kind:02x}")
                raw_exports.append((field, kind, index))
        elif section == 10:
            code_bytes = size
        elif section == 13:
            for _ in range(body.uleb()):
                body.byte()
                tags.append(body.uleb())
    exports: list[Extern] = []
    counts = {0: len(funcs), 1: len(tables), 3: len(globals_), 4: len(tags)}
    for field, kind, index in raw_exports:
        if index >= counts.get(kind, index + 1):
            raise _Unsupported(f"export index {index}")
        if kind == 0:
            sig = _signature(types, funcs[index])
            exports.append(Extern("", field, "func", *sig, plain[funcs[index]]))
        elif kind == 4:
            exports.append(Extern("", field, "tag", _signature(types, tags[index])[0], ()))
        elif kind == 2:
            exports.append(Extern("", field, "memory", (), ()))
        else:
            value = tables[index] if kind == 1 else globals_[index]
            exports.append(Extern("", field, _KINDS[kind], (), (value,)))
    return ModuleShape(tuple(imports), tuple(exports), defined, code_bytes)

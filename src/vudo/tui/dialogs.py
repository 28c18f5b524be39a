"""Modal screens: consent to capabilities, choose what to run, refuel.

The consent screen asks what the CLI's install prompt asks (each capability the Spirit
wants, with what it allows, and which of them widen an upgrade), and answers with the
capabilities the user grants, or ``None`` when cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from vudo.capabilities import parse_any_capability, parse_capability
from vudo.engine.config import DEFAULT_FUEL, DEFAULT_TIMEOUT, MAX_FUEL, MAX_TIMEOUT, parse_fuel
from vudo.errors import InvalidInputError, VudoError
from vudo.tui.registry import short_key
from vudo.tui.rows import ConsentRow

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 100%; height: auto; max-height: 100%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; width: 1fr; }}
{name} .buttons {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 1; }}
{name} .field {{ height: 1; margin-bottom: 1; }}
{name} .field Label {{ width: 11; color: $text-muted; }}
{name} .field Input, {name} .field Select {{ width: 1fr; }}
"""


def still(widget: Input, app: object) -> Input:
    """Turn off cursor blink when the app asks for it (repeatable screenshots)."""
    if not getattr(app, "cursor_blink", True):
        widget.cursor_blink = False
    return widget


def capability_text(name: str) -> str:
    try:
        return parse_any_capability(name).description
    except InvalidInputError:
        return "unknown capability"


class ConsentScreen(ModalScreen[tuple[str, ...] | None]):
    """Grant or deny each capability a Spirit asks for."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="ConsentScreen")
        + """
    ConsentScreen VerticalScroll { height: auto; max-height: 14; }
    ConsentScreen Checkbox { height: 1; }
    ConsentScreen .what { color: $text-muted; padding-left: 4; }
    ConsentScreen .widen { color: $text-warning; }
    """
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("y", "accept", "Accept"),
    ]

    def __init__(self, request: ConsentRow) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        verb = "Upgrade" if r.action == "upgrade" else "Install"
        with Vertical():
            yield Label(Content(f"{verb} {r.name} {r.version}?"), classes="title")
            trust = "trusted signer" if r.trusted else "signer NOT in your trusted keys"
            yield Static(Content(f"signed by {short_key(r.signer)} ({trust})"))
            if r.capabilities:
                yield Static("It asks for these capabilities (uncheck to deny):")
            else:
                yield Static("It asks for no capabilities.")
            with VerticalScroll():
                for cap in r.capabilities:
                    widens = r.previous is not None and cap not in r.previous
                    label = Content(cap)
                    if widens:
                        label += Content("  (new in this version)").stylize("$text-warning")
                    yield Checkbox(label, value=True, compact=True, id=f"cap-{cap}")
                    yield Static(capability_text(cap), classes="what")
            yield Static(
                "y accept · esc cancel · space toggles the focused capability", classes="what"
            )
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Accept", variant="primary", id="accept")

    def granted(self) -> tuple[str, ...]:
        caps = self.request.capabilities
        return tuple(cap for cap in caps if self.query_one(f"#cap-{cap}", Checkbox).value)

    @on(Button.Pressed, "#accept")
    def action_accept(self) -> None:
        self.dismiss(self.granted())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True, slots=True)
class RunRequest:
    function: str
    args: tuple[str, ...]
    fuel: int
    deny: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    memory: int | None = None  # bytes; None: the engine's default
    grant: tuple[str, ...] = ()  # "CAP" or "CAP=SCOPE", like --grant
    memory_text: str = ""  # as typed (shown again next time)


#: (name, signature, parameter types) of one exported function.
Export = tuple[str, str, tuple[str, ...]]


def check_request(request: RunRequest, params: tuple[str, ...]) -> str | None:
    """What is wrong with ``request`` (one line), or None: the checks the run itself makes
    (arguments against the signature, capability names, grant scopes), made while the
    dialog is still open so a typo is fixed in place."""
    # lazy: engine.grants (~10 ms) only when a run is asked for
    from vudo.engine.grants import parse_grant_spec
    from vudo.project.runner import convert_args  # lazy: ~190 ms, as above

    try:
        convert_args(request.function, params, request.args)
        for name in request.deny:
            parse_capability(name)
        for spec in request.grant:
            parse_grant_spec(spec)
    except VudoError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        return f"{exc.message}{hint}"
    return None


class RunDialog(ModalScreen[RunRequest | None]):
    """Choose the exported function, its arguments, fuel, timeout, memory and grants."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="RunDialog")
        + """
    RunDialog .field { margin-bottom: 0; }
    RunDialog #run-problem { color: $text-error; height: auto; margin-top: 1; }
    RunDialog .what { color: $text-muted; }
    """
    )

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        functions: list[Export],
        *,
        default: str | None,
        last: RunRequest | None = None,
        fuel: int = DEFAULT_FUEL,
    ) -> None:
        super().__init__()
        self.functions = functions
        self.default = default
        self.last = last
        self.fuel = last.fuel if last else fuel

    def _input(self, value: str, id: str, placeholder: str = "") -> Input:
        return still(Input(value, placeholder=placeholder, compact=True, id=id), self.app)

    def compose(self) -> ComposeResult:
        last = self.last
        with Vertical():
            yield Label("Run", classes="title")
            # Export names come from the module: plain text, never markup.
            options = [(Content(f"{name} {sig}"), name) for name, sig, _ in self.functions]
            with Horizontal(classes="field"):
                yield Label("function")
                yield Select(
                    options,
                    value=self.default if self.default is not None else Select.NULL,
                    allow_blank=self.default is None,
                    prompt="choose a function",
                    compact=True,
                    id="run-function",
                )
            same = last is not None and last.function == self.default
            fields = (
                (
                    "arguments",
                    " ".join(last.args) if same and last else "",
                    "run-args",
                    "separated by spaces",
                ),
                ("fuel", str(self.fuel), "run-fuel", "units"),
                (
                    "timeout",
                    f"{last.timeout:g}" if last else f"{DEFAULT_TIMEOUT:g}",
                    "run-timeout",
                    "seconds",
                ),
                (
                    "memory",
                    last.memory_text if last else "",
                    "run-memory",
                    "linear memory limit, e.g. 64MiB (default 64MiB)",
                ),
                (
                    "grant",
                    " ".join(last.grant) if last else "",
                    "run-grant",
                    "extra capabilities: CAP or CAP=SCOPE",
                ),
                (
                    "deny",
                    " ".join(last.deny) if last else "",
                    "run-deny",
                    "capabilities to withhold this run",
                ),
            )
            for label, value, id, placeholder in fields:
                with Horizontal(classes="field"):
                    yield Label(label)
                    yield self._input(value, id, placeholder)
            yield Static("", id="run-problem")
            yield Static("enter runs · esc cancels · tab moves between fields", classes="what")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Run", variant="primary", id="run")

    def on_mount(self) -> None:
        self.query_one("#run-args", Input).focus()

    def problem(self, text: str) -> None:
        self.query_one("#run-problem", Static).update(Content(text))

    @on(Select.Changed, "#run-function")
    def _function_changed(self, event: Select.Changed) -> None:
        """Another function takes other arguments: the old ones would not fit it."""
        if event.value != self.default:
            self.default = None if event.value is Select.NULL else str(event.value)
            self.query_one("#run-args", Input).value = ""
            self.problem("")

    def request(self) -> RunRequest | str:
        """The request the form describes, or what is wrong with it."""
        select: Select[str] = self.query_one("#run-function", Select)
        if select.value is Select.NULL:
            return "choose a function"

        def value(id: str) -> str:
            return self.query_one(f"#{id}", Input).value.strip()

        try:
            fuel = parse_fuel(value("run-fuel"))
        except ValueError:
            return f"fuel must be a whole number from 1 to {MAX_FUEL:,}"
        try:
            timeout = float(value("run-timeout"))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= MAX_TIMEOUT:
            return "timeout must be a positive number of seconds"
        memory: int | None = None
        memory_text = value("run-memory")
        if memory_text:
            # lazy: project.runner (~190 ms) only when a run is asked for
            from vudo.project.runner import parse_size

            try:
                memory = parse_size(memory_text)
            except VudoError as exc:
                return f"memory: {exc.message} ({exc.hint})"
        request = RunRequest(
            function=str(select.value),
            args=tuple(value("run-args").split()),
            fuel=fuel,
            deny=tuple(value("run-deny").replace(",", " ").split()),
            timeout=timeout,
            memory=memory,
            grant=tuple(value("run-grant").replace(",", " ").split()),
            memory_text=memory_text,
        )
        params = next((p for n, _, p in self.functions if n == request.function), ())
        return check_request(request, params) or request

    @on(Input.Submitted)
    @on(Button.Pressed, "#run")
    def _submit(self) -> None:
        request = self.request()
        if isinstance(request, str):
            self.problem(request)
            return
        self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class RefuelDialog(ModalScreen[int | None]):
    """Add fuel to a sandbox that ran out (or is paused)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="RefuelDialog")

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, amount: int) -> None:
        super().__init__()
        self.amount = amount

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Refuel", classes="title")
            with Horizontal(classes="field"):
                yield Label("add fuel")
                yield still(
                    Input(str(self.amount), type="integer", compact=True, id="refuel-amount"),
                    self.app,
                )
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Refuel", variant="primary", id="refuel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#refuel")
    def _submit(self) -> None:
        try:
            self.dismiss(parse_fuel(self.query_one("#refuel-amount", Input).value))
        except ValueError:
            self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """Ask before an action that changes files, the store or the registry: y or enter
    confirms, n or esc cancels."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "confirm", "Yes"),
        Binding("n,escape", "cancel", "No"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(self.question), classes="title")
            if self.detail:
                yield Static(Content(self.detail))
            yield Static("y confirm · n or esc cancel", classes="what")
            with Horizontal(classes="buttons"):
                yield Button("No", id="cancel")
                yield Button("Yes", variant="primary", id="confirm")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class TextScreen(ModalScreen[None]):
    """A scrollable page of plain text (a host call's details, the keymap); ``y`` copies
    ``copy_text`` when given."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="TextScreen")
        + """
    TextScreen > Vertical { width: 100; }
    TextScreen VerticalScroll { height: auto; max-height: 80vh; }
    TextScreen .what { color: $text-muted; }
    """
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "close", "Close"),
        Binding("y", "copy", "Copy"),
        Binding("down,j", "scroll('down')", "Down", show=False),
        Binding("up,k", "scroll('up')", "Up", show=False),
    ]

    def __init__(self, title: str, body: Content, *, copy_text: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.copy_text = copy_text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Content(self.title_text), classes="title")
            with VerticalScroll(id="text-scroll"):
                yield Static(self.body, id="text-body")
            hint = (
                "j/k scroll · y copy · esc close"
                if self.copy_text is not None
                else "j/k scroll · esc close"
            )
            yield Static(hint, classes="what")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, direction: str) -> None:
        scroll = self.query_one("#text-scroll", VerticalScroll)
        scroll.scroll_relative(y=1 if direction == "down" else -1, animate=False)

    def action_copy(self) -> None:
        if self.copy_text is not None:
            self.app.copy_to_clipboard(self.copy_text)
            self.notify("copied")

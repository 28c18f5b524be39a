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

from vudo.engine.config import DEFAULT_FUEL, parse_fuel
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
    from vudo.capabilities import parse_any_capability
    from vudo.errors import InvalidInputError

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


class RunDialog(ModalScreen[RunRequest | None]):
    """Choose the exported function, its arguments and the fuel budget."""

    DEFAULT_CSS = DIALOG_CSS.format(name="RunDialog")

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        functions: list[tuple[str, str]],
        *,
        default: str | None,
        args: str = "",
        fuel: int = DEFAULT_FUEL,
        deny: str = "",
    ) -> None:
        super().__init__()
        self.functions = functions  # (name, signature)
        self.default = default
        self.args = args
        self.fuel = fuel
        self.deny = deny

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Run", classes="title")
            # Export names come from the module: plain text, never markup.
            options = [(Content(f"{name} {sig}"), name) for name, sig in self.functions]
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
            with Horizontal(classes="field"):
                yield Label("arguments")
                yield still(
                    Input(
                        self.args, placeholder="separated by spaces", compact=True, id="run-args"
                    ),
                    self.app,
                )
            with Horizontal(classes="field"):
                yield Label("fuel")
                yield still(
                    Input(str(self.fuel), compact=True, id="run-fuel", type="integer"), self.app
                )
            with Horizontal(classes="field"):
                yield Label("deny")
                yield still(
                    Input(
                        self.deny,
                        placeholder="capabilities to deny (like --deny)",
                        compact=True,
                        id="run-deny",
                    ),
                    self.app,
                )
            yield Static("", id="run-problem")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Run", variant="primary", id="run")

    def on_mount(self) -> None:
        self.query_one("#run-args", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#run")
    def _submit(self) -> None:
        select: Select[str] = self.query_one("#run-function", Select)
        if select.value is Select.NULL:
            self.query_one("#run-problem", Static).update("choose a function")
            return
        try:
            fuel = parse_fuel(self.query_one("#run-fuel", Input).value)
        except ValueError:
            self.query_one("#run-problem", Static).update("fuel must be a positive number")
            return
        args = tuple(self.query_one("#run-args", Input).value.split())
        deny = tuple(self.query_one("#run-deny", Input).value.replace(",", " ").split())
        self.dismiss(RunRequest(str(select.value), args, fuel, deny))

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

"""The workbench's frame around the panes: the view tab bar and the key footer.

Both are Textual's own widgets, changed only in what a key press costs (issue 14: a
number key must reach the screen in well under 50 ms, with a Spirit flooding the host-call
log). Textual's :class:`~textual.widgets.Footer` recomposes on every focus change (removes
every key and mounts new ones: a style pass, mount and layout for each, about a third of
a pane switch) and :class:`~textual.widgets.Tabs` slides its underline for 0.3 s (a frame
every 16 ms, which a key pressed meanwhile queues behind). Here the footer changes the
keys it has in place and the underline jumps; what they show once settled is the same.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Tabs
from textual.widgets._footer import FooterKey
from textual.widgets._tabs import Underline

__all__ = ["KeyFooter", "ViewTabs"]


class ViewTabs(Tabs):
    """The tab bar, its underline moving without animation."""

    def _highlight_active(self, animate: bool = True) -> None:
        # Textual moves the underline after the next frame (an extra frame per switch);
        # the tabs do not move, so where they were last laid out is where it goes now.
        underline = self.query_one(Underline)
        for tab in self.query("#tabs-list > Tab.-active"):
            region = tab.virtual_region.shrink(tab.styles.gutter)
            if region:
                underline.show_highlight = True
                underline.highlight_start, underline.highlight_end = region.column_span
        super()._highlight_active(animate=False)


PALETTE = "-command-palette"

#: A footer key: key, key display, description, action, disabled, tooltip.
KeySpec = tuple[str, str, str, str, bool, str]


def _spec(key: FooterKey) -> KeySpec:
    return (key.key, key.key_display, key.description, key.action, key._disabled,
            str(key.tooltip or ""))  # fmt: skip


class KeyFooter(Footer):
    """The footer, brought up to date in place when the focused pane's keys change.

    It shows what :class:`Footer` composes (one key per action, the command palette's
    on the right), but changes the text of the keys it has, shows or hides spare ones
    (a pane with fewer keys hides the rest), and mounts keys only when it never had so
    many. Binding groups (none here) recompose as Textual does.
    """

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self.sync_keys)

    def wanted(self) -> tuple[list[KeySpec], KeySpec | None] | None:
        """The keys to show and the command palette's (``None``: key groups)."""
        active = self.screen.active_bindings
        firsts: dict[str, tuple[Binding, bool, str]] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show:
                firsts.setdefault(binding.action, (binding, enabled, tooltip))
        if any(binding.group is not None for binding, _, _ in firsts.values()):
            return None
        display = self.app.get_key_display
        keys = [
            (b.key, display(b), b.description, b.action, not enabled, tooltip or "")
            for b, enabled, tooltip in firsts.values()
        ]
        palette: KeySpec | None = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, b, enabled, _tooltip = found
                tip = str(b.tooltip or b.description)
                palette = (b.key, display(b), b.description, b.action, not enabled, tip)
        return keys, palette

    def sync_now(self) -> None:
        """Show the focused widget's keys now (after a focus change) when the keys it has
        suffice; anything else (the first keys at start-up, more keys than ever before)
        is left to the bindings signal, after the next frame, as Textual does it (a
        recompose started from inside the focus change at start-up kept the screen
        re-laying itself forever)."""
        if self._bindings_ready and self.app.app_focus:
            self.sync_keys(in_place=True)

    def sync_keys(self, *, in_place: bool = False) -> None:
        """Show the current bindings, changing as few widgets as possible; with
        ``in_place``, only when the keys it has suffice (no recompose, no mount)."""
        if not self.is_attached or self._pruning:
            return
        wanted = self.wanted()
        children = list(self.children)
        keys = [w for w in children if isinstance(w, FooterKey)]
        body = [k for k in keys if PALETTE not in k.classes]
        tail = [k for k in keys if PALETTE in k.classes]
        if (
            wanted is None
            or not keys
            or len(keys) != len(children)
            or keys[len(body) :] != tail
            or len(tail) != (wanted[1] is not None)
        ):
            if not in_place:  # the first keys, or key groups: as Textual does
                self.call_next(self.recompose)
            return
        specs, palette = wanted
        if in_place and len(specs) > len(body):
            return
        # Align the keys at the end: the app's keys (build, run, help, quit) come last on
        # every pane and stay in the widgets showing them; spare keys wait, hidden, first.
        spare = max(len(body) - len(specs), 0)
        changed = False
        for key in body[:spare]:
            if key.display:
                key.display = False
                changed = True
        for key, spec in zip(body[spare:], specs[len(specs) - len(body) + spare :], strict=True):
            changed |= self._set_key(key, spec)
        if palette is not None:
            changed |= self._set_key(tail[0], palette)
        if len(specs) > len(body):
            changed = True
            with self._context():  # data_bind binds to the widget whose context it runs in
                extra: list[Widget] = [
                    FooterKey(
                        name, shown, description, action, disabled=disabled, tooltip=tip
                    ).data_bind(compact=Footer.compact)
                    for name, shown, description, action, disabled, tip in specs[
                        : len(specs) - len(body)
                    ]
                ]
            if body:
                self.mount_all(extra, before=body[0])
            elif tail:
                self.mount_all(extra, before=tail[0])
            else:
                self.mount_all(extra)
        if changed:
            self.refresh(layout=True)

    @staticmethod
    def _set_key(key: FooterKey, spec: KeySpec) -> bool:
        """Make ``key`` show ``spec``; whether anything changed."""
        changed = not key.display
        key.display = True
        if _spec(key) != spec:
            changed = True
            key.key, key.key_display, key.description, key.action, disabled, tip = spec
            key._disabled = disabled
            key.set_class(disabled, "-disabled")
            key.tooltip = tip or None
            key.refresh(layout=True)  # its width follows its text
        return changed

"""The project file tree and a read-only viewer that highlights Spirit sources.

Highlighting uses a tree-sitter grammar through TextArea when one is installed for the
language, and otherwise Textual's Pygments highlighter (always available; covers WAT, C,
Zig, Rust and TOML). An unreadable, binary or huge file is shown as a one-line notice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text, TextType
from textual import events, on
from textual._tree_sitter import get_language
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.geometry import Region, Size
from textual.highlight import highlight
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Static, TextArea, Tree
from textual.widgets.tree import TreeNode

from vudo.tui.panes import PaneTitle

LANGUAGES: dict[str, str] = {
    ".wat": "wat",
    ".wast": "wat",
    ".c": "c",
    ".h": "c",
    ".zig": "zig",
    ".rs": "rust",
    ".toml": "toml",
    ".md": "markdown",
    ".json": "json",
    ".py": "python",
}

HIDDEN_DIRS = frozenset({".git", "__pycache__", ".zig-cache", "zig-cache", "node_modules"})
MAX_VIEW_BYTES = 512 * 1024


def language_for(path: Path) -> str | None:
    return LANGUAGES.get(path.suffix.lower())


def tree_sitter_language(language: str | None) -> bool:
    """Whether TextArea can highlight ``language`` (a tree-sitter grammar is installed)."""
    if language is None:
        return False

    return get_language(language) is not None


class FileTree(Tree[Path], PaneTitle):
    """The project directory, without VCS and compiler caches.

    Loaded synchronously (projects are small; at most :attr:`MAX_ENTRIES` entries), so
    there is no long-lived loader worker and the tree is the same on every screenshot.
    Selecting a file posts :class:`FileTree.FileSelected`.
    """

    MAX_ENTRIES = 2000

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "First", show=False),
        Binding("G", "last", "Last", show=False),
        Binding("e", "app.edit", "Edit"),
    ]

    @dataclass
    class FileSelected(Message):
        path: Path

    def __init__(self, root: Path, *, id: str | None = None) -> None:
        super().__init__(root.name or str(root), data=root, id=id)
        self.root_path = root
        self.show_root = True
        self.guide_depth = 2
        self.border_title = "1 Files"
        self._resized_to = Size(0, 0)
        self._blank: Strip | None = None

    def _on_resize(self, event: events.Resize) -> None:
        """A tree shown again gets a Resize of the size it had; Tree's own handler would
        drop every drawn line and lay out the screen (a second frame after each switch
        to the project view), so it runs only for a new size."""
        if event.size == self._resized_to:
            event.prevent_default()
        self._resized_to = event.size

    def render_lines(self, crop: Region) -> list[Strip]:
        self._blank = None  # the size or style may have changed since the last frame
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """Tree works its size and style out again for every line, each a walk up the
        DOM, and a project's tree is mostly the blank below its last node: that line is
        drawn once per frame, as Tree draws it."""
        if y + self.scroll_offset.y <= self.last_line:
            return super().render_line(y)
        if self._blank is None:
            self._blank = Strip.blank(self.size.width, self.rich_style)
        return self._blank

    def action_first(self) -> None:
        self.cursor_line = 0

    def action_last(self) -> None:
        self.cursor_line = max(self.last_line, 0)

    def process_label(self, label: TextType) -> Text:
        """File names are plain text (Tree reads a str label as markup, and a project
        folder someone else made may name a file ``[@click=app.quit]x``)."""
        return super().process_label(Text(label) if isinstance(label, str) else label)

    def on_mount(self) -> None:
        self.reload_tree()

    def reload_tree(self) -> None:
        """Re-read the directory (after a build or a file change)."""
        expanded = {n.data for n in self._walk(self.root) if n.is_expanded and n.data}
        self.clear()
        self.root.expand()
        count = 0

        def add(node: TreeNode[Path], directory: Path) -> None:
            nonlocal count
            try:
                entries = sorted(directory.iterdir(), key=lambda p: (not p.is_dir(), p.name))
            except OSError:
                return
            for entry in entries:
                if entry.name in HIDDEN_DIRS or count >= self.MAX_ENTRIES:
                    continue
                count += 1
                if entry.is_dir():
                    child = node.add(
                        entry.name + "/",
                        data=entry,
                        expand=entry in expanded or entry.name == "src",
                    )
                    add(child, entry)
                else:
                    node.add_leaf(entry.name, data=entry)

        add(self.root, self.root_path)

    def _walk(self, node: TreeNode[Path]) -> Iterable[TreeNode[Path]]:
        yield node
        for child in node.children:
            yield from self._walk(child)

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[Path]) -> None:
        path = event.node.data
        if path is not None and not event.node.allow_expand:
            self.post_message(self.FileSelected(path))


def read_for_view(path: Path, root: Path) -> tuple[str, str | None, str | None]:
    """``(title, text, notice)`` for ``path``: text to show, or a notice why not."""
    try:
        title = str(path.relative_to(root))
    except ValueError:
        title = path.name
    try:
        size = path.stat().st_size
        if size > MAX_VIEW_BYTES:
            return title, None, f"{title}: {size:,} bytes, too large to show"
        data = path.read_bytes()
    except OSError as exc:
        return title, None, f"cannot read {title}: {exc.strerror or exc}"
    if b"\0" in data[:8192]:
        return title, None, f"{title}: binary file, {len(data):,} bytes"
    return title, data.decode("utf-8", errors="replace"), None


class FileViewer(VerticalScroll, PaneTitle):
    """Read-only source view with line numbers and syntax highlighting."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
        Binding("e", "app.edit", "Edit"),
    ]

    DEFAULT_CSS = """
    FileViewer { height: 1fr; }
    FileViewer TextArea { height: auto; border: none; }
    FileViewer #viewer-text { width: auto; }
    """

    def __init__(self, root: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.root = root
        self.path: Path | None = None
        self.text: str | None = None
        self.mark: int | None = None  # a line to point at (a build error's)
        self.border_title = "2 Source"

    def compose(self) -> ComposeResult:
        yield Static("select a file", id="viewer-text")

    def show(self, path: Path, *, line: int | None = None) -> None:
        """Show ``path`` (any failure becomes a notice in the viewer, never an exception),
        with ``line`` marked and scrolled into view when given."""
        self.path = path
        self.mark = line
        title, text, notice = read_for_view(path, self.root)
        self.text = text
        self.border_title = Content(f"2 {title}")  # a file name: plain text, never markup
        for area in self.query(TextArea):
            area.remove()
        static = self.query_one("#viewer-text", Static)
        if text is None:
            static.display = True
            static.update(Content(notice or ""))  # may name a file: plain text
            return
        language = language_for(path)
        if tree_sitter_language(language):
            static.display = False
            area = TextArea(text, language=language, read_only=True, show_line_numbers=True)
            self.mount(area)
            if line is not None:
                area.cursor_location = (line - 1, 0)
            return
        static.display = True
        static.update(
            numbered(highlight(text, language=language or "text", path=str(path)), mark=line)
        )
        if line is None:
            self.scroll_home(animate=False)
        else:
            self.call_after_refresh(self.scroll_to, y=max(line - 3, 0), animate=False)

    def reload(self) -> None:
        """Show the current file again (it changed on disk), keeping the mark."""
        if self.path is not None:
            y = self.scroll_y
            self.show(self.path, line=self.mark)
            if self.mark is None:
                self.call_after_refresh(self.scroll_to, y=y, animate=False)


def numbered(content: Content, *, mark: int | None = None) -> Content:
    """Prefix each line with a dim line number; line ``mark`` gets a red ``▶``."""
    lines = content.split("\n")
    width = len(str(len(lines)))
    out = [
        (
            Content(f"{i:>{width}}▶").stylize("bold $text-error")
            if i == mark
            else Content(f"{i:>{width}} ").stylize("$text-muted")
        )
        + line
        for i, line in enumerate(lines, start=1)
    ]
    return Content("\n").join(out)

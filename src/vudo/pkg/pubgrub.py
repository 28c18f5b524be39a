"""PubGrub version solving (the algorithm of Dart's pub, uv and pubgrub-rs) over finite
candidate lists, and its explanation of why no solution exists.

Why PubGrub: it finds a solution whenever one exists, and when it backtracks it first
learns *why* (a new incompatibility, derived from the two that clashed), so the same dead
end is never explored twice; on registry-sized graphs it is measured against resolvelib
in ``benches/pkg_resolve.py``. The learned incompatibilities also form a derivation tree,
which :func:`explain` turns into "because ..., ... cannot be used" sentences.

Every package has a finite, known list of candidates (what the sources hold), so a set
of versions is a bit mask over that list (bit ``i`` is candidate ``i``): intersections,
unions and subset tests are single integer operations. A :class:`Term` is "the package is
selected at one of ``mask``" (positive) or "the package is not selected at any of
``mask``" (negative; also true when the package is not selected at all).

The caller supplies a :class:`Provider` (which version to try, what it depends on) and
renders terms through a :class:`Namer`; this module knows nothing of manifests or
sources. The root is the package ``""`` with the single version ``0``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ROOT",
    "Incompatibility",
    "Namer",
    "NoSolution",
    "Provider",
    "SolveStopped",
    "Term",
    "explain",
    "solve",
]

ROOT = ""


@dataclass(frozen=True, slots=True)
class Term:
    """``package`` selected at one of ``mask`` (positive), or not at any of them."""

    package: str
    mask: int
    positive: bool

    def inverse(self) -> Term:
        return Term(self.package, self.mask, not self.positive)


def _intersect(a_mask: int, a_pos: bool, b_mask: int, b_pos: bool) -> tuple[int, bool]:
    if a_pos:
        return (a_mask & b_mask, True) if b_pos else (a_mask & ~b_mask, True)
    if b_pos:
        return b_mask & ~a_mask, True
    return a_mask | b_mask, False


def _subset(a_mask: int, a_pos: bool, b_mask: int, b_pos: bool) -> bool:
    """Whether the set ``a`` lies inside ``b`` ("not selected" belongs to negatives)."""
    if a_pos:
        return (a_mask & ~b_mask) == 0 if b_pos else (a_mask & b_mask) == 0
    if b_pos:
        return False
    return (b_mask & ~a_mask) == 0


def _disjoint(a_mask: int, a_pos: bool, b_mask: int, b_pos: bool) -> bool:
    if a_pos:
        return (a_mask & b_mask) == 0 if b_pos else (a_mask & ~b_mask) == 0
    if b_pos:
        return (b_mask & ~a_mask) == 0
    return False


@dataclass(frozen=True, slots=True, eq=False)
class Incompatibility:
    """Terms that must not all hold at once.

    ``kind`` says where it came from: ``"root"`` (the root must be selected),
    ``"dependency"`` (``payload`` is the caller's description of the edge),
    ``"no_versions"`` (no candidate is left in the term's mask) or ``"derived"`` (from
    ``causes``, during conflict resolution).
    """

    terms: tuple[Term, ...]
    kind: str
    payload: object = None
    causes: tuple[Incompatibility, Incompatibility] | None = None

    @classmethod
    def make(
        cls,
        terms: Iterable[Term],
        kind: str,
        payload: object = None,
        causes: tuple[Incompatibility, Incompatibility] | None = None,
    ) -> Incompatibility:
        """Merge terms of the same package; drop what always holds (a negative empty
        term) and, for derived ones, the root, which is always selected."""
        merged: dict[str, tuple[int, bool]] = {}
        for term in terms:
            old = merged.get(term.package)
            merged[term.package] = (
                (term.mask, term.positive)
                if old is None
                else _intersect(old[0], old[1], term.mask, term.positive)
            )
        out = []
        for package, (mask, positive) in merged.items():
            if not positive and mask == 0:
                continue
            if kind == "derived" and positive and package == ROOT and len(merged) > 1:
                continue
            out.append(Term(package, mask, positive))
        return cls(tuple(out), kind, payload, causes)

    def is_failure(self) -> bool:
        """True once it says the root itself cannot be selected (no solution)."""
        return not self.terms or (
            len(self.terms) == 1 and self.terms[0].positive and self.terms[0].package == ROOT
        )


class Provider(Protocol):
    """What the solver asks of the caller."""

    def choose(self, package: str, allowed: int) -> int | None:
        """The candidate (bit index) to try next among ``allowed``, or None to give up
        on the package (every candidate in ``allowed`` is unusable)."""
        ...

    def dependencies(self, package: str, version: int) -> Iterable[tuple[int, str, int, object]]:
        """The dependencies of candidate ``version`` of ``package`` as ``(1 << version,
        dependency name, allowed mask of it, payload)``."""
        ...

    def widen(self, package: str, version: int, payload: object) -> int:
        """Every version of ``package`` with the same dependency as ``version`` has
        (``payload``): asked when it clashes, so all of them are ruled out at once."""
        ...


class SolveStopped(Exception):
    """The time or round bound was hit; ``busiest`` names the packages that were in the
    most conflicts so far (most first)."""

    def __init__(self, reason: str, rounds: int, busiest: Sequence[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rounds = rounds
        self.busiest = tuple(busiest)


class NoSolution(Exception):
    """No selection satisfies every incompatibility; ``incompatibility`` is the root of
    the derivation tree (see :func:`explain`)."""

    def __init__(self, incompatibility: Incompatibility) -> None:
        super().__init__("no solution")
        self.incompatibility = incompatibility


@dataclass(slots=True)
class _Assignment:
    package: str
    mask: int
    positive: bool
    level: int
    index: int
    cause: Incompatibility | None  # None for a decision


@dataclass(slots=True)
class _State:
    """One package's assignments, their running intersections, and the current one."""

    assignments: list[_Assignment] = field(default_factory=list)
    cumulative: list[tuple[int, bool]] = field(default_factory=list)
    mask: int = 0  # the current intersection; "anything" (negative, empty) at first
    positive: bool = False
    decided: int | None = None  # the chosen bit, when decided


class _Solver:
    def __init__(
        self,
        provider: Provider,
        clock: Callable[[], float],
        deadline: float | None,
        max_rounds: int | None,
    ) -> None:
        self.provider = provider
        self.clock = clock
        self.deadline = deadline
        self.max_rounds = max_rounds
        self.rounds = 0
        self.incompatibilities: dict[str, list[Incompatibility]] = {}
        self.states: dict[str, _State] = {}
        self.trail: list[_Assignment] = []
        self.level = 0
        self.pending: dict[str, None] = {}  # positive and undecided
        self.conflicts: dict[str, int] = {}
        self.seen: dict[str, int] = {}  # package -> discovery order
        self.saved: dict[str, int] = {}  # package -> last decided version (phase saving)
        self.heap: list[tuple[int, int, str]] = []  # (candidates left, seen, package)
        self.edges: dict[tuple[str, int, str, int], Incompatibility] = {}

    # -- partial solution -----------------------------------------------------

    def _assign(
        self, package: str, mask: int, positive: bool, cause: Incompatibility | None
    ) -> None:
        state = self.states[package]
        assignment = _Assignment(package, mask, positive, self.level, len(self.trail), cause)
        self.trail.append(assignment)
        state.assignments.append(assignment)
        if state.cumulative:
            mask, positive = _intersect(state.mask, state.positive, mask, positive)
        state.cumulative.append((mask, positive))
        state.mask, state.positive = mask, positive
        if cause is None:
            state.decided = (mask & -mask).bit_length() - 1
            self.pending.pop(package, None)
        elif positive and state.decided is None:
            self.pending[package] = None
            if package not in self.seen:
                self.seen[package] = len(self.seen)
            heapq.heappush(self.heap, (mask.bit_count(), self.seen[package], package))

    def _backtrack(self, level: int) -> None:
        touched: set[str] = set()
        trail = self.trail
        while trail and trail[-1].level > level:
            assignment = trail.pop()
            state = self.states[assignment.package]
            state.assignments.pop()
            state.cumulative.pop()
            if assignment.cause is None and state.decided is not None:
                self.saved[assignment.package] = state.decided
                state.decided = None
            touched.add(assignment.package)
        self.level = level
        for package in touched:
            state = self.states[package]
            state.mask, state.positive = state.cumulative[-1] if state.cumulative else (0, False)
            if state.positive and state.decided is None:
                self.pending[package] = None
                heapq.heappush(self.heap, (state.mask.bit_count(), self.seen[package], package))
            else:
                self.pending.pop(package, None)

    def _satisfies(self, term: Term) -> bool:
        state = self.states[term.package]
        return _subset(state.mask, state.positive, term.mask, term.positive)

    def _satisfier(self, term: Term) -> _Assignment:
        """The earliest assignment after which ``term`` holds."""
        state = self.states[term.package]
        for assignment, (mask, positive) in zip(state.assignments, state.cumulative, strict=True):
            if _subset(mask, positive, term.mask, term.positive):
                return assignment
        raise AssertionError(f"{term} is not satisfied")  # pragma: no cover - solver bug

    # -- the algorithm --------------------------------------------------------

    def add(self, incompatibility: Incompatibility) -> None:
        for term in incompatibility.terms:
            if term.package not in self.states:
                self.states[term.package] = _State()
            self.incompatibilities.setdefault(term.package, []).append(incompatibility)

    def solve(self) -> dict[str, int]:
        self.add(Incompatibility.make([Term(ROOT, 1, False)], "root"))
        next_package: str | None = ROOT
        while next_package is not None:
            self._propagate(next_package)
            next_package = self._decide()
        return {
            package: state.decided
            for package, state in self.states.items()
            if state.decided is not None and package != ROOT
        }

    def _propagate(self, package: str) -> None:
        changed = [package]
        states = self.states
        incompatibilities = self.incompatibilities
        while changed:
            current = changed.pop()
            for incompatibility in reversed(incompatibilities[current]):
                # the relation of the partial solution to each term, inlined (hot loop)
                unsatisfied: Term | None = None
                for term in incompatibility.terms:
                    state = states[term.package]
                    mask = state.mask
                    other = term.mask
                    if term.positive:
                        if state.positive:
                            if not mask & ~other:
                                continue  # satisfied
                            if not mask & other:
                                break  # contradicted
                        elif not other & ~mask:
                            break  # contradicted
                    elif state.positive:
                        if not mask & other:
                            continue
                        if not mask & ~other:
                            break
                    elif not other & ~mask:
                        continue
                    if unsatisfied is not None:
                        break  # two terms undecided: nothing to learn yet
                    unsatisfied = term
                else:
                    if unsatisfied is None:
                        root_cause = self._resolve_conflict(incompatibility)
                        changed.clear()
                        derived = self._propagate_one(root_cause)
                        assert derived is not None, "a learned clause must propagate"
                        changed.append(derived)
                        break
                    self._assign(
                        unsatisfied.package,
                        unsatisfied.mask,
                        not unsatisfied.positive,
                        incompatibility,
                    )
                    changed.append(unsatisfied.package)

    def _propagate_one(self, incompatibility: Incompatibility) -> str | None:
        """Derive the one term left undecided, if exactly one is (after backjumping)."""
        unsatisfied: Term | None = None
        for term in incompatibility.terms:
            state = self.states[term.package]
            if _subset(state.mask, state.positive, term.mask, term.positive):
                continue
            if _disjoint(state.mask, state.positive, term.mask, term.positive):
                return None
            if unsatisfied is not None:
                return None
            unsatisfied = term
        if unsatisfied is None:
            return None
        self._assign(
            unsatisfied.package, unsatisfied.mask, not unsatisfied.positive, incompatibility
        )
        return unsatisfied.package

    def _resolve_conflict(self, incompatibility: Incompatibility) -> Incompatibility:
        new = False
        if self.deadline is not None and self.clock() > self.deadline:
            raise SolveStopped("ran out of time", self.rounds, self._busiest())
        while True:
            for term in incompatibility.terms:
                self.conflicts[term.package] = self.conflicts.get(term.package, 0) + 1
            if incompatibility.is_failure():
                raise NoSolution(incompatibility)
            recent_term: Term | None = None
            recent: _Assignment | None = None
            difference: Term | None = None
            previous_level = 1
            for term in incompatibility.terms:
                satisfier = self._satisfier(term)
                if recent is None or recent.index < satisfier.index:
                    if recent is not None:
                        previous_level = max(previous_level, recent.level)
                    recent_term, recent, difference = term, satisfier, None
                    if satisfier.cause is not None:
                        # the part of the satisfier the term does not cover
                        mask, positive = _intersect(
                            satisfier.mask, satisfier.positive, term.mask, not term.positive
                        )
                        if positive or mask:
                            difference = Term(term.package, mask, positive)
                            previous_level = max(
                                previous_level, self._satisfier(difference.inverse()).level
                            )
                else:
                    previous_level = max(previous_level, satisfier.level)
            assert recent is not None and recent_term is not None
            if previous_level < recent.level or recent.cause is None:
                # Backtrack chronologically (one level below the satisfier's) rather
                # than to previous_level: the learned incompatibility still propagates
                # (every other term was satisfied at or below previous_level), and the
                # decisions in between, which had nothing to do with the conflict, stay.
                # Backjumping threw them away and re-made them (2,000 packages: 5x the
                # decisions, growing with the graph).
                self._backtrack(recent.level - 1)
                if new:
                    self.add(incompatibility)
                return incompatibility
            terms = [t for t in incompatibility.terms if t is not recent_term]
            terms += [t for t in recent.cause.terms if t.package != recent.package]
            if difference is not None:
                terms.append(difference.inverse())
            incompatibility = Incompatibility.make(
                terms, "derived", causes=(incompatibility, recent.cause)
            )
            new = True

    def _check_bounds(self) -> None:
        self.rounds += 1
        if self.max_rounds is not None and self.rounds > self.max_rounds:
            raise SolveStopped(
                f"gave up after {self.max_rounds} rounds", self.max_rounds, self._busiest()
            )
        if self.deadline is not None and self.rounds % 16 == 0 and self.clock() > self.deadline:
            raise SolveStopped("ran out of time", self.rounds, self._busiest())

    def _busiest(self) -> list[str]:
        ranked = sorted(((-n, p) for p, n in self.conflicts.items() if p != ROOT))
        if ranked:
            return [p for _, p in ranked[:8]]
        return list(self.pending)[:8]

    def _decide(self) -> str | None:
        """Decide the most constrained pending package (fewest candidates left, then the
        first seen), at its last decided version when still allowed (phase saving: a
        backjump does not throw away choices that still fit), else the provider's pick.
        Versions whose dependencies clash with the partial solution are ruled out here,
        each by the incompatibility that says so, until one fits."""
        heap = self.heap
        states = self.states
        while heap:
            count, _, best = heap[0]
            state = states[best]
            if best in self.pending and state.mask.bit_count() == count:
                break
            heapq.heappop(heap)
        else:
            return None
        self._check_bounds()
        allowed = state.mask
        saved = self.saved.get(best)
        while True:
            if saved is not None and (allowed >> saved) & 1:
                version: int | None = saved
                saved = None
            else:
                version = self.provider.choose(best, allowed)
            if version is None or not (allowed >> version) & 1:
                self.add(Incompatibility.make([Term(best, allowed, True)], "no_versions"))
                return best
            clash = 0
            for versions, name, mask, payload in self.provider.dependencies(best, version):
                key = (best, versions, name, mask)
                incompatibility = self.edges.get(key)  # known from an earlier try?
                if incompatibility is None:
                    if name == best or not mask:
                        incompatibility = Incompatibility.make(
                            [Term(best, versions, True), Term(name, mask, False)],
                            "dependency",
                            payload,
                        )
                    else:  # the common case, without make()'s merging
                        incompatibility = Incompatibility(
                            (Term(best, versions, True), Term(name, mask, False)),
                            "dependency",
                            payload,
                        )
                    self.edges[key] = incompatibility
                    self.add(incompatibility)
                if all(t.package == best or self._satisfies(t) for t in incompatibility.terms):
                    wider = self.provider.widen(best, version, payload)
                    if wider != versions and incompatibility.terms[-1].package != best:
                        incompatibility = Incompatibility.make(
                            [Term(best, wider, True), *incompatibility.terms[1:]],
                            "dependency",
                            payload,
                        )
                        self.add(incompatibility)
                        versions = wider
                    clash |= versions
                    self.conflicts[best] = self.conflicts.get(best, 0) + 1
                    self.conflicts[name] = self.conflicts.get(name, 0) + 1
            if not clash:
                self.level += 1
                self._assign(best, 1 << version, True, None)
                return best
            allowed &= ~clash
            if not allowed:
                return best  # propagation finds the conflict and learns from it


def solve(
    provider: Provider,
    *,
    clock: Callable[[], float] | None = None,
    deadline: float | None = None,
    max_rounds: int | None = None,
) -> dict[str, int]:
    """Pick one candidate (bit index) of every package the root needs, so that no
    incompatibility holds. Raises NoSolution, or SolveStopped when ``clock()`` passes
    ``deadline`` or more than ``max_rounds`` decisions were needed."""
    return _Solver(provider, clock or (lambda: 0.0), deadline, max_rounds).solve()


# ---------------------------------------------------------------------- explanation


class Namer(Protocol):
    """How the caller's packages and edges read in an explanation."""

    def term(self, term: Term) -> str:
        """A positive set of versions: "b 2.1.0", "b ^2", "every version of b"."""
        ...

    def external(self, incompatibility: Incompatibility) -> str:
        """A root, dependency or no-versions incompatibility as a clause."""
        ...

    def failure(self) -> str:
        """The conclusion: the root's requirements cannot all be met."""
        ...


def _statement(incompatibility: Incompatibility, namer: Namer) -> str:
    """What a derived incompatibility says, in words."""
    if incompatibility.kind != "derived":
        return namer.external(incompatibility)
    terms = incompatibility.terms
    if incompatibility.is_failure():
        return namer.failure()
    if len(terms) == 1:
        (term,) = terms
        if term.positive:
            return f"{namer.term(term)} cannot be used"
        return f"{namer.term(term.inverse())} is required"
    positives = [t for t in terms if t.positive]
    negatives = [t for t in terms if not t.positive]
    if len(positives) == 1 and negatives:
        needs = " and ".join(namer.term(t.inverse()) for t in negatives)
        return f"{namer.term(positives[0])} requires {needs}"
    if not negatives:
        names = [namer.term(t) for t in positives]
        return f"{', '.join(names[:-1])} and {names[-1]} cannot be used together"
    return (
        "one of "
        + ", ".join(
            namer.term(t) if t.positive else "not " + namer.term(t.inverse()) for t in terms
        )
        + " must be false"
    )


def explain(failure: Incompatibility, namer: Namer) -> list[str]:
    """The derivation tree of ``failure`` as sentences, in pub's style: each sentence
    derives one fact from two earlier ones; facts used more than once are numbered."""
    uses: dict[int, int] = {}

    def count(node: Incompatibility) -> None:
        uses[id(node)] = uses.get(id(node), 0) + 1
        if uses[id(node)] == 1 and node.causes is not None:
            for cause in node.causes:
                count(cause)

    count(failure)
    lines: list[str] = []
    numbers: dict[int, int] = {}

    def derived(node: Incompatibility) -> bool:
        return node.causes is not None

    def write(node: Incompatibility, text: str, numbered: bool) -> None:
        text = text.removesuffix(".")
        if numbered:
            numbers[id(node)] = len(numbers) + 1
            text += f" ({numbers[id(node)]})"
        if text + "." not in lines:  # the same fact learned twice reads once
            lines.append(text + ".")

    def ref(node: Incompatibility) -> str:
        text = _statement(node, namer)
        return f"{text} ({numbers[id(node)]})" if id(node) in numbers else text

    def visit(node: Incompatibility, conclusion: bool = False) -> None:
        assert node.causes is not None
        numbered = conclusion or uses[id(node)] > 1
        first, second = node.causes
        says = _statement(node, namer)
        if derived(first) and derived(second):
            if id(first) in numbers and id(second) in numbers:
                write(node, f"because {ref(first)} and {ref(second)}, {says}.", numbered)
            elif id(first) in numbers or id(second) in numbers:
                done, todo = (first, second) if id(first) in numbers else (second, first)
                visit(todo)
                write(node, f"and because {ref(done)}, {says}.", numbered)
            else:
                simple = [
                    c
                    for c in (first, second)
                    if c.causes is not None and not any(map(derived, c.causes))
                ]
                if simple:
                    other = second if simple[0] is first else first
                    visit(other)
                    visit(simple[0])
                    write(node, f"thus, {says}.", numbered)
                else:
                    visit(first, conclusion=True)
                    visit(second)
                    write(node, f"and because {ref(first)}, {says}.", numbered)
        elif derived(first) or derived(second):
            inner, outer = (first, second) if derived(first) else (second, first)
            if id(inner) in numbers:
                write(node, f"because {ref(outer)} and {ref(inner)}, {says}.", numbered)
            elif (
                inner.causes is not None
                and uses[id(inner)] == 1
                and sum(map(derived, inner.causes)) == 1
            ):
                deep = next(c for c in inner.causes if derived(c))
                shallow = next(c for c in inner.causes if not derived(c))
                if id(deep) not in numbers:
                    visit(deep)
                    write(node, f"and because {ref(shallow)} and {ref(outer)}, {says}.", numbered)
                else:
                    write(
                        node,
                        f"because {ref(shallow)} and {ref(deep)} and {ref(outer)}, {says}.",
                        numbered,
                    )
            else:
                visit(inner)
                write(node, f"and because {ref(outer)}, {says}.", numbered)
        else:
            write(node, f"because {ref(first)} and {ref(second)}, {says}.", numbered)

    if failure.causes is None:
        return [_statement(failure, namer) + "."]
    visit(failure, conclusion=False)
    return lines


def leaves(failure: Incompatibility) -> list[Incompatibility]:
    """The external incompatibilities the derivation rests on, each once, in order."""
    seen: set[int] = set()
    out: list[Incompatibility] = []
    stack = [failure]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.causes is None:
            out.append(node)
        else:
            stack.extend(reversed(node.causes))
    return out

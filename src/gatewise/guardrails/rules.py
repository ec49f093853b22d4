"""Rules and profiles: what a guardrail's findings mean for one text.

A ``Rule`` keeps the findings it cares about (its categories, at or over its
threshold) and says what to do with them; a ``Profile`` is the rules of one
name, split by side. ``inspect`` runs a side's rules over one text, each
guardrail once however many rules use it, and returns the ``Inspection``: the
verdicts to record, the first finding that blocks, the spans to mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from gatewise.core.context import GuardrailVerdict
from gatewise.guardrails.base import Finding, Guardrail, Span, TextRole

if TYPE_CHECKING:
    from gatewise.guardrails.screen import Screening

#: Stream modes, from the least to the most held back.
STREAM_MODES = ("window", "hold", "buffer")


@dataclass(frozen=True, slots=True)
class Rule:
    guardrail: Guardrail
    action: str  # block | mask | flag
    threshold: float = 0.5
    categories: frozenset[str] | None = None
    mask: str = "placeholder"  # placeholder | redact | hash
    stream: str = "hold"
    roles: frozenset[str] | None = None

    @property
    def name(self) -> str:
        return self.guardrail.name

    def keeps(self, finding: Finding) -> bool:
        return finding.score >= self.threshold and (
            self.categories is None or finding.category in self.categories
        )

    def reads(self, role: str) -> bool:
        return self.roles is None or role in self.roles


@dataclass(slots=True)
class Inspection:
    """What a side's rules decided about one text."""

    verdicts: list[GuardrailVerdict] = field(default_factory=list)
    #: The rule and finding that block, if one does (the first one found).
    blocked: tuple[Rule, Finding] | None = None
    #: Spans to replace, each with its rule's mask style.
    masks: list[tuple[Span, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Profile:
    name: str
    input_rules: tuple[Rule, ...] = ()
    output_rules: tuple[Rule, ...] = ()
    canary: bool = False
    #: What a reply revealing the canary gets (block or flag), and its stream mode.
    leak_action: str = "block"
    leak_stream: str = "hold"
    #: The HMAC key of ``hash`` masking (None: one random key per process).
    hash_key: bytes | None = None
    #: What tells, per text, which input rules may find anything (None: all run).
    input_screening: Screening | None = None
    #: The same for the output rules (a reply's text, or a stream's window of it).
    output_screening: Screening | None = None

    @property
    def rewrites_input(self) -> bool:
        """Whether calls of this profile may send upstream something the client did not."""
        return self.canary or any(rule.action == "mask" for rule in self.input_rules)

    @property
    def watches_output(self) -> bool:
        """Whether replies need reading: output rules, or placeholders to give back."""
        return (
            bool(self.output_rules)
            or self.canary
            or any(
                rule.action == "mask" and rule.mask == "placeholder" for rule in self.input_rules
            )
        )

    def rules_of(self, names: tuple[str, ...]) -> tuple[Rule, ...]:
        """The input rules of the guardrails ``names``: the same tuple each time (the
        screen keeps its choices per tuple of rules)."""
        made = self._subsets.get(names)
        if made is None:
            made = self._subsets[names] = tuple(r for r in self.input_rules if r.name in names)
        return made

    @cached_property
    def _subsets(self) -> dict[tuple[str, ...], tuple[Rule, ...]]:
        return {}

    @cached_property
    def stream_mode(self) -> str:
        """The most cautious stream mode of the output rules (one reading per stream)."""
        modes = [STREAM_MODES.index(rule.stream) for rule in self.output_rules]
        if self.canary:
            modes.append(STREAM_MODES.index(self.leak_stream))
        return STREAM_MODES[max(modes)] if modes else "window"


async def inspect(
    rules: Sequence[Rule],
    text: str,
    role: TextRole,
    direction: str,
    index: int = -1,
    *,
    base: int = 0,
    once: bool = False,
) -> Inspection:
    """Run ``rules`` over ``text`` (written by ``role``). ``base`` is added to span offsets
    (a piece of a longer text); ``index`` says which text, for the verdicts; ``once``: the
    text will not be read again (guardrails that remember texts need not keep it)."""
    result = Inspection()
    if not text:
        return result
    seen: dict[int, Sequence[Finding]] = {}
    for rule in rules:
        if not rule.reads(role):
            continue
        guardrail = rule.guardrail
        findings = seen.get(id(guardrail))
        if findings is None:
            scan = getattr(guardrail, "scan_once", guardrail.scan) if once else guardrail.scan
            findings = await scan(text, role)
            seen[id(guardrail)] = findings
        for finding in findings:
            if not rule.keeps(finding):
                continue
            spans = finding.spans
            if len(spans) > 1:
                spans = _merged(spans)
            if base:
                spans = tuple(Span(s.start + base, s.end + base, s.type) for s in spans)
            result.verdicts.append(
                GuardrailVerdict(
                    finding.guardrail,
                    finding.category,
                    round(finding.score, 4),
                    rule.action,
                    direction,
                    index,
                    tuple((s.start, s.end, s.type) for s in spans),
                )
            )
            if rule.action == "block":
                if result.blocked is None:
                    result.blocked = (rule, finding)
            elif rule.action == "mask":
                result.masks.extend((span, rule.mask) for span in spans)
    return result


def _merged(spans: tuple[Span, ...]) -> tuple[Span, ...]:
    """Spans of one finding, overlapping ones joined (a detector may match one phrase
    with two patterns)."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and span.start < out[-1].end:
            last = out[-1]
            if span.end > last.end:
                out[-1] = Span(last.start, span.end, last.type)
            continue
        out.append(span)
    return tuple(out)

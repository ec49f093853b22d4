"""Reading a reply on its way to the client: output rules, canary, placeholders back.

A reply is read as *channels*: each choice's text, and each of its tool calls'
arguments. A channel keeps the text that came so far, what was released to the
client (``cursor``) and the replacements decided for the part not yet released
(masks, and placeholders turned back into the caller's values).

On a stream, chunks are held back whole, never split or merged: a chunk is
released once every text piece it carries is *settled*, that is, no match or
placeholder can still grow across its end. How much is held depends on the
profile's stream mode: ``window`` releases at once (checking the new text with a
little context), ``hold`` keeps back only what may still be a value in progress
(``held_tail``: the last word, digit groups, an open key block; at most ``HOLD``
characters), ``buffer`` releases nothing until the choice is finished. A
replacement is written into the chunk where its text starts, and the text it
replaces is taken out of the chunks that follow; a placeholder split over three
chunks comes out as the value in the first and nothing in the other two.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from gatewise.core.context import GuardrailVerdict, RequestContext
from gatewise.core.errors import GuardrailViolationError
from gatewise.core.types import ChatChunk, ChatResponse, FunctionCall
from gatewise.guardrails.base import Span
from gatewise.guardrails.masking import Replacement, Vault, apply, mask_spans
from gatewise.guardrails.rules import Profile, inspect

#: The most a ``hold`` stream keeps back (a private key block is held whole up to
#: ``HOLD_BLOCK``): more than any value a rule masks in one piece.
HOLD = 256
HOLD_BLOCK = 8192
#: What may separate the digit groups of one value (card and phone numbers, IBANs).
_GROUP_SEPARATORS = frozenset(" \t-.()/+")
#: The end of a private key block: held until its closing line is complete.
_BLOCK_END = re.compile(r"-----END[^-\n]*-----")
#: Characters before the unreleased text that each reading of a stream looks back at.
CONTEXT = 64
#: Released characters a channel drops at once (see ``Channel.trim``).
TRIM = 4096


class Channel:
    """One text of a reply (a choice's content, or a tool call's arguments)."""

    __slots__ = (
        "base",
        "cursor",
        "ended",
        "is_json",
        "key",
        "recorded",
        "replacements",
        "safe",
        "text",
    )

    def __init__(self, key: tuple[int, int], is_json: bool) -> None:
        self.key = key
        self.is_json = is_json
        # The text from offset ``base`` on: what was released long ago is dropped (``trim``),
        # so a long stream costs neither memory nor copying in proportion to its length.
        # Every other offset here counts from the start of the whole text.
        self.text = ""
        self.base = 0
        self.cursor = 0  # offset released so far
        self.safe = 0  # offset up to which text is settled
        self.ended = False
        self.replacements: list[Replacement] = []  # decided, not yet released; ordered
        self.recorded: set[tuple[str, str, int]] = set()

    def emit(self, upto: int) -> str:
        """The client's text for ``text[cursor:upto]`` (extended over a replacement that
        starts before ``upto``), with the replacements made; moves the cursor."""
        start = self.cursor
        if upto <= start:
            return ""
        end = upto
        taken: list[Replacement] = []
        while self.replacements and self.replacements[0].start < end:
            rep = self.replacements.pop(0)
            end = max(end, rep.end)
            taken.append(Replacement(rep.start - start, rep.end - start, rep.text))
        self.cursor = end
        base = self.base
        return apply(self.text[start - base : end - base], taken)

    @property
    def end(self) -> int:
        return self.base + len(self.text)

    def trim(self) -> None:
        """Drop released text, keeping the ``CONTEXT`` before the cursor (once enough
        has gone to be worth a copy)."""
        cut = self.cursor - CONTEXT - self.base
        if cut >= TRIM:
            self.text = self.text[cut:]
            self.base += cut


@dataclass(slots=True)
class _Held:
    chunk: ChatChunk
    pieces: list[tuple[Channel, int, int]]  # channel, the piece's end, tool-call slot (-1: text)


class OutputReader:
    """The output side of one call under one profile."""

    def __init__(
        self, profile: Profile, ctx: RequestContext, vault: Vault | None, canary: str | None
    ) -> None:
        self.profile = profile
        self.ctx = ctx
        self.vault = vault if vault else None
        self.canary = canary.lower() if canary else None
        self.mode = profile.stream_mode
        self.channels: dict[tuple[int, int], Channel] = {}
        self.held: deque[_Held] = deque()

    # --- a complete reply -------------------------------------------------------------

    async def read_reply(self, reply: ChatResponse) -> ChatResponse:
        for choice in reply.choices:
            message = choice.message
            if message.content:
                message.content = await self._whole(
                    Channel((choice.index, -1), False), message.content
                )
            for k, call in enumerate(message.tool_calls or ()):
                if call.function.arguments:
                    text = await self._whole(
                        Channel((choice.index, k), True), call.function.arguments
                    )
                    call.function = FunctionCall(call.function.name, text)
        return reply

    async def _whole(self, channel: Channel, text: str) -> str:
        channel.text = text
        channel.ended = True
        await self._settle(channel)
        return channel.emit(len(text))

    # --- a stream ---------------------------------------------------------------------

    async def read_chunks(self, chunks: list[ChatChunk], *, end: bool = False) -> list[ChatChunk]:
        touched: dict[int, Channel] = {}
        for chunk in chunks:
            pieces: list[tuple[Channel, int, int]] = []
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    channel = self._channel((choice.index, -1), False)
                    channel.text += delta.content
                    pieces.append((channel, channel.end, -1))
                    touched[id(channel)] = channel
                for slot, tool in enumerate(delta.tool_calls or ()):
                    function = tool.function
                    if function is not None and function.arguments:
                        channel = self._channel((choice.index, tool.index), True)
                        channel.text += function.arguments
                        pieces.append((channel, channel.end, slot))
                        touched[id(channel)] = channel
                if choice.finish_reason is not None:
                    for channel in self.channels.values():
                        if channel.key[0] == choice.index and not channel.ended:
                            channel.ended = True
                            touched[id(channel)] = channel
            self.held.append(_Held(chunk, pieces))
        if end:
            for channel in self.channels.values():
                if not channel.ended:
                    channel.ended = True
                    touched[id(channel)] = channel
        for channel in touched.values():
            await self._settle(channel)
        return self._release()

    def _channel(self, key: tuple[int, int], is_json: bool) -> Channel:
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = Channel(key, is_json)
        return channel

    def _release(self) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        held = self.held
        while held and all(end <= channel.safe for channel, end, _slot in held[0].pieces):
            item = held.popleft()
            for channel, end, slot in item.pieces:
                self._write(item.chunk, channel, slot, channel.emit(end))
                channel.trim()
            out.append(item.chunk)
        return out

    @staticmethod
    def _write(chunk: ChatChunk, channel: Channel, slot: int, text: str) -> None:
        choice_index = channel.key[0]
        for choice in chunk.choices:
            if choice.index != choice_index:
                continue
            if slot < 0:
                choice.delta.content = text
            else:
                tool = choice.delta.tool_calls[slot]  # type: ignore[index]
                name = tool.function.name if tool.function is not None else None
                tool.function = FunctionCall(name, text)
            return

    # --- deciding ---------------------------------------------------------------------

    async def _settle(self, channel: Channel) -> None:
        """Check the channel's unreleased text and decide how far it is settled. Offsets
        count from the start of the whole text; ``text`` starts at ``base``."""
        text, base, cursor = channel.text, channel.base, channel.cursor
        total = base + len(text)
        if channel.ended:
            safe = total
        elif self.mode == "buffer":
            channel.safe = cursor
            return
        elif self.mode == "hold":
            safe = base + held_tail(text, cursor - base)
        else:
            safe = total
        vault = self.vault
        if vault is not None and not channel.ended:
            safe = min(safe, max(cursor, base + vault.open_tail(text)))
        pending = channel.replacements
        start = pending[-1].end if pending else cursor
        low = max(base, cursor - CONTEXT)
        found: list[Replacement] = []
        if self.canary is not None and self.canary in text[low - base :].lower():
            self._leak(channel)
        rules = self.profile.output_rules
        window = text[low - base :]
        screening = self.profile.output_screening
        if rules and screening is not None:
            rules = screening.rules_for(rules, window, "assistant")
        if rules:
            seen = await inspect(rules, window, "assistant", "output", base=low, once=True)
            if seen.blocked is not None:
                rule, finding = seen.blocked
                self._record(channel, seen.verdicts)
                self._block(channel, rule.name, finding.category, None)
            # A value whose start is already out (window mode) still has its rest masked.
            masks = [
                (
                    Span(max(span.start, start) - base, span.end - base, span.type),
                    "redact" if style == "placeholder" else style,
                )
                for span, style in seen.masks
                if span.end > start
            ]
            if masks:
                found += [
                    Replacement(rep.start + base, rep.end + base, rep.text)
                    for rep in mask_spans(text, masks, None, self.profile.hash_key)
                ]
            self._record(channel, seen.verdicts, settled=safe)
        if vault is not None:
            found += [
                Replacement(rep.start + start, rep.end + start, rep.text)
                for rep in vault.unmask(text[start - base :], escape=channel.is_json)
            ]
        if found:
            found.sort(key=lambda rep: rep.start)
            last = start
            for rep in found:
                if rep.start < last:
                    continue  # overlaps one already decided
                if rep.end > safe:
                    safe = min(safe, rep.start)
                    break
                pending.append(rep)
                last = rep.end
        channel.safe = safe

    def _record(
        self, channel: Channel, verdicts: list[GuardrailVerdict], settled: int | None = None
    ) -> None:
        """Record each finding once, though the text around it is read more than once."""
        for verdict in verdicts:
            first = verdict.spans[0][0] if verdict.spans else -1
            if settled is not None and verdict.spans and verdict.spans[-1][1] > settled:
                continue  # may still grow: recorded once settled
            key = (verdict.guardrail, verdict.category, first)
            if key in channel.recorded:
                continue
            channel.recorded.add(key)
            self.ctx.guardrails.append(verdict)

    def _leak(self, channel: Channel) -> None:
        """The reply revealed the canary of the system prompt."""
        action = self.profile.leak_action
        key = ("system_prompt_leak", "canary", -1)
        if key not in channel.recorded:
            channel.recorded.add(key)
            self.ctx.guardrails.append(
                GuardrailVerdict("system_prompt_leak", "canary", 1.0, action, "output")
            )
        if action == "block":
            self._block(
                channel, "system_prompt_leak", "canary", "The reply revealed the system prompt."
            )

    def _block(self, channel: Channel, guardrail: str, category: str, message: str | None) -> None:
        self.ctx.decisions.append(f"guardrail:block:{guardrail}")
        raise GuardrailViolationError(
            guardrail,
            category,
            message or f"The reply was stopped by the {guardrail} guardrail ({category}).",
        )


def held_tail(text: str, released: int) -> int:
    """Where the text a ``hold`` stream keeps back starts: the last word (a value in
    progress has no spaces: an email, a key, a token), extended back over groups of digits
    and capitals (a card, phone number or IBAN arrives as groups), or an unfinished private
    key block.
    At most ``HOLD`` characters are held (``HOLD_BLOCK`` for a key block)."""
    total = len(text)
    low = max(released, total - HOLD)
    start = total
    while start > low and not text[start - 1].isspace():
        start -= 1
    while start > low:
        gap = start
        while gap > low and text[gap - 1] in _GROUP_SEPARATORS:
            gap -= 1
        digits = gap
        while digits > low and (text[digits - 1].isdigit() or text[digits - 1].isupper()):
            digits -= 1  # upper-case letters too: an IBAN's groups (DE89 3704, GB82 WEST)
        if digits == gap:
            break
        start = digits
    while start > low and text[start - 1] in "+(":
        start -= 1  # an international prefix, an area code's parenthesis
    block = text.rfind("-----BEGIN", max(released, total - HOLD_BLOCK))
    if block >= 0 and not _BLOCK_END.search(text, block):
        start = min(start, block)
    return max(start, released)

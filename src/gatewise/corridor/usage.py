"""What a call used, when the upstream did not say: counted by the gateway, marked estimated.

The prompt side is the call's one prompt count (``Call.prompt_tokens``); the
completion side is the text that went back, counted with the model's encoding
once the tokenizer has loaded (the byte heuristic until then; never blocking).
"""

from __future__ import annotations

from gatewise.core.tokens import quick_count_text
from gatewise.core.types import ChatResponse, EmbeddingResponse, EmbeddingUsage, Usage
from gatewise.corridor.call import Call


def counting_model(call: Call) -> str:
    """The model whose encoding counts the reply: the deployment that answered."""
    attempts = call.ctx.attempts
    return attempts[-1].model if attempts else call.model


def estimated_usage(call: Call, completion_text: str) -> Usage:
    prompt = call.prompt_tokens()
    completion = quick_count_text(completion_text, counting_model(call))
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def record_chat_usage(call: Call, response: ChatResponse) -> None:
    """The reply's usage on the context, or an estimate marked as such."""
    ctx = call.ctx
    ctx.response_model = response.model or None
    ctx.finish_reasons = [c.finish_reason for c in response.choices if c.finish_reason]
    if response.usage is not None:
        ctx.usage = response.usage
        return
    texts = []
    for choice in response.choices:
        message = choice.message
        if message.content:
            texts.append(message.content)
        for tool_call in message.tool_calls or ():
            texts.append((tool_call.function.name or "") + (tool_call.function.arguments or ""))
    ctx.usage = estimated_usage(call, "".join(texts))
    ctx.usage_estimated = True


def record_embedding_usage(call: Call, response: EmbeddingResponse) -> None:
    """The reply's usage on the context; an upstream that reports none (Gemini) gets the
    gateway's count, on the reply too, marked estimated."""
    ctx = call.ctx
    reported = response.usage
    if reported is None:
        tokens = call.prompt_tokens()
        response.usage = reported = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        ctx.usage_estimated = True
    ctx.usage = Usage(prompt_tokens=reported.prompt_tokens, total_tokens=reported.total_tokens)

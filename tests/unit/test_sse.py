from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gatewise.providers.sse import SSEDecoder


def test_events_split_across_reads() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a"') == []
    assert decoder.feed(b":1}\n\ndata: [DONE]\n\n") == [(None, b'{"a":1}'), (None, b"[DONE]")]
    assert decoder.pending == b""


def test_named_events_comments_crlf_and_multiline_data() -> None:
    decoder = SSEDecoder()
    stream = (
        b': keep-alive\r\n\r\nevent: message_start\r\ndata: {"x":1}\r\n\r\ndata: a\ndata: b\n\n'
    )
    assert decoder.feed(stream) == [("message_start", b'{"x":1}'), (None, b"a\nb")]


@given(
    st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
        max_size=8,
    ),
    st.data(),
)
def test_any_split_of_a_stream_gives_the_same_events(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(b"data: " + p + b"\n\n" for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    decoder = SSEDecoder()
    events = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        events += decoder.feed(stream[previous:cut])
        previous = cut
    assert [e[1] for e in events] == payloads

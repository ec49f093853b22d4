"""The RESP2 codec of the counter store's Redis client: packing, parsing, URLs."""

from __future__ import annotations

import pytest

from gatewise.state.resp import Address, Parser, ProtocolError, RespError, pack


def parse_all(data: bytes) -> list[object]:
    parser = Parser()
    parser.feed(data)
    replies = []
    while (reply := parser.gets()) is not Parser.MORE:
        replies.append(reply)
    return replies


def test_pack_writes_an_array_of_bulk_strings() -> None:
    assert pack(("EVALSHA", "ab", 2, b"k\r\n")) == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$3\r\nk\r\n\r\n"
    )
    assert pack(("SET", "é")) == b"*2\r\n$3\r\nSET\r\n$2\r\n\xc3\xa9\r\n"


def test_every_reply_type() -> None:
    data = (
        b"+OK\r\n"
        b":-42\r\n"
        b"$5\r\nhe\r\nl\r\n"  # a bulk string may hold CRLF
        b"$0\r\n\r\n"
        b"$-1\r\n"
        b"*-1\r\n"
        b"*0\r\n"
        b"-NOSCRIPT No matching script\r\n"
    )
    replies = parse_all(data)
    assert replies[:7] == [b"OK", -42, b"he\r\nl", b"", None, None, []]
    error = replies[7]
    assert isinstance(error, RespError) and str(error) == "NOSCRIPT No matching script"


def test_nested_arrays_with_errors_inside() -> None:
    data = b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n-ERR inner\r\n*1\r\n*0\r\n"
    [reply] = parse_all(data)
    assert isinstance(reply, list)
    assert reply[0] == 1 and reply[2] == [[]]
    inner = reply[1]
    assert isinstance(inner, list) and inner[0] == b"a"
    assert isinstance(inner[1], RespError) and str(inner[1]) == "ERR inner"


def test_replies_split_at_every_byte_come_out_whole_and_in_order() -> None:
    data = b"*2\r\n$3\r\nabc\r\n:7\r\n$2\r\nxy\r\n:8\r\n"
    parser = Parser()
    replies = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        while (reply := parser.gets()) is not Parser.MORE:
            replies.append(reply)
    assert replies == [[b"abc", 7], b"xy", 8]


def test_an_unknown_reply_type_is_a_protocol_error() -> None:
    parser = Parser()
    parser.feed(b"%1\r\n")  # a RESP3 map: never sent to a RESP2 client
    with pytest.raises(ProtocolError):
        parser.gets()


def test_addresses_from_urls() -> None:
    plain = Address.from_url("redis://127.0.0.1:6380/2")
    assert (plain.host, plain.port, plain.db, plain.tls, plain.password) == (
        "127.0.0.1",
        6380,
        2,
        False,
        None,
    )
    assert plain.name == "127.0.0.1:6380/2"
    secret = Address.from_url("rediss://bob:p%40ss%3Aw@cache.internal")
    assert (secret.username, secret.password, secret.tls) == ("bob", "p@ss:w", True)
    assert secret.name == "cache.internal:6379/0" and "p@ss" not in repr(secret.name)
    assert Address.from_url("redis://:pw@h/0").password == "pw"
    assert Address.from_url("redis://:pw@h/0").username is None
    unix = Address.from_url("unix:///run/redis.sock?db=3")
    assert (unix.path, unix.db, unix.name) == ("/run/redis.sock", 3, "unix:/run/redis.sock")
    with pytest.raises(ValueError):
        Address.from_url("http://h:6379")

"""The route table: static paths, one-segment and rest-of-path parameters."""

from __future__ import annotations

import pytest

from gatewise.http.routes import Endpoint, RouteTable


class Errors:
    async def send_error(self, *args: object) -> None:
        return None


async def handler(*args: object) -> None:
    return None


def endpoint() -> Endpoint:
    return Endpoint({"GET": handler}, Errors())


def test_static_paths_and_parameters() -> None:
    models, model, responses, items, infer, prompt = (endpoint() for _ in range(6))
    table = RouteTable(
        [
            ("/v1/models", models),
            ("/v1/models/{model:path}", model),
            ("/v1/responses/{response_id}", responses),
            ("/v1/responses/{response_id}/input_items", items),
            ("/v2/models/{name}/versions/{version}/infer", infer),
            ("/api/{prompt}", prompt),
        ]
    )
    assert table.match("/v1/models") == (models, {})
    assert table.match("/v1/models/meta-llama/Llama-3-8B") == (
        model,
        {"model": "meta-llama/Llama-3-8B"},
    )
    assert table.match("/v1/responses/resp_1") == (responses, {"response_id": "resp_1"})
    assert table.match("/v1/responses/resp_1/input_items") == (items, {"response_id": "resp_1"})
    assert table.match("/v2/models/iris/versions/3/infer") == (
        infer,
        {"name": "iris", "version": "3"},
    )
    assert table.match("/api/sentiment") == (prompt, {"prompt": "sentiment"})


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/",  # an empty rest
        "/v1/responses//input_items",  # an empty segment
        "/v1/responses/resp_1/other",
        "/v1/responses/resp_1/input_items/more",
        "/v2/models/iris/versions/3",
        "/api/sentiment/v3/extra",
        "/v1/chat/completions",
        "/",
    ],
)
def test_paths_no_route_serves(path: str) -> None:
    table = RouteTable(
        [
            ("/v1/models/{model:path}", endpoint()),
            ("/v1/responses/{response_id}", endpoint()),
            ("/v1/responses/{response_id}/input_items", endpoint()),
            ("/v2/models/{name}/versions/{version}/infer", endpoint()),
            ("/api/{prompt}", endpoint()),
            ("/api/{prompt}/{version}", endpoint()),
        ]
    )
    assert table.match(path) is None


@pytest.mark.parametrize(
    "path",
    ["v1/models", "/a/{b:path}/c", "/a/{b c}", "/a/x{b}", "/a/{b:int}"],
)
def test_malformed_patterns_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        RouteTable([(path, endpoint())])


def test_a_path_twice_is_refused() -> None:
    with pytest.raises(ValueError):
        RouteTable([("/v1/models", endpoint()), ("/v1/models", endpoint())])

"""Who may call what, through the real front doors, SDKs and a gateway in keys mode.

The records are seeded in the gateway's SQLite store before it starts;
changes made during a test (revoke, approve, disable) go to the same store
from the test's thread, and the gateway must notice them within a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from gatewise.identity.records import Status
from gatewise.identity.roles import Role
from gatewise.store.identity import IdentityStore
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import request

HELLO = [{"role": "user", "content": "hello"}]


@dataclass
class World:
    gateway: RunningGateway
    store_url: str
    keys: dict[str, str]  # name -> plaintext
    ids: dict[str, str]  # name -> record id

    def change(self, action: Callable[[IdentityStore], Any]) -> Any:
        return with_store(self.store_url, action)


async def seed(store: IdentityStore) -> tuple[dict[str, str], dict[str, str]]:
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    acme = await store.create_tenant(ACTOR, name="acme")
    globex = await store.create_tenant(ACTOR, name="globex")
    team = await store.create_team(ACTOR, tenant_id=acme.id, name="ml")
    svc = await store.create_app(
        ACTOR, tenant_id=acme.id, team_id=team.id, name="svc", allowed_models=["mock-*", "prod-gpt"]
    )
    narrow = await store.create_app(ACTOR, tenant_id=acme.id, name="narrow")
    outsider = await store.create_app(ACTOR, tenant_id=globex.id, name="outsider")
    viewer = await store.create_user(
        ACTOR, email="v@acme.test", role=Role.VIEWER, tenant_id=acme.id
    )
    ids.update(acme=acme.id, globex=globex.id, svc=svc.id, narrow=narrow.id)
    for name, owner, extra in (
        ("svc", {"app_id": svc.id}, {}),
        ("svc2", {"app_id": svc.id}, {}),
        ("narrow", {"app_id": narrow.id}, {"allowed_models": ["mock-gpt"]}),
        ("outsider", {"app_id": outsider.id}, {}),
        ("viewer", {"user_id": viewer.id}, {}),
        ("expiring", {"app_id": svc.id}, {"expires_at": time.time() + 1.5}),
    ):
        record, plaintext = await store.create_key(ACTOR, name=name, **owner, **extra)
        keys[name], ids["key:" + name] = plaintext, record.id
    return keys, ids


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("auth")
    store_url = f"sqlite+aiosqlite:///{folder}/gatewise.db"
    keys, ids = with_store(store_url, seed)
    config = {
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": {"mock": {"type": "mock"}},
        "models": [
            {"name": name, "deployments": [{"provider": "mock", "model": name}], **extra}
            for name, extra in (
                ("mock-gpt", {}),
                ("mock-embed", {}),
                ("prod-gpt", {"approval": "required"}),
                ("other-gpt", {}),
            )
        ],
    }
    with run_gateway_in_thread(config) as gateway:
        yield World(gateway, store_url, keys, ids)


def oai(world: World, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=world.gateway.openai_base_url, api_key=key, max_retries=0)


def claude(world: World, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=world.gateway.url, api_key=key, max_retries=0)


def chat(world: World, key: str, model: str = "mock-gpt") -> str | None:
    reply = oai(world, key).chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    return reply.choices[0].message.content


def eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    """Seconds until ``check()`` held (fails the test after ``within``)."""
    start = time.perf_counter()
    while not check():
        assert time.perf_counter() - start < within, "the gateway did not notice in time"
        time.sleep(0.02)
    return time.perf_counter() - start


def status_of(world: World, key: str, model: str = "mock-gpt") -> int:
    reply = request(
        "POST",
        world.gateway.url + "/v1/chat/completions",
        {"model": model, "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
    )
    return reply.status


# --- authentication -----------------------------------------------------------------


def test_a_valid_key_works_in_every_credential_header(world: World) -> None:
    key = world.keys["svc"]
    assert chat(world, key) == "Mock reply to: hello"
    for header in ({"x-api-key": key}, {"api-key": key}, {"authorization": f"bearer {key}"}):
        reply = request(
            "POST",
            world.gateway.url + "/v1/chat/completions",
            {"model": "mock-gpt", "messages": HELLO},
            headers=header,
        )
        assert reply.status == 200, (header.keys(), reply.body)
    message = claude(world, key).messages.create(model="mock-gpt", max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    assert message.content[0].text == "Mock reply to: hello"  # type: ignore[union-attr]


def test_no_credential_is_401_in_each_front_doors_format(world: World) -> None:
    reply = request("POST", world.gateway.url + "/v1/chat/completions", {"model": "mock-gpt"})
    assert reply.status == 401
    assert reply.json["error"]["code"] == "invalid_api_key"
    assert "didn't provide an API key" in reply.json["error"]["message"]
    reply = request(
        "POST",
        world.gateway.url + "/v1/messages",
        {"model": "mock-gpt"},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert reply.status == 401
    assert reply.json["type"] == "error"
    assert reply.json["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    "credential",
    [
        "gw-unknownkid01_" + "A" * 43,  # our shape, unknown kid
        "gw-short",  # malformed
        "sk-not-a-gateway-key",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  # a JWT, but no issuer is configured
    ],
)
def test_unknown_and_malformed_credentials_are_401(world: World, credential: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(world, credential)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert credential not in caught.value.message
    with pytest.raises(anthropic.AuthenticationError):
        claude(world, credential).messages.create(model="mock-gpt", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]


def test_a_tampered_secret_of_a_real_kid_is_401(world: World) -> None:
    key = world.keys["svc"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert status_of(world, tampered) == 401


def test_a_key_stops_working_when_it_expires(world: World) -> None:
    eventually(lambda: status_of(world, world.keys["expiring"]) == 401, within=3.0)
    with pytest.raises(openai.AuthenticationError):
        chat(world, world.keys["expiring"])


# --- authorization --------------------------------------------------------------------


def test_a_model_outside_the_allow_list_is_403_in_both_formats(world: World) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat(world, world.keys["svc"], model="other-gpt")
    assert caught.value.code == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        claude(world, world.keys["narrow"]).messages.create(
            model="mock-embed",
            max_tokens=8,
            messages=HELLO,  # type: ignore[arg-type]
        )
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]


def test_a_role_without_models_call_is_403(world: World) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat(world, world.keys["viewer"])
    assert "may not call models" in caught.value.message


def test_models_lists_only_what_the_caller_may_use(world: World) -> None:
    listed = {m.id for m in oai(world, world.keys["svc"]).models.list()}
    assert listed == {"mock-gpt", "mock-embed"}  # prod-gpt needs an approved subscription
    assert {m.id for m in oai(world, world.keys["narrow"]).models.list()} == {"mock-gpt"}
    anthropic_listed = {m.id for m in claude(world, world.keys["narrow"]).models.list()}
    assert anthropic_listed == {"mock-gpt"}
    with pytest.raises(openai.NotFoundError):
        oai(world, world.keys["narrow"]).models.retrieve("other-gpt")


def test_a_model_that_needs_approval_opens_only_after_approval(world: World) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat(world, world.keys["svc"], model="prod-gpt")
    assert caught.value.code == "subscription_required"
    svc = world.ids["svc"]

    async def request_and_approve(store: IdentityStore) -> str:
        pending = await store.request_subscription(ACTOR, app_id=svc, model="prod-gpt")
        assert status_of(world, world.keys["svc"], "prod-gpt") == 403  # pending is not approved
        approved = await store.approve_subscription(ACTOR, pending.id, reason="ok")
        return approved.id

    subscription = world.change(request_and_approve)
    eventually(lambda: status_of(world, world.keys["svc"], "prod-gpt") == 200)
    assert "prod-gpt" in {m.id for m in oai(world, world.keys["svc"]).models.list()}
    # Another app of the same tenant is not covered by svc's subscription.
    assert status_of(world, world.keys["narrow"], "prod-gpt") == 403
    world.change(lambda store: store.revoke_subscription(ACTOR, subscription, reason="done"))
    eventually(lambda: status_of(world, world.keys["svc"], "prod-gpt") == 403)


# --- changes take effect within a second ---------------------------------------------


def test_a_revoked_key_stops_working_within_a_second(world: World) -> None:
    key = world.keys["svc2"]
    assert status_of(world, key) == 200
    world.change(lambda store: store.revoke_key(ACTOR, world.ids["key:svc2"]))
    took = eventually(lambda: status_of(world, key) == 401)
    assert took < 1.0
    assert status_of(world, world.keys["svc"]) == 200  # the app's other key is untouched


def test_rotation_keeps_the_old_key_for_its_grace_period(world: World) -> None:
    new_record, new_key = world.change(
        lambda store: store.rotate_key(ACTOR, world.ids["key:narrow"], grace_seconds=60)
    )
    eventually(lambda: status_of(world, new_key) == 200)
    assert status_of(world, world.keys["narrow"]) == 200  # still inside its grace period
    # Rotating without grace retires the rotated key at once.
    _, newest = world.change(lambda store: store.rotate_key(ACTOR, new_record.id, grace_seconds=0))
    eventually(lambda: status_of(world, new_key) == 401)
    assert status_of(world, newest) == 200
    assert status_of(world, world.keys["narrow"]) == 200  # its own grace period still runs


def test_a_disabled_tenant_is_refused_and_a_reenabled_one_served(world: World) -> None:
    key = world.keys["outsider"]
    assert status_of(world, key) == 200
    globex = world.ids["globex"]
    world.change(lambda store: store.update_tenant(ACTOR, globex, status=Status.DISABLED))
    eventually(lambda: status_of(world, key) == 403)
    world.change(lambda store: store.update_tenant(ACTOR, globex, status=Status.ACTIVE))
    eventually(lambda: status_of(world, key) == 200)


# --- tenants' records stay apart --------------------------------------------------------


def test_stored_responses_belong_to_the_app_not_to_one_key(world: World) -> None:
    created = oai(world, world.keys["svc"]).responses.create(model="mock-gpt", input="remember")
    # Another key of the same app sees it (a rotated key keeps its conversations) ...
    _, second = world.change(
        lambda store: store.create_key(ACTOR, name="svc3", app_id=world.ids["svc"])
    )
    eventually(lambda: status_of(world, second) == 200)
    assert oai(world, second).responses.retrieve(created.id).id == created.id
    # ... another tenant's app does not, not even that it exists.
    with pytest.raises(openai.NotFoundError):
        oai(world, world.keys["outsider"]).responses.retrieve(created.id)


def test_health_probes_need_no_key(world: World) -> None:
    assert request("GET", world.gateway.url + "/healthz").status == 200
    assert request("GET", world.gateway.url + "/readyz").status == 200


def test_the_key_plaintext_is_nowhere_in_the_database(world: World) -> None:
    database = Path(world.store_url.removeprefix("sqlite+aiosqlite:///"))
    content = b"".join(
        p.read_bytes() for p in database.parent.iterdir() if p.name.startswith("gatewise.db")
    )
    for plaintext in world.keys.values():
        secret = plaintext.split("_", 1)[1]
        assert secret.encode() not in content


def test_an_open_gateway_still_closes_its_admin_api(gateway: RunningGateway) -> None:
    """auth.mode open serves models anonymously, never the admin API."""
    for headers in ({}, {"authorization": "Bearer sk-anything"}):
        reply = request("GET", gateway.url + "/admin/v1/me", headers=headers)
        assert reply.status == 401
        assert reply.json["error"]["code"] == "invalid_api_key"
        assert "auth.mode is open" in reply.json["error"]["message"]

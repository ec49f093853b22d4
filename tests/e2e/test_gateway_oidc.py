"""GitLab CI jobs call the gateway with their ``id_tokens`` JWT (the worked example).

Only protected branches of ``group/project`` may call the production model;
any pipeline of the ``group`` namespace may call the staging model. Tokens
come from a local issuer whose keys the test generates; the gateway fetches
its JWKS over loopback HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import openai
import pytest

from gatewise.store.identity import IdentityStore
from gatewise.testing import run_in_thread
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from gatewise.testing.oidc import FakeOIDCIssuer
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import request

HELLO = [{"role": "user", "content": "hello"}]


@dataclass
class Setup:
    gateway: RunningGateway
    issuer: FakeOIDCIssuer


async def seed(store: IdentityStore) -> None:
    acme = await store.create_tenant(ACTOR, name="acme")
    await store.create_team(ACTOR, tenant_id=acme.id, name="ml")
    await store.create_app(ACTOR, tenant_id=acme.id, name="deployer")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('oidc')}/gatewise.db"
    with_store(store_url, seed)
    with run_in_thread(FakeOIDCIssuer(audience="https://gateway.test")) as issuer:
        rules = [
            {
                "match": {"project_path": "group/project", "ref_protected": True},
                "tenant": "acme",
                "team": "ml",
                "app": "deployer",
                "models": ["prod-*", "staging-*"],
            },
            {
                "match": {"project_path": "group/platform", "ref_protected": True},
                "tenant": "acme",
                "role": "tenant_admin",
            },
            {
                "match": {"namespace_path": "group"},
                "tenant": "acme",
                "models": ["staging-*"],
            },
        ]
        config = {
            "auth": {"mode": "keys", "oidc": [issuer.config(rules, name="gitlab")]},
            "store": {"url": store_url},
            "providers": {"mock": {"type": "mock"}},
            "models": [
                {"name": name, "deployments": [{"provider": "mock", "model": name}]}
                for name in ("prod-gpt", "staging-gpt", "other-gpt")
            ],
        }
        with run_gateway_in_thread(config) as gateway:
            yield Setup(gateway, issuer)


def call(setup: Setup, token: str, model: str) -> str | None:
    client = openai.OpenAI(base_url=setup.gateway.openai_base_url, api_key=token, max_retries=0)
    reply = client.chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    return reply.choices[0].message.content


def test_a_protected_branch_of_the_project_calls_production(setup: Setup) -> None:
    token = setup.issuer.mint(setup.issuer.gitlab_claims(ref="main", ref_protected="true"))
    assert call(setup, token, "prod-gpt") == "Mock reply to: hello"
    assert call(setup, token, "staging-gpt") == "Mock reply to: hello"
    client = openai.OpenAI(base_url=setup.gateway.openai_base_url, api_key=token, max_retries=0)
    assert {m.id for m in client.models.list()} == {"prod-gpt", "staging-gpt"}


def test_an_unprotected_branch_gets_staging_only(setup: Setup) -> None:
    token = setup.issuer.mint(setup.issuer.gitlab_claims(ref="feature/x", ref_protected="false"))
    assert call(setup, token, "staging-gpt") == "Mock reply to: hello"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        call(setup, token, "prod-gpt")
    assert denied.value.code == "model_not_allowed"


def test_another_namespace_is_403(setup: Setup) -> None:
    claims = setup.issuer.gitlab_claims(project_path="intruder/project")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        call(setup, setup.issuer.mint(claims), "staging-gpt")
    assert "no auth.oidc rule" in denied.value.message


@pytest.mark.parametrize(
    "forge",
    [
        lambda i: i.mint(i.gitlab_claims(aud="https://someone-else.test")),
        lambda i: i.mint(i.gitlab_claims(iss="https://evil.test")),
        lambda i: i.mint(i.gitlab_claims(exp=1_000_000_000)),
        lambda i: i.mint_unsigned(i.gitlab_claims()),
        lambda i: i.mint_hs256_with_public_key(i.gitlab_claims()),
        lambda i: i.mint(i.gitlab_claims(), key_id=i.unpublished_kid),
        lambda i: i.tamper(
            i.mint(i.gitlab_claims(project_path="group/other")), project_path="group/project"
        ),
    ],
    ids=["audience", "issuer", "expired", "alg-none", "hs256-confusion", "unknown-key", "tampered"],
)
def test_forged_or_foreign_tokens_are_401_in_both_formats(setup: Setup, forge) -> None:  # type: ignore[no-untyped-def]
    token = forge(setup.issuer)
    with pytest.raises(openai.AuthenticationError):
        call(setup, token, "staging-gpt")
    client = anthropic.Anthropic(base_url=setup.gateway.url, api_key=token, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model="staging-gpt", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_oidc_callers_use_the_admin_api_with_their_rules_role(setup: Setup) -> None:
    issuer = setup.issuer
    admin_token = issuer.mint(issuer.gitlab_claims(project_path="group/platform"))
    headers = {"authorization": f"Bearer {admin_token}"}
    me = request("GET", setup.gateway.url + "/admin/v1/me", headers=headers)
    assert me.status == 200, me.body
    assert me.json["role"] == "tenant_admin" and me.json["kind"] == "oidc"
    apps = request("GET", setup.gateway.url + "/admin/v1/apps", headers=headers)
    assert [app["name"] for app in apps.json["data"]] == ["deployer"]
    consumer = issuer.mint(issuer.gitlab_claims(ref_protected="false"))
    denied = request(
        "GET", setup.gateway.url + "/admin/v1/apps", headers={"authorization": f"Bearer {consumer}"}
    )
    assert denied.status == 403
    forged = request(
        "GET",
        setup.gateway.url + "/admin/v1/me",
        headers={"authorization": f"Bearer {issuer.mint_unsigned(issuer.gitlab_claims())}"},
    )
    assert forged.status == 401

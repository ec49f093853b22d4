"""Authentication and model access from the in-memory directory (no database, no sockets)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gatewise.core.errors import AuthenticationError, PermissionDeniedError
from gatewise.identity.cache import IdentityCache
from gatewise.identity.keys import KEY_LENGTH, display_prefix, generate_key, hash_key, kid_of
from gatewise.identity.model_access import ModelAccess
from gatewise.identity.records import ApiKey, App, Snapshot, Status, Tenant, User
from gatewise.identity.roles import PERMISSIONS, Permission, Role, may_grant
from gatewise.policies.access import ModelAccessPolicy
from gatewise.policies.auth import Authenticator, presented_credential

TENANT = Tenant("ten_a", "acme", None, ["gpt-*", "claude-*"], Status.ACTIVE, 0.0, 0.0)
APP = App("app_a", "ten_a", None, "svc", Role.CONSUMER, ["gpt-*"], Status.ACTIVE, 0.0, 0.0)
VIEWER = User("usr_v", "ten_a", None, "v@a.test", Role.VIEWER, Status.ACTIVE, 0.0, 0.0)


def key_record(plaintext: str, kid: str, **fields: object) -> ApiKey:
    record = ApiKey(
        id=f"key_{kid}",
        kid=kid,
        prefix=display_prefix(kid),
        key_hash=hash_key(plaintext).hex(),
        tenant_id="ten_a",
        app_id="app_a",
        user_id=None,
        name="k",
        role=None,
        allowed_models=None,
    )
    return replace(record, **fields)  # type: ignore[arg-type]


class Source:
    def __init__(self, snapshot: Snapshot) -> None:
        self.current = snapshot

    async def version(self) -> int:
        return self.current.version

    async def snapshot(self) -> Snapshot:
        return self.current


def bearer(key: str) -> dict[bytes, bytes]:
    return {b"authorization": b"Bearer " + key.encode()}


NOW = 1_800_000_000.0  # the authenticator's wall clock, injected


@pytest.fixture
def clock() -> list[float]:
    return [NOW]


@pytest.fixture
async def setup(clock: list[float]) -> tuple[Authenticator, Source, dict[str, str]]:
    names = ("good", "expired", "expiring", "revoked", "narrow", "viewer")
    keys = {name: generate_key() for name in names}
    records = [
        key_record(keys["good"][1], keys["good"][0]),
        key_record(keys["expired"][1], keys["expired"][0], expires_at=NOW - 1),
        key_record(keys["expiring"][1], keys["expiring"][0], expires_at=NOW + 60),
        key_record(keys["revoked"][1], keys["revoked"][0], revoked_at=NOW - 1),
        key_record(keys["narrow"][1], keys["narrow"][0], allowed_models=["gpt-4o-mini"]),
        key_record(keys["viewer"][1], keys["viewer"][0], app_id=None, user_id="usr_v"),
    ]
    source = Source(Snapshot(1, [TENANT], [], [APP], [VIEWER], records, []))
    cache = IdentityCache(source, poll_seconds=3600)
    await cache.start()
    authenticator = Authenticator(cache, None, clock=lambda: clock[0])
    return authenticator, source, {name: key for name, (_, key) in keys.items()}


def test_generated_keys_have_the_documented_shape() -> None:
    kid, key = generate_key()
    assert key.startswith("gw-" + kid + "_") and len(key) == KEY_LENGTH
    assert kid_of(key.encode()) == kid
    assert kid_of(b"gw-" + b"x" * 10) is None
    assert generate_key()[1] != key


def test_credentials_are_read_from_the_three_headers_in_order() -> None:
    assert presented_credential({b"authorization": b"Bearer  abc "}) == b"abc"
    assert presented_credential({b"x-api-key": b"k1", b"api-key": b"k2"}) == b"k1"
    assert presented_credential({b"api-key": b"k2"}) == b"k2"
    assert presented_credential({b"authorization": b"Basic xyz"}) is None
    assert presented_credential({}) is None


async def test_a_good_key_gives_its_principal(
    setup: tuple[Authenticator, Source, dict[str, str]],
) -> None:
    auth, _, keys = setup
    principal = await auth.authenticate(bearer(keys["good"]))
    assert (principal.tenant_id, principal.app_id, principal.role) == (
        "ten_a",
        "app_a",
        Role.CONSUMER,
    )
    assert principal.owner == "app_a"
    assert principal.access.allows("gpt-4o") and not principal.access.allows("claude-3")


@pytest.mark.parametrize("name", ["expired", "revoked"])
async def test_expired_and_revoked_keys_are_401(
    setup: tuple[Authenticator, Source, dict[str, str]], name: str
) -> None:
    auth, _, keys = setup
    with pytest.raises(AuthenticationError):
        await auth.authenticate(bearer(keys[name]))


async def test_a_key_works_until_its_expiry_and_not_from_then_on(
    setup: tuple[Authenticator, Source, dict[str, str]], clock: list[float]
) -> None:
    auth, _, keys = setup
    clock[0] = NOW + 59.999
    assert (await auth.authenticate(bearer(keys["expiring"]))).app_id == "app_a"
    clock[0] = NOW + 60  # expires_at itself is already too late
    with pytest.raises(AuthenticationError):
        await auth.authenticate(bearer(keys["expiring"]))


async def test_a_wrong_secret_for_a_known_kid_is_401(
    setup: tuple[Authenticator, Source, dict[str, str]],
) -> None:
    auth, _, keys = setup
    good = keys["good"]
    with pytest.raises(AuthenticationError):
        await auth.authenticate(bearer(good[:-2] + ("zz" if not good.endswith("zz") else "yy")))


async def test_missing_credential_is_401_unless_open(
    setup: tuple[Authenticator, Source, dict[str, str]],
) -> None:
    auth, _, _ = setup
    with pytest.raises(AuthenticationError):
        await auth.authenticate({})
    auth.open_mode = True
    anonymous = await auth.authenticate({b"authorization": b"Bearer sk-whatever"})
    assert anonymous.kind == "anonymous" and anonymous.tenant_id is None
    with pytest.raises(AuthenticationError):  # a gw- key is still checked in open mode
        await auth.authenticate(bearer("gw-" + "a" * 12 + "_" + "b" * 43))


async def test_a_disabled_tenant_is_403_after_a_refresh(
    setup: tuple[Authenticator, Source, dict[str, str]],
) -> None:
    auth, source, keys = setup
    snapshot = source.current
    source.current = replace(snapshot, version=2, tenants=[replace(TENANT, status=Status.DISABLED)])
    assert await auth._cache.refresh()
    with pytest.raises(PermissionDeniedError, match="tenant is disabled"):
        await auth.authenticate(bearer(keys["good"]))
    assert not await auth._cache.refresh()  # same version: nothing reloaded


async def test_model_access_intersects_every_level(
    setup: tuple[Authenticator, Source, dict[str, str]],
) -> None:
    auth, _, keys = setup
    policy = ModelAccessPolicy(auth._cache, frozenset({"gpt-prod"}))
    narrow = await auth.authenticate(bearer(keys["narrow"]))
    policy.check(narrow, "gpt-4o-mini")
    with pytest.raises(PermissionDeniedError) as denied:
        policy.check(narrow, "gpt-4o")
    assert denied.value.code == "model_not_allowed"
    good = await auth.authenticate(bearer(keys["good"]))
    with pytest.raises(PermissionDeniedError) as needs:
        policy.check(good, "gpt-prod")
    assert needs.value.code == "subscription_required"
    viewer = await auth.authenticate(bearer(keys["viewer"]))
    with pytest.raises(PermissionDeniedError, match="may not call models"):
        policy.check(viewer, "gpt-4o")


def test_globs_and_unrestricted_levels() -> None:
    access = ModelAccess([None, ["gpt-4o*", "claude-3-haiku"], ["gpt-4o-mini", "claude-*"]])
    assert access.allows("gpt-4o-mini")
    assert not access.allows("gpt-4o")  # second list excludes it
    assert access.allows("claude-3-haiku")
    assert ModelAccess([None, None]).unrestricted


def test_the_permission_table_keeps_its_promises() -> None:
    assert PERMISSIONS[Role.PLATFORM_ADMIN] == frozenset(Permission)
    assert Permission.TENANTS_WRITE not in PERMISSIONS[Role.TENANT_ADMIN]
    assert Permission.MODELS_CALL not in PERMISSIONS[Role.VIEWER]
    assert Permission.SUBSCRIPTIONS_DECIDE not in PERMISSIONS[Role.DEVELOPER]
    for role in set(Role) - {Role.PLATFORM_ADMIN}:
        assert Permission.TENANTS_WRITE not in PERMISSIONS[role]
    assert may_grant(Role.TENANT_ADMIN, Role.DEVELOPER)
    assert not may_grant(Role.DEVELOPER, Role.TENANT_ADMIN)
    assert not may_grant(Role.TENANT_ADMIN, Role.PLATFORM_ADMIN)
    assert not may_grant(Role.CONSUMER, Role.VIEWER)  # same rank, but audit access is new
    assert not may_grant(Role.DEVELOPER, Role.VIEWER)
    assert may_grant(Role.VIEWER, Role.VIEWER)


async def test_key_hashes_are_compared_in_constant_time(
    setup: tuple[Authenticator, Source, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth, _, keys = setup
    await auth.authenticate(bearer(keys["good"]))
    with pytest.raises(AuthenticationError):  # an unknown kid is compared too
        await auth.authenticate(bearer(generate_key()[1]))
    assert len(compared) == 2
    assert all(len(a) == len(b) == 32 for a, b in compared)


def test_narrower_is_the_richest_role_below_both() -> None:
    from gatewise.identity.roles import narrower

    for first in Role:
        for second in Role:
            role = narrower(first, second)
            assert role == narrower(second, first)
            if role is not None:  # below both, and nothing richer is
                assert may_grant(first, role) and may_grant(second, role)
                richer = [
                    r for r in Role
                    if may_grant(first, r) and may_grant(second, r)
                    and len(PERMISSIONS[r]) > len(PERMISSIONS[role])
                ]  # fmt: skip
                assert not richer
    assert narrower(Role.TENANT_ADMIN, Role.VIEWER) is Role.VIEWER
    assert narrower(Role.DEVELOPER, Role.CONSUMER) is Role.CONSUMER
    assert narrower(Role.DEVELOPER, Role.VIEWER) is None
    assert narrower(Role.VIEWER, Role.CONSUMER) is None


def test_a_keys_role_is_narrowed_by_its_owners_current_role() -> None:
    from gatewise.identity.directory import Directory

    plain = {name: generate_key() for name in ("wide", "narrow", "misfit", "plain")}
    boss = replace(VIEWER, id="usr_b")  # a viewer now; its keys were made when it was more
    records = [
        key_record(plain["wide"][1], plain["wide"][0], app_id=None, user_id="usr_b",
                   role=Role.TENANT_ADMIN),
        key_record(plain["narrow"][1], plain["narrow"][0], app_id=None, user_id="usr_b",
                   role=Role.VIEWER),
        key_record(plain["misfit"][1], plain["misfit"][0], app_id=None, user_id="usr_b",
                   role=Role.DEVELOPER),
        key_record(plain["plain"][1], plain["plain"][0], app_id=None, user_id="usr_b"),
    ]  # fmt: skip
    directory = Directory(Snapshot(1, [TENANT], [], [APP], [boss], records, []))
    entries = {name: directory.keys[kid] for name, (kid, _) in plain.items()}
    for name in ("wide", "narrow", "plain"):
        principal = entries[name].principal
        assert principal is not None and principal.role is Role.VIEWER, name
    misfit = entries["misfit"]
    assert misfit.principal is None
    assert misfit.disabled_reason is not None and "developer" in misfit.disabled_reason

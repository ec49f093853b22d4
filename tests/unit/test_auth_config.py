"""The ``auth:`` section: forged-token risks (alg none/HS*, plain-http keys, no rules) are config errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatewise.config.auth import AuthConfig, OIDCIssuerConfig
from gatewise.config.loader import ConfigError, parse_config_text
from gatewise.identity.roles import Role

RULE: dict[str, Any] = {
    "match": {"project_path": "group/project", "ref_protected": True, "ref": ["main", "release/*"]},
    "tenant": "acme",
    "team": "ml",
    "app": "deployer",
    "models": ["prod-*"],
}


def issuer(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "gitlab",
        "issuer": "https://gitlab.example.com",
        "jwks_url": "https://gitlab.example.com/oauth/discovery/keys",
        "audience": "https://gateway.example.com",
        "rules": [RULE],
    }
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not None}


def errors(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        AuthConfig.model_validate(data)
    return [(tuple(e["loc"]), str(e["msg"])) for e in caught.value.errors()]


def one_error(data: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    found = errors(data)
    assert len(found) == 1, found
    return found[0]


def test_defaults_are_keys_mode_without_issuers() -> None:
    config = AuthConfig()
    assert config.mode == "keys"
    assert config.oidc == []
    assert AuthConfig.model_validate({"mode": "open"}).mode == "open"


def test_good_issuer_with_defaults() -> None:
    config = AuthConfig.model_validate({"oidc": [issuer()]})
    entry = config.oidc[0]
    assert isinstance(entry, OIDCIssuerConfig)
    assert entry.algorithms == ["RS256"]
    assert entry.leeway_seconds == 30
    assert entry.jwks_cache_seconds == 300
    assert entry.jwks_min_refresh_seconds == 10
    assert entry.subject_claim == "sub"
    assert entry.audiences == ["https://gateway.example.com"]
    rule = entry.rules[0]
    assert rule.role == Role.CONSUMER
    assert rule.match["ref_protected"] is True
    assert rule.match["ref"] == ["main", "release/*"]
    assert rule.models == ["prod-*"]


def test_audience_list_and_all_asymmetric_algorithms() -> None:
    algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
    algorithms += ["ES512", "EdDSA"]
    entry = AuthConfig.model_validate(
        {"oidc": [issuer(audience=["a", "b"], algorithms=algorithms)]}
    ).oidc[0]
    assert entry.audiences == ["a", "b"]
    assert entry.algorithms == algorithms


def test_gitlab_string_bools_and_integers_are_kept_as_written() -> None:
    rule = {"match": {"ref_protected": "true", "project_id": 42}, "tenant": "acme"}
    entry = AuthConfig.model_validate({"oidc": [issuer(rules=[rule])]}).oidc[0]
    assert entry.rules[0].match == {"ref_protected": "true", "project_id": 42}


def test_alg_none_is_refused_with_the_reason() -> None:
    loc, message = one_error({"oidc": [issuer(algorithms=["RS256", "none"])]})
    assert loc == ("oidc", 0, "algorithms", 1)
    assert "unsigned tokens" in message and "never accepted" in message


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms_are_refused_with_the_reason(alg: str) -> None:
    loc, message = one_error({"oidc": [issuer(algorithms=[alg])]})
    assert loc == ("oidc", 0, "algorithms", 0)
    assert f"{alg} is a shared-secret (HMAC) algorithm" in message
    assert "forge" in message


def test_unknown_and_duplicate_algorithms() -> None:
    loc, message = one_error({"oidc": [issuer(algorithms=["RSA256"])]})
    assert loc == ("oidc", 0, "algorithms", 0)
    assert "unknown algorithm 'RSA256'" in message and "EdDSA" in message
    loc, message = one_error({"oidc": [issuer(algorithms=["RS256", "RS256"])]})
    assert loc == ("oidc", 0, "algorithms")
    assert "more than once" in message
    loc, _ = one_error({"oidc": [issuer(algorithms=[])]})
    assert loc == ("oidc", 0, "algorithms")


@pytest.mark.parametrize("field", ["jwks_url", "issuer"])
def test_plain_http_is_refused_for_remote_hosts(field: str) -> None:
    loc, message = one_error({"oidc": [issuer(**{field: "http://gitlab.example.com/keys"})]})
    assert loc == ("oidc", 0, field)
    assert f"the {field} must use https://" in message
    assert "loopback" in message


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/keys", "http://localhost/keys", "http://[::1]:9/keys"]
)
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    entry = AuthConfig.model_validate({"oidc": [issuer(jwks_url=url, issuer=url)]}).oidc[0]
    assert entry.jwks_url == url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://gitlab.example.com/keys", "absolute https:// URL"),
        ("gitlab.example.com/keys", "absolute https:// URL"),
        ("https://user:pw@gitlab.example.com/keys", "user name or password"),
        ("https://gitlab.example.com/keys#x", "#fragment"),
    ],
)
def test_malformed_jwks_urls(url: str, fragment: str) -> None:
    loc, message = one_error({"oidc": [issuer(jwks_url=url)]})
    assert loc == ("oidc", 0, "jwks_url")
    assert fragment in message


def test_rules_are_required_and_not_empty() -> None:
    loc, message = one_error({"oidc": [issuer(rules=[])]})
    assert loc == ("oidc", 0, "rules")
    assert "at least one rule is required" in message
    entry = issuer()
    del entry["rules"]
    loc, message = one_error({"oidc": [entry]})
    assert loc == ("oidc", 0, "rules")
    assert "required" in message.lower()


def test_audience_is_required() -> None:
    entry = issuer()
    del entry["audience"]
    loc, _ = one_error({"oidc": [entry]})
    assert loc == ("oidc", 0, "audience")
    loc, message = one_error({"oidc": [issuer(audience=[])]})
    assert (loc, message) == (
        ("oidc", 0, "audience"),
        "Value error, at least one audience is required",
    )
    loc, message = one_error({"oidc": [issuer(audience=" ")]})
    assert "must not be empty" in message


def test_empty_match_and_bad_claim_values() -> None:
    loc, message = one_error({"oidc": [issuer(rules=[{"match": {}, "tenant": "acme"}])]})
    assert loc == ("oidc", 0, "rules", 0, "match")
    assert "at least one claim" in message
    bad_values: list[tuple[Any, str]] = [
        ({"nested": 1}, "got dict"),
        (1.5, "got float"),
        (None, "got NoneType"),
        ([], "an empty list would never match"),
        ("", "must not be empty"),
        (["main", {"x": 1}], "got dict"),
    ]
    for value, fragment in bad_values:
        rule = {"match": {"ref": value}, "tenant": "acme"}
        loc, message = one_error({"oidc": [issuer(rules=[rule])]})
        assert loc == ("oidc", 0, "rules", 0, "match")
        assert "claim 'ref'" in message and fragment in message


def test_rule_fields() -> None:
    loc, message = one_error({"oidc": [issuer(rules=[{**RULE, "role": "platform_admin"}])]})
    assert loc == ("oidc", 0, "rules", 0, "role")
    assert "cannot grant platform_admin" in message
    loc, _ = one_error({"oidc": [issuer(rules=[{**RULE, "role": "owner"}])]})
    assert loc == ("oidc", 0, "rules", 0, "role")
    loc, _ = one_error({"oidc": [issuer(rules=[{**RULE, "models": []}])]})
    assert loc == ("oidc", 0, "rules", 0, "models")
    no_tenant = {key: value for key, value in RULE.items() if key != "tenant"}
    loc, _ = one_error({"oidc": [issuer(rules=[no_tenant])]})
    assert loc == ("oidc", 0, "rules", 0, "tenant")
    loc, message = one_error({"oidc": [issuer(rules=[{**RULE, "tenants": "x"}])]})
    assert loc == ("oidc", 0, "rules", 0, "tenants")


@pytest.mark.parametrize(
    ("field", "value"),
    [("leeway_seconds", 301), ("leeway_seconds", -1), ("jwks_cache_seconds", 0)],
)
def test_numeric_bounds(field: str, value: int) -> None:
    loc, _ = one_error({"oidc": [issuer(**{field: value})]})
    assert loc == ("oidc", 0, field)


def test_unknown_mode_and_unknown_keys() -> None:
    loc, _ = one_error({"mode": "closed"})
    assert loc == ("mode",)
    loc, message = one_error({"oidc": [issuer(jwks="https://x")]})
    assert loc == ("oidc", 0, "jwks")
    assert "extra" in message.lower()


def test_duplicate_issuer_names_and_issuers() -> None:
    second = issuer(issuer="https://gitlab2.example.com")
    loc, message = one_error({"oidc": [issuer(), second]})
    assert loc == ()
    # The loader turns this path prefix into the YAML location of oidc[1].name.
    assert message == "Value error, oidc[1].name: duplicate issuer name 'gitlab'"
    _, message = one_error({"oidc": [issuer(), issuer(name="gitlab-again")]})
    assert message.startswith("Value error, oidc[1].issuer: issuer 'https://gitlab.example.com'")
    assert "configured twice" in message


YAML = """\
auth:
  oidc:
    - name: gitlab
      issuer: https://gitlab.example.com
      jwks_url: https://gitlab.example.com/oauth/discovery/keys
      audience: gw
      algorithms: [RS256, HS256]
      rules:
        - match: {project_path: group/project}
          tenant: acme
    - name: gitlab
      issuer: https://gitlab2.example.com
      jwks_url: http://gitlab.example.com/keys
      audience: gw
      rules:
        - match: {}
          tenant: acme
"""


def test_the_loader_reports_file_line_and_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(YAML, "gw.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("gw.yaml:7:27: auth.oidc[0].algorithms[1]: HS256 is a shared-secret")
    assert lines[1].startswith(
        "gw.yaml:13:7: auth.oidc[1].jwks_url: the jwks_url must use https://"
    )
    assert lines[2].startswith("gw.yaml:16:11: auth.oidc[1].rules[0].match: a rule must match")
    fixed = YAML.replace("HS256", "ES256").replace("http://", "https://")
    fixed = fixed.replace("match: {}", "match: {ref: main}")
    with pytest.raises(ConfigError) as caught:
        parse_config_text(fixed, "gw.yaml")
    assert str(caught.value) == "gw.yaml:11:7: auth.oidc[1].name: duplicate issuer name 'gitlab'"
    config = parse_config_text(
        fixed.replace(
            "name: gitlab\n      issuer: https://gitlab2",
            "name: gl2\n      issuer: https://gitlab2",
        ),
        "gw.yaml",
    )
    assert [entry.name for entry in config.auth.oidc] == ["gitlab", "gl2"]
    assert config.auth.oidc[0].algorithms == ["RS256", "ES256"]


def test_config_role_names_are_the_identity_roles() -> None:
    """config sits below identity and spells the role names itself: they must stay equal."""
    from typing import get_args

    from gatewise.config.auth import RoleName

    assert set(get_args(RoleName)) == {role.value for role in Role}

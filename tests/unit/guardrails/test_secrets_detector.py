"""SecretsDetector: each credential kind with exact spans; placeholders stay quiet."""

from __future__ import annotations

import base64
import json

import pytest

from gatewise.guardrails.secrets import SecretsDetector
from gatewise.guardrails.secrets.entropy import char_classes, shannon

detector = SecretsDetector()
BODY = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5xY7zA9bC1dE3fG5hJ7kL9mN1pQ3rS5tU7"


def found(text: str) -> list[tuple[str, str]]:
    return [(m.type, text[m.start : m.end]) for m in detector.matches(text)]


def b64url(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '42'})}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDbG9vaw0Ka2V5IGJvZHkgZm9yIHRlc3RzIG9ubHkuIE5vdCBhIHJlYWwga2V5\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("sk-proj-" + BODY[:40] + "T3BlbkFJ" + BODY[40:80], "OPENAI_API_KEY"),
        ("sk-svcacct-" + BODY[:60], "OPENAI_API_KEY"),
        ("sk-" + BODY[:48], "OPENAI_API_KEY"),
        ("sk-ant-api03-" + BODY[:93] + "AA", "ANTHROPIC_API_KEY"),
        ("sk-ant-admin01-" + BODY[:93] + "AA", "ANTHROPIC_API_KEY"),
        ("AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "GOOGLE_API_KEY"),
        ("AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID"),
        ("ASIAY34FZKBOKMUTVV7A", "AWS_ACCESS_KEY_ID"),
        ("ghp_" + BODY[:36], "GITHUB_TOKEN"),
        ("gho_" + BODY[:36], "GITHUB_TOKEN"),
        ("github_pat_" + BODY[:22] + "_" + BODY[22:81], "GITHUB_TOKEN"),
        ("glpat-" + BODY[:20], "GITLAB_TOKEN"),
        ("glrt-" + BODY[:20], "GITLAB_TOKEN"),
        ("GR1348941" + BODY[:20], "GITLAB_TOKEN"),
        ("xoxb-1234567890-1234567890123-" + BODY[:24], "SLACK_TOKEN"),
        ("xapp-1-A0123456789-1234567890123-" + BODY[:20].lower(), "SLACK_TOKEN"),
        (
            "https://hooks.slack.com/services/T0AB12CD3/B0AB12CD3EF/" + BODY[:24],
            "SLACK_WEBHOOK_URL",
        ),
        ("sk_live_" + BODY[:24], "STRIPE_API_KEY"),
        ("rk_live_" + BODY[:24], "STRIPE_API_KEY"),
        ("sk_test_" + BODY[:24], "STRIPE_API_KEY"),
        (JWT, "JWT"),
        (PEM, "PRIVATE_KEY"),
    ],
)
def test_each_credential_is_found_with_its_exact_span(value: str, kind: str) -> None:
    text = f"why does this fail? 🤔 {value}\nthanks"
    assert found(text) == [(kind, value)]
    (finding,) = detector.detect(text)
    assert (finding.guardrail, finding.category) == ("secrets", kind)
    assert finding.spans[0].start == text.index(value)


def test_aws_secret_key_needs_aws_context_or_a_key_id() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    text = f"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {secret}"
    assert ("AWS_SECRET_ACCESS_KEY", secret) in found(text)
    assert found(f"the value {secret} alone") == []
    # A SHA-1 (a git commit id) is 40 hex characters: never an AWS secret.
    assert found("aws deploy of commit 3f786850e387550fdab836ed7e6dc881de23001b") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("password=Tr0ub4dor&3x", "Tr0ub4dor&3x"),
        ('{"user": "admin", "password": "q8#Lm2!vR9zp"}', "q8#Lm2!vR9zp"),
        ("DB_PASSWORD: s3cr3tP4ss!", "s3cr3tP4ss!"),
        ("export PGPASSWORD='$59OusTw9eF'", "$59OusTw9eF"),
        ("pwd := Hx7-kq2mW9", "Hx7-kq2mW9"),
        ("connect(user='app', password='N0t-S0-S3cret!')", "N0t-S0-S3cret!"),
        ("my password is Tr0ub4dor&3x so please reset it", "Tr0ub4dor&3x"),
        ("postgres://app:Xk9#mQ2pL@db.internal:5432/app", "Xk9#mQ2pL"),
        ("amqp://bob:@wP^8JRv&Z4F@Y4@mq.example.com/vhost", "@wP^8JRv&Z4F@Y4"),
    ],
)
def test_password_values_are_found_without_their_keys(text: str, value: str) -> None:
    assert found(text) == [("PASSWORD", value)]


@pytest.mark.parametrize(
    "text",
    [
        "password=changeme",
        "password: <your password>",
        'password = "${DB_PASSWORD}"',
        "PASSWORD={{ vault_password }}",
        "password=********",
        "pwd: xxxxxxxx",
        "password = os.environ['DB_PASSWORD']",
        "password: None",
        "the password is required",
        "Forgot password? Reset it at /account.",
        "set password to your_password_here",
        "postgres://user:password@localhost/db",
        "export OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxx",
        "api_key = 'sk-...'",
        "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX",
        "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "SLACK_TOKEN=xoxb-your-token-here",
        "jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0x.sig",  # payload is not base64 JSON
        "eyJub3RhIjoiand0In0.eyJzdWIiOiIxIn0.c2ln",  # header without alg
        "-----BEGIN PRIVATE KEY-----",  # a header alone
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "see https://example.com/path?x=1 and git@github.com:org/repo.git",
    ],
)
def test_placeholders_and_look_alikes_are_not_flagged(text: str) -> None:
    assert found(text) == []


def test_an_unterminated_private_key_is_still_found() -> None:
    body = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"] * 3)
    text = f"key:\n-----BEGIN PRIVATE KEY-----\n{body}\n(pasted, rest cut)"
    ((kind, value),) = found(text)
    assert kind == "PRIVATE_KEY"
    assert value.startswith("-----BEGIN PRIVATE KEY-----") and body.split("\n")[-1] in value


def test_a_key_inside_a_password_assignment_is_reported_once_as_the_key() -> None:
    key = "sk-proj-" + BODY[:60]
    assert found(f"password={key}") == [("OPENAI_API_KEY", key)]


def test_categories_can_be_chosen() -> None:
    only_jwt = SecretsDetector({"JWT"})
    assert [f.category for f in only_jwt.detect(f"{JWT} password=Tr0ub4dor&3x")] == ["JWT"]
    with pytest.raises(ValueError, match="unknown"):
        SecretsDetector({"NOPE"})


def test_entropy_measures() -> None:
    assert shannon("") == 0.0
    assert shannon("aaaa") == 0.0
    assert shannon("abcd") == 2.0
    assert char_classes("aB3!") == 4
    assert char_classes("changeme") == 1

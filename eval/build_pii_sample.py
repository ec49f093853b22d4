"""Build eval/guardrails/pii.jsonl: labelled PII and secret spans in varied sentences.

Reproducible: Faker (MIT) with fixed seeds supplies the values (names, e-mail
addresses, phone numbers in four locales, card numbers, IBANs, SSNs, IP
addresses, birth dates, ISBNs, UUIDs, hashes, passwords); the keys and tokens
are generated here in the documented formats (never real credentials: random
bodies, plus AWS's published example key pair). Sentences come from the
templates below, written for this sample. Look-alike rows carry numbers that
must not be reported (ISBNs, UUIDs, versions, order and tracking numbers,
timestamps, hashes, placeholders) and are marked ``"kind": "lookalike"``.

    /work/main/.venv/bin/python eval/build_pii_sample.py   # needs: pip install faker

Each row: ``{"text", "spans": [{"start", "end", "type"}], "kind"}`` with offsets
in code points. See eval/README-pii.md for the choices made in labelling.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
from pathlib import Path
from typing import Any

from faker import Faker

SEED = 20261206
OUT = Path(__file__).parent / "guardrails" / "pii.jsonl"

rng = random.Random(SEED)
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR")
fakers: dict[str, Faker] = {}
for i, locale in enumerate((*LOCALES, "nl_NL", "es_ES", "it_IT", "pl_PL", "de_AT", "de_CH")):
    fakers[locale] = Faker(locale)
    fakers[locale].seed_instance(SEED + i)
fake = fakers["en_US"]

Row = dict[str, Any]
rows: list[Row] = []


def add(template: str, *values: tuple[str, str | None], kind: str = "positive") -> None:
    """Fill ``{}`` slots in order with values; a value typed None is not labelled."""
    pieces = template.split("{}")
    assert len(pieces) == len(values) + 1, template
    text = pieces[0]
    spans = []
    for (value, kind_of), piece in zip(values, pieces[1:], strict=True):
        if kind_of is not None:
            spans.append({"start": len(text), "end": len(text) + len(value), "type": kind_of})
        text += value + piece
    rows.append({"text": text, "spans": spans, "kind": kind})


def pick(options: list[str] | tuple[str, ...]) -> str:
    return options[rng.randrange(len(options))]


def name() -> str:
    return fake.name()


# ---------------------------------------------------------------- values


def phone() -> str:
    """A phone number in one of the four locales, as Faker formats it. Faker's de_DE
    formats can start "00" or "000" (a zero drawn for the area code): no German
    number does, so those draws are skipped."""
    while True:
        value = fakers[pick(LOCALES)].phone_number()
        if not value.startswith("00"):
            return value


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for position, char in enumerate(reversed(body + "0")):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def card() -> str:
    kind = pick(
        [
            "visa",
            "visa13",
            "mastercard",
            "amex",
            "discover",
            "jcb",
            "diners",
            "mc2",
            "unionpay",
            "maestro",
        ]
    )
    if kind == "mc2":
        digits = luhn_complete(str(rng.randint(2221, 2720)), 16)
    elif kind == "unionpay":
        digits = luhn_complete("62" + str(rng.randint(2926, 9999)), rng.choice([16, 19]))
    elif kind == "maestro":
        digits = luhn_complete(pick(["5018", "5020", "5038", "6304", "6759", "6761"]), 16)
    else:
        digits = fake.credit_card_number(card_type=kind)
    style = rng.random()
    if len(digits) == 15:  # Amex: 4-6-5
        sep = pick([" ", "-", ""])
        return sep.join((digits[:4], digits[4:10], digits[10:]))
    if style < 0.3:
        return digits
    sep = " " if style < 0.75 else "-"
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def iban() -> str:
    locale = pick(["de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT", "pl_PL", "de_AT", "de_CH"])
    value = fakers[locale].iban()
    if rng.random() < 0.5:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def birth_date() -> str:
    d = fake.date_of_birth(minimum_age=18, maximum_age=90)
    fmt = pick(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y", "%d %B %Y"])
    return d.strftime(fmt)


def rand(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
BASE32 = string.ascii_uppercase + "234567"
UPNUM = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt() -> str:
    header = b64url(json.dumps({"alg": pick(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    claims = {"sub": str(rng.randint(10**6, 10**9)), "name": name(), "iat": 1700000000}
    payload = b64url(json.dumps(claims).encode())
    signature = b64url(hmac.new(b"k", f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def pem() -> str:
    kind = pick(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "])
    body = base64.b64encode(rng.randbytes(rng.choice([120, 240, 360]))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        f"-----BEGIN {kind}PRIVATE KEY-----\n"
        + "\n".join(lines)
        + f"\n-----END {kind}PRIVATE KEY-----"
    )


SECRETS: dict[str, Any] = {
    "OPENAI_API_KEY": lambda: pick(
        [
            "sk-proj-" + rand(B64URL, 74) + "T3BlbkFJ" + rand(B64URL, 74),
            "sk-" + rand(ALNUM, 20) + "T3BlbkFJ" + rand(ALNUM, 20),
            "sk-svcacct-" + rand(B64URL, 74) + "T3BlbkFJ" + rand(B64URL, 74),
        ]
    ),
    "ANTHROPIC_API_KEY": lambda: pick(["sk-ant-api03-", "sk-ant-admin01-"]) + rand(B64URL, 93) + "AA",
    "GOOGLE_API_KEY": lambda: "AIza" + rand(B64URL, 35),
    "AWS_ACCESS_KEY_ID": lambda: pick(["AKIAIOSFODNN7EXAMPLE", "AKIA" + rand(BASE32, 16), "ASIA" + rand(BASE32, 16)]),
    "GITHUB_TOKEN": lambda: pick(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + rand(ALNUM, 36)
    if rng.random() < 0.8
    else "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59),
    "GITLAB_TOKEN": lambda: pick(["glpat-", "gldt-", "glrt-", "GR1348941"]) + rand(ALNUM + "-_", 20),
    "SLACK_TOKEN": lambda: pick(["xoxb-", "xoxp-"]) + f"{rng.randint(10**10, 10**11)}-{rng.randint(10**11, 10**12)}-" + rand(ALNUM, 24),
    "SLACK_WEBHOOK_URL": lambda: f"https://hooks.slack.com/services/T{rand(UPNUM, 8)}/B{rand(UPNUM, 10)}/{rand(ALNUM, 24)}",
    "STRIPE_API_KEY": lambda: pick(["sk_live_", "rk_live_", "sk_test_"]) + rand(ALNUM, rng.choice([24, 99])),
    "JWT": jwt,
    "PRIVATE_KEY": pem,
}  # fmt: skip


def password() -> str:
    return fake.password(length=rng.randint(10, 18), special_chars=rng.random() < 0.7)


def aws_secret() -> str:
    if rng.random() < 0.3:
        return "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    return rand(ALNUM + "/+", 40)


# ---------------------------------------------------------------- positives

EMAIL_T = [
    "Please send the invoice to {} by Friday.",
    "My email is {}, feel free to write.",
    "Contact: {}",
    "cc {} and {} on the thread",
    "Kannst du mir an {} schreiben?",
    "Écrivez-moi à {} s'il vous plaît.",
    "The user {} reported the bug 😀 yesterday.",
    "From: {} <br> To: {}",
]
PHONE_T = [
    "Call me at {} after 6pm.",
    "My phone number is {}.",
    "Tel.: {}",
    "You can reach {} on {}.",
    "Ruf mich unter {} an.",
    "Mon numéro : {}",
    "Mobile {} (WhatsApp too)",
    "Leave a message on {} if I don't pick up.",
    "I'm at {} until Friday.",
    "{} is the best number for me 📞",
]
CARD_T = [
    "My card number is {} exp 04/27.",
    "Charge it to {}, please.",
    "Visa: {}",
    "Use the card {} for the hotel.",
    "Kreditkarte {} bitte belasten.",
    "Paid with {} yesterday.",
    "Numéro de carte {} — merci.",
]
IBAN_T = [
    "Please wire the money to {}.",
    "IBAN: {}",
    "Meine IBAN ist {}.",
    "Bank details: {} (BIC on request)",
    "Virement sur le compte {} svp.",
    "Send the refund to {} for {}.",
]
SSN_T = [
    "My SSN is {}.",
    "Social security number: {}",
    "SSN {} on the W-2 form",
    "Employee {}, SSN {}, started Monday.",
    "The applicant's social security no. is {}",
    "Her number {} is on the tax return.",
]
IP_T = [
    "The request came from {} at noon.",
    "Server IP: {}",
    "ssh admin@{} failed twice",
    "Blocked {} after too many logins.",
    "Client address {} (via proxy {}).",
    "Connect to [{}]:8080 from the lab",
]
DOB_T = [
    "I was born on {}.",
    "DOB: {}",
    "Date of birth {} — please verify.",
    "Patient {}, born {}, admitted today.",
    "Geboren am {} in Berlin.",
    "Né le {} à Lyon.",
    "My birthday is {}, so I'm turning older!",
    "Birth date: {}",
]
PASSWORD_T = [
    "password={}",
    'config = {{"user": "admin", "password": "{}"}}',
    "DB_PASSWORD: {}",
    "login with pwd: {}",
    "my password is {} please reset it",
    "export PGPASSWORD='{}'",
]


def positives() -> None:
    for _ in range(50):
        t = pick(EMAIL_T)
        add(t, *[(fakers[pick(LOCALES)].email(), "EMAIL_ADDRESS") for _ in range(t.count("{}"))])
    for _ in range(70):
        t = pick(PHONE_T)
        if t.count("{}") == 2:
            add(t, (name(), None), (phone(), "PHONE_NUMBER"))
        else:
            add(t, (phone(), "PHONE_NUMBER"))
    for _ in range(60):
        add(pick(CARD_T), (card(), "CREDIT_CARD"))
    for _ in range(50):
        t = pick(IBAN_T)
        if t.count("{}") == 2:
            add(t, (iban(), "IBAN_CODE"), (name(), None))
        else:
            add(t, (iban(), "IBAN_CODE"))
    for _ in range(50):
        t = pick(SSN_T)
        value = fake.ssn()
        if "SSN" in t and rng.random() < 0.3:
            value = value.replace("-", "") if rng.random() < 0.5 else value.replace("-", " ")
        if t.count("{}") == 2:
            add(t, (name(), None), (value, "US_SSN"))
        else:
            add(t, (value, "US_SSN"))
    for _ in range(50):
        t = pick(IP_T)
        values = [(fake.ipv4() if rng.random() < 0.7 else fake.ipv6(), "IP_ADDRESS")]
        if "[{}]" in t:
            values = [(fake.ipv6(), "IP_ADDRESS")]
        elif t.count("{}") == 2:
            values.append((fake.ipv4_private(), "IP_ADDRESS"))
        add(t, *values)
    for _ in range(50):
        t = pick(DOB_T)
        if t.count("{}") == 2:
            add(t, (name(), None), (birth_date(), "DATE_OF_BIRTH"))
        else:
            add(t, (birth_date(), "DATE_OF_BIRTH"))
    for _ in range(30):
        add(pick(PASSWORD_T), (password(), "PASSWORD"))
    for _ in range(8):
        user, host = fake.user_name(), fake.domain_name()
        scheme = pick(["postgres", "mysql", "redis", "mongodb+srv", "amqp"])
        add(f"DATABASE_URL={scheme}://{user}:{{}}@{host}:5432/app", (password(), "PASSWORD"))
    secret_t = [
        "Here is my key: {} — why does it fail?",
        "export {}={}",
        "headers = {{'Authorization': 'Bearer {}'}}",
        "I accidentally committed {} to the repo",
    ]
    for category, make in SECRETS.items():
        for _ in range(12):
            value = make()
            if category == "PRIVATE_KEY":
                add("Here is the key file:\n{}\nWhy won't ssh accept it?", (value, category))
                continue
            t = pick(secret_t)
            if t.count("{}") == 2:
                add(t, (category, None), (value, category))
            else:
                add(t, (value, category))
    for _ in range(12):
        add(
            "aws_access_key_id = {}\naws_secret_access_key = {}",
            (SECRETS["AWS_ACCESS_KEY_ID"](), "AWS_ACCESS_KEY_ID"),
            (aws_secret(), "AWS_SECRET_ACCESS_KEY"),
        )
    # Mixed rows: several entity types in one message.
    for _ in range(30):
        add(
            "Hi, I'm {}. Reach me at {} or {}; my card {} was charged twice. IBAN for the refund: {}.",
            (name(), None),
            (fake.email(), "EMAIL_ADDRESS"),
            (phone(), "PHONE_NUMBER"),
            (card(), "CREDIT_CARD"),
            (iban(), "IBAN_CODE"),
        )
    for _ in range(20):
        add(
            "Patient {} (DOB: {}, SSN {}) logged in from {}; contact {}.",
            (name(), None),
            (birth_date(), "DATE_OF_BIRTH"),
            (fake.ssn(), "US_SSN"),
            (fake.ipv4_public(), "IP_ADDRESS"),
            (fake.email(), "EMAIL_ADDRESS"),
        )


# ---------------------------------------------------------------- look-alikes


def lookalikes() -> None:
    def neg(template: str, *values: str) -> None:
        add(template, *[(v, None) for v in values], kind="lookalike")

    for _ in range(15):
        neg("ISBN {} — see chapter 3.", fake.isbn13())
        neg("Book ISBN-10: {}", fake.isbn10())
        neg("Request id {} failed with 502.", fake.uuid4())
        neg("Barcode {} scanned at the till.", fake.ean13())
    for _ in range(15):
        v = ".".join(str(rng.randint(0, 20)) for _ in range(4))
        neg(
            pick(["Upgrade to version {} first.", "Running v{} on prod.", "Build {} is broken."]), v
        )
        neg("Order number {} shipped.", str(rng.randint(10**9, 10**12)))
        neg("Order #{} was cancelled.", "-".join(str(rng.randint(100, 9999)) for _ in range(3)))
        neg("Tracking: 1Z{}", rand(string.ascii_uppercase + string.digits, 16))
        neg(
            "USPS tracking {} is delayed.",
            "9400 "
            + " ".join(rand(string.digits, 4) for _ in range(4))
            + " "
            + rand(string.digits, 2),
        )
        neg("FedEx tracking number {}", rand(string.digits, 12))
    for _ in range(15):
        neg("The job ran at {} and finished.", fake.iso8601())
        neg("Meeting on {} at {}.", fake.date(), fake.time())
        neg("Logged {} (unix {}).", fake.date_time().isoformat(sep=" "), str(fake.unix_time()))
        neg("commit {} fixes it", fake.sha1())
        neg("sha256: {}", fake.sha256())
        neg("md5 {} matches", fake.md5())
    for _ in range(10):
        neg(
            "Price {} EUR incl. VAT, ZIP {}",
            f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}",
            fake.zipcode(),
        )
        neg("MAC {} on eth0", fake.mac_address())
        neg("Coordinates {}, {}", str(fake.latitude()), str(fake.longitude()))
        neg(
            "Use semver {} or later.",
            f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
        )
    for placeholder in [
        "password=changeme",
        "password: <your password>",
        'password = "${DB_PASSWORD}"',
        "PASSWORD={{ vault_password }}",
        "password=********",
        "pwd: xxxxxxxx",
        "export OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxx",
        "api_key = 'sk-...'",
        "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX",
        "token: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "SLACK_TOKEN=xoxb-your-token-here",
        "password = os.environ['DB_PASSWORD']",
        "the password is required",
        "Forgot password? Reset it at /account.",
        "postgres://user:password@localhost/db",
        "jwt: eyJhbGciOiJIUzI1NiJ9.invalid.sig",
        "password: None",
        "set password to your_password_here",
    ]:
        neg("{}", placeholder)


positives()
lookalikes()
OUT.parent.mkdir(parents=True, exist_ok=True)
with OUT.open("w", encoding="utf-8") as out:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
print(f"{len(rows)} rows -> {OUT}")

"""Secrets never reach a recorded command line; everything else reaches it unchanged.

Each case is an argv as a user or an agent would run it, and what agenttrace records of it.
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agenttrace.capture.redact import REDACTED, redact_argv, redact_value

R = REDACTED
API = "https://api.example.com/v1/models"

# Issue 10, item 8: stored verbatim before.
ISSUE = [
    (
        ["curl", "-H", "Authorization: Bearer sk-live-123", API],
        ["curl", "-H", f"Authorization: Bearer {R}", API],
    ),
    (["curl", "-H", "X-Api-Key: 3f9a7c21", API], ["curl", "-H", f"X-Api-Key: {R}", API]),
    (["curl", "--user", "alice:pw", API], ["curl", "--user", f"alice:{R}", API]),
]

# Redacted before the issue; still redacted.
KEPT_WORKING = [
    (["--api-key", "abc123", "--model", "gpt"], ["--api-key", R, "--model", "gpt"]),
    (["--token=abc", "-v"], [f"--token={R}", "-v"]),
    (["PASSWORD=hunter2", "run"], [f"PASSWORD={R}", "run"]),
    (["env", "OPENAI_API_KEY=abc", "python", "a.py"], ["env", f"OPENAI_API_KEY={R}", "python", "a.py"]),
    (["--password", "x", "--secret-file", "/s"], ["--password", R, "--secret-file", R]),
    (["curl", "https://bob:pw@example.com/x"], ["curl", f"https://{R}@example.com/x"]),
    (["sk-proj-abcdefghijklmnopqrstuvwx"], [R]),
    (["ghp_abcdefghijklmnopqrstuvwxyz0123"], [R]),
    (["AKIAABCDEFGHIJKLMNOP"], [R]),
    (["--author=ann", "--auth", "basic:x"], ["--author=ann", "--auth", R]),
]

SECRET_OPTIONS = [
    (["agent", "-Ddb.password=pw", "-pass", "pw"], ["agent", f"-Ddb.password={R}", "-pass", R]),
    (["mysql", "--user=root", "--password=pw"], ["mysql", "--user=root", f"--password={R}"]),
    (["psql", "PGPASSWORD=pw", "MYSQL_PWD=pw"], ["psql", f"PGPASSWORD={R}", f"MYSQL_PWD={R}"]),
    (["helm", "--set", "auth.rootPassword=pw"], ["helm", "--set", f"auth.rootPassword={R}"]),
    (["curl", "--cookie", "sid=abc", API], ["curl", "--cookie", R, API]),
    # a negated flag takes no value, and a --long-option is never taken as one
    (["agent", "--no-auth", "--verbose"], ["agent", "--no-auth", "--verbose"]),
    (["agent", "--use-auth", "--task", "t"], ["agent", "--use-auth", "--task", "t"]),
    # the value of a variable that is not secret is looked at on its own
    (["env", "HDR=Authorization: Bearer abc", "x"], ["env", f"HDR=Authorization: Bearer {R}", "x"]),
    (["env", "DSN=postgres://app:pw@db/app"], ["env", f"DSN=postgres://{R}@db/app"]),
]

HEADER_FORMS = [
    (["curl", "-H", "Authorization: Basic YWxpY2U6cHc="], ["curl", "-H", f"Authorization: Basic {R}"]),
    (["curl", "-H=Authorization: Bearer abc"], ["curl", f"-H=Authorization: Bearer {R}"]),
    (["curl", "-HAuthorization: Bearer abc"], ["curl", f"-HAuthorization: Bearer {R}"]),
    (["curl", "--header", "Authorization: Bearer abc"], ["curl", "--header", f"Authorization: Bearer {R}"]),
    (
        ["wget", "--header=Authorization: Bearer abc", API],
        ["wget", f"--header=Authorization: Bearer {R}", API],
    ),
    (["curl", "-sH", "Authorization: Bearer abc", API], ["curl", "-sH", f"Authorization: Bearer {R}", API]),
    (["curl", "-sHAuthorization: Bearer abc"], ["curl", f"-sHAuthorization: Bearer {R}"]),
    (
        ["curl", "-x", "proxy:3128", "--proxy-header", "Proxy-Authorization: Basic cHc="],
        ["curl", "-x", "proxy:3128", "--proxy-header", f"Proxy-Authorization: Basic {R}"],
    ),
    (["curl", "-H", "Authorization:Bearer abc"], ["curl", "-H", f"Authorization:Bearer {R}"]),
    (["curl", "-H", "authorization: token abc"], ["curl", "-H", f"authorization: token {R}"]),
    (
        ["curl", "-H", "Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature=ab"],
        ["curl", "-H", f"Authorization: AWS4-HMAC-SHA256 {R}"],
    ),
    # no scheme: the whole value goes
    (["curl", "-H", "Authorization: abc123"], ["curl", "-H", f"Authorization: {R}"]),
    (["curl", "-H", "Cookie: sid=abc; theme=dark"], ["curl", "-H", f"Cookie: {R}"]),
    (["curl", "-H", "Set-Cookie: sid=abc; Path=/"], ["curl", "-H", f"Set-Cookie: {R}"]),
]

# Any header whose name holds auth, token, secret, key, passw, cookie or credential.
SECRET_HEADER_NAMES = [
    "X-Api-Key",
    "api-key",
    "X-Auth-Token",
    "X-Vault-Token",
    "PRIVATE-TOKEN",
    "X-Goog-Api-Key",
    "Ocp-Apim-Subscription-Key",
    "X-Client-Secret",
    "X-Password",
    "X-Amz-Security-Token",
    "X-Authentication",
    "token",
]

BARE_HEADERS = [
    (["http", "GET", API, "Authorization:Bearer abc"], ["http", "GET", API, f"Authorization:Bearer {R}"]),
    (["http", API, "X-Api-Key:abc", "q==x"], ["http", API, f"X-Api-Key:{R}", "q==x"]),
    (["tool", "Authorization: Bearer abc"], ["tool", f"Authorization: Bearer {R}"]),
    (["tool", "Cookie: sid=abc"], ["tool", f"Cookie: {R}"]),
    # httpie query parameters, form and JSON fields
    (
        ["http", API, "api_key==abc", "password=pw", "token:=123"],
        ["http", API, f"api_key=={R}", f"password={R}", f"token:={R}"],
    ),
    # a header split over words, as in `echo Authorization: Bearer $T`
    (["echo", "Authorization:", "Bearer", "abc"], ["echo", "Authorization:", "Bearer", R]),
    (["echo", "Authorization:", "abc", "def"], ["echo", "Authorization:", R, "def"]),
    (["echo", "X-Api-Key:", "abc"], ["echo", "X-Api-Key:", R]),
    (
        ["curl", "-H", "Authorization:", "Bearer", "abc", API],
        ["curl", "-H", "Authorization:", "Bearer", R, API],
    ),
    (["curl", "-H", "token:", "abc", API], ["curl", "-H", "token:", R, API]),
]

USER_PASSWORD = [
    (["curl", "-u", "alice:pw", API], ["curl", "-u", f"alice:{R}", API]),
    (["curl", "-ualice:pw", API], ["curl", f"-ualice:{R}", API]),
    (["curl", "--user=alice:pw", API], ["curl", f"--user=alice:{R}", API]),
    (["curl", "-U", "proxyuser:pw", API], ["curl", "-U", f"proxyuser:{R}", API]),
    (["curl", "--proxy-user", "bob:pw:with:colons"], ["curl", "--proxy-user", f"bob:{R}"]),
    (["curl", "-su", "alice:pw", API], ["curl", "-su", f"alice:{R}", API]),
    (["curl", "-u", ":ghtoken", API], ["curl", "-u", f":{R}", API]),
    (["curl", "-u", "alice@example.com:pw", API], ["curl", "-u", f"alice@example.com:{R}", API]),
    # a Stripe key given as the user, with an empty password
    (["curl", "-u", "sk_test_4eC39HqLyjWDarjtT1zdp7dc:", API], ["curl", "-u", f"{R}:", API]),
]

QUERY_STRINGS = [
    (["curl", "https://x.io/a?api_key=abc&page=2"], ["curl", f"https://x.io/a?api_key={R}&page=2"]),
    (["curl", "https://x.io/cb#access_token=abc&x=1"], ["curl", f"https://x.io/cb#access_token={R}&x=1"]),
    (["wget", "https://x.io/f?token=abc#top"], ["wget", f"https://x.io/f?token={R}#top"]),
    (
        ["curl", "https://acct.blob.core.windows.net/c/f?sv=2022&sig=abc%2Fdef&se=2030"],
        ["curl", f"https://acct.blob.core.windows.net/c/f?sv=2022&sig={R}&se=2030"],
    ),
    (
        ["curl", "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKID%2F2024&X-Amz-Signature=abc"],
        ["curl", f"https://b.s3.amazonaws.com/k?X-Amz-Credential={R}&X-Amz-Signature={R}"],
    ),
    (
        ["curl", "https://maps.googleapis.com/maps/api/geocode/json?address=x&key=abc"],
        ["curl", f"https://maps.googleapis.com/maps/api/geocode/json?address=x&key={R}"],
    ),
    (
        ["curl", "-d", "grant_type=client_credentials&client_id=app&client_secret=abc"],
        ["curl", "-d", f"grant_type=client_credentials&client_id=app&client_secret={R}"],
    ),
    (["curl", "-d", "user=a&password=pw&remember=1"], ["curl", "-d", f"user=a&password={R}&remember=1"]),
    (
        ["curl", "https://cdn.x.io/v.mp4?Signature=abc&Key-Pair-Id=K2"],
        ["curl", f"https://cdn.x.io/v.mp4?Signature={R}&Key-Pair-Id=K2"],
    ),
    (["open", "--url=https://x.io/?secret=abc"], ["open", f"--url=https://x.io/?secret={R}"]),
]

JSON_AND_KEYS = [
    (
        ["curl", "-d", '{"model": "gpt-4o", "api_key": "abc", "max_tokens": 5}', API],
        ["curl", "-d", f'{{"model": "gpt-4o", "api_key": "{R}", "max_tokens": 5}}', API],
    ),
    (["curl", "-d", '{"password":"p\\"w","user":"a"}'], ["curl", "-d", f'{{"password":"{R}","user":"a"}}']),
    (
        [
            "ssh-add",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n",
        ],
        ["ssh-add", f"-----BEGIN OPENSSH PRIVATE KEY-----{R}-----END OPENSSH PRIVATE KEY-----\n"],
    ),
    (["x", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow"], ["x", f"-----BEGIN RSA PRIVATE KEY-----{R}"]),
]

# Scripts (`sh -c`, `bash -lc`: how agents run tools) get the rules command by command, quoting kept.
SCRIPTS = [
    (
        [
            "bash",
            "-lc",
            "curl -sS -H 'Authorization: Bearer sk-live-123' -u alice:pw 'https://x.io/?token=t' | jq .",
        ],
        [
            "bash",
            "-lc",
            f"curl -sS -H 'Authorization: Bearer {R}' -u alice:{R} 'https://x.io/?token={R}' | jq .",
        ],
    ),
    (
        ["sh", "-c", 'export DB_PASSWORD="hunter 2"; psql --password "$PW" && run --max-tokens 10'],
        ["sh", "-c", f'export DB_PASSWORD="{R}"; psql --password "{R}" && run --max-tokens 10'],
    ),
    (
        ["sh", "-c", 'curl -H X-Api-Key:\\ abc --header="Cookie: sid=1" x.io'],
        ["sh", "-c", f'curl -H X-Api-Key:\\ {R} --header="Cookie: {R}" x.io'],
    ),
    (
        ["bash", "-c", "cat > .env <<EOF\nOPENAI_API_KEY=abc\nDEBUG=1\nEOF"],
        ["bash", "-c", f"cat > .env <<EOF\nOPENAI_API_KEY={R}\nDEBUG=1\nEOF"],
    ),
    (
        ["sh", "-c", "bash -c \"curl -u a:pw 'https://x.io?sig=1'\""],
        ["sh", "-c", f"bash -c \"curl -u a:{R} 'https://x.io?sig={R}'\""],
    ),
    (
        ["python", "-c", "import openai; openai.OpenAI(api_key='abc').models.list()"],
        ["python", "-c", f"import openai; openai.OpenAI(api_key='{R}').models.list()"],
    ),
    # prose with an apostrophe does not split into shell words: the rules apply by pattern (and a
    # value taken by pattern runs to the next space, punctuation included)
    (
        [
            "claude",
            "-p",
            "Don't commit it. Call with Authorization: Bearer abc123\nand --password pw, -u bob:pw",
        ],
        [
            "claude",
            "-p",
            f"Don't commit it. Call with Authorization: Bearer {R}\nand --password {R} -u bob:{R}",
        ],
    ),
    (["codex", "exec", "it's TOKEN=abc, see"], ["codex", "exec", f"it's TOKEN={R} see"]),
]

KEY_SHAPES = [
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-AA",
    "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123456789AB",
    "sk-live-Ab3dEf6hIj9k",
    "ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123",
    "gho_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123",
    "ghs_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "glpat-Ab3dEf6hIj9kLm2nOp5q",
    "hf_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "xoxb-1234567890-0987654321-Ab3dEf6hIj9k",
    "xoxp-1234567890-Ab3dEf6hIj9k",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "whsec_Ab3dEf6hIj9kLm2nOp5qRs8t",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]
KEY_PLACES = ["{}", "--model-key={}", "Bearer {}", "https://x.io/{}/v1", "export K={}; run", "x{{'k': '{}'}}"]

# Ordinary arguments that must come back exactly as they were.
KEPT_AS_IS = [
    ["python", "agent.py", "--task", "fix the tokenizer"],
    ["python", "agent.py", "--task", "fix-bug", "--max-tokens", "4096", "--tokenizer", "gpt2"],
    ["git", "log", "--author=ann", "--passes", "3", "--bypass-cache"],
    ["pip", "install", "scikit-learn", "sk-learn", "sk-proj-setup", "sk-ant-tools"],
    ["cp", "risk-assessment-report-2024-final.pdf", "desk-sk-abcdefghijklmnopqrstuvwxyz/"],
    ["python", "-u", "train.py"],
    ["git", "push", "-u", "origin", "main"],
    ["docker", "run", "-u", "1000:1000", "-p", "8080:80", "keycloak:latest"],
    ["date", "-u", "+%H:%M:%S"],
    ["pip", "install", "--user", "git+https://github.com/a/b"],
    ["curl", "-u", "alice", API],
    ["uvicorn", "auth:app", "--host", "0.0.0.0:8000"],
    ["curl", "-H", "Content-Type: application/json", "-H", "Accept: */*", API],
    ["curl", "https://example.com/search?q=token&page=2&author=ann&max_tokens=5"],
    ["curl", "-H", "Authorization:", API],
    ["curl", "-H", "X-Api-Key:", API],
    ["grep", "-rn", "Authorization", "src"],
    ["sh", "-c", "sleep 0.2; exit 4"],
    ["sh", "-c", "echo 'key: value' | grep -q key && echo \"it's fine\""],
    ["claude", "-p", "Don't break the auth flow; fix the tokenizer bug in sk-learn."],
    ["echo", "x" * 40, "AKIA" + "X" * 10, "eyJhbGciOi", "ghp_short", "AIzaShort"],
    ["ls", "/home/user/.ssh/id_ed25519", "/tmp/api-key-rotation.md"],
    ["env", "PWD=/home/user", "EMPTY_TOKEN=", "--password="],
]

POSITIVE = ISSUE + KEPT_WORKING + SECRET_OPTIONS + HEADER_FORMS + BARE_HEADERS + USER_PASSWORD
POSITIVE += QUERY_STRINGS + JSON_AND_KEYS + SCRIPTS


@pytest.mark.parametrize(("argv", "expected"), POSITIVE, ids=lambda v: shlex.join(v)[:60])
def test_secrets_are_redacted(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected
    assert redact_argv(expected) == expected  # redacting what was recorded changes nothing


@pytest.mark.parametrize("argv", KEPT_AS_IS, ids=lambda v: shlex.join(v)[:60])
def test_ordinary_arguments_are_kept(argv: list[str]) -> None:
    assert redact_argv(argv) == argv


@pytest.mark.parametrize("name", SECRET_HEADER_NAMES)
@pytest.mark.parametrize("option", [["-H"], ["--header"]])
def test_secret_header_names(option: list[str], name: str) -> None:
    argv = ["curl", *option, f"{name}: v4lue", API]
    assert redact_argv(argv) == ["curl", *option, f"{name}: {R}", API]


@pytest.mark.parametrize("name", ["Content-Type", "Accept", "X-Request-Id", "User-Agent", "If-None-Match"])
def test_other_headers_are_kept(name: str) -> None:
    argv = ["curl", "-H", f"{name}: v4lue", API]
    assert redact_argv(argv) == argv


@pytest.mark.parametrize("place", KEY_PLACES)
@pytest.mark.parametrize("key", KEY_SHAPES)
def test_key_shapes_anywhere_in_an_argument(key: str, place: str) -> None:
    (recorded,) = redact_argv([place.format(key)])
    assert key not in recorded and R in recorded
    assert recorded == place.format(R)


def test_the_recorded_command_line() -> None:
    """What a process span's `process.command_line` holds for the commands of the issue."""
    from agenttrace.supervise.supervisor import command_line

    argv = [
        "curl",
        "-H",
        "Authorization: Bearer sk-live-123",
        "-H",
        "X-Api-Key: k",
        "--user",
        "alice:pw",
        API,
    ]
    assert command_line(argv) == (
        f"curl -H 'Authorization: Bearer {R}' -H 'X-Api-Key: {R}' --user 'alice:{R}' {API}"
    )


def test_redact_value_takes_one_argument() -> None:
    assert redact_value("https://example.com/path?q=1") == "https://example.com/path?q=1"
    assert redact_value("hello world") == "hello world"
    assert redact_value("Authorization: Bearer abc") == f"Authorization: Bearer {R}"
    assert redact_value("https://x.io/?access_token=abc") == f"https://x.io/?access_token={R}"


WORDS = [
    "Authorization:",
    "Bearer",
    "-H",
    "-u",
    "--password",
    "X-Api-Key",
    "[REDACTED]",
    "https://",
    "?token=",
]


@given(st.lists(st.text(), max_size=6))
def test_any_argv_gives_one_argument_for_each(argv: list[str]) -> None:
    assert len(redact_argv(argv)) == len(argv)


@given(
    st.lists(st.lists(st.sampled_from([*"aA1 -_:=&?#;|\n\tHuk@/.$()[]", *WORDS])).map("".join), max_size=6)
)
def test_redacting_a_recorded_argv_changes_nothing(argv: list[str]) -> None:
    """Stable for unquoted text; text with unbalanced quotes may redact a little more the second time."""
    recorded = redact_argv(argv)
    assert redact_argv(recorded) == recorded

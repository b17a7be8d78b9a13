"""Keep secrets out of recorded command lines and arguments.

Every argv agenttrace records (the run's command, each process span's `process.command_line` and
`process.command_args`, the `process.command_args` of `agenttrace.run`) goes through `redact_argv`.
A secret becomes `[REDACTED]`; what names it (option, variable, header, auth scheme, user, query
parameter, JSON field) stays, so the command still reads as what it was. An argument without a
secret comes back unchanged, byte for byte, and redacting a recorded argv again changes nothing (text
with unbalanced quotes aside, which may lose a little more).

Rules, for each argument:

1. Secret options and variables. An option whose name is secret takes the next argument as its
   value (`--api-key X`, `--password X`, `--token X`, `--secret-file X`, `--auth X`, `-pass X`),
   unless that is a `--long-option`; `--NAME=X` and `NAME=X` lose X (environment assignments,
   `-Dx.password=X`, httpie's `name=X`, `name==X`, `name:=X`). A name is secret when it contains
   password, passwd, passphrase, `pass` as a word, `_pwd`, secret, token, api-key, apikey,
   access-key, private-key, credential, auth or authorization, or cookie; not secret:
   `--max-tokens`, `--tokenizer`, `--author`, `--bypass`, `--passes`, `--cookie-jar`, `PWD`, and a
   negated flag (`--no-auth`) takes no value. The value of any other `NAME=value` is an argument of
   its own for these rules (`HDR=Authorization: Bearer x`, `URL=https://u:pw@host`).
2. HTTP headers, in `-H X`, `-H=X`, `-HX`, `--header X`, `--header=X`, `--proxy-header X` or `=X`,
   after or in a short cluster with H (`-sH X`, `-sHX`), in an argument that is itself a header line
   (httpie's `Authorization:Bearer x` and `X-Api-Key:x`, `"Authorization: Bearer x"` given to any
   tool), and split over words (`Authorization:` `Bearer` `x`, with a known scheme: Basic, Bearer,
   Digest, Token, ...; `-H Authorization: URL`, curl's way to drop a header, keeps the URL). A header
   is secret when its name contains auth, token, secret, key, passw, cookie or credential. Outside
   `-H`/`--header` it must also look like a header: Authorization, Proxy-Authorization, Cookie,
   Set-Cookie, Api-Key, ApiKey, X-Api-Key, X-Auth-Token, or a dashed name (`X-Vault-Token`); so
   `auth:app` and `keycloak:latest` stay. Authorization and Proxy-Authorization keep their scheme
   (`Authorization: Bearer [REDACTED]`); any other secret header loses its whole value
   (`Cookie: [REDACTED]`).
3. User and password, after `-u`, `-U`, `--user`, `--proxy-user` (or a short cluster ending in u/U),
   and in `-uUSER:PW`, `--user=USER:PW`: the user stays, the password goes (`alice:[REDACTED]`). It
   stays as is without a password (`-u alice`, `python -u x.py`, `git push -u origin main`), as a
   numeric uid:gid (`docker run -u 1000:1000`), a date format (`date -u +%H:%M`) or a URL.
4. Anywhere inside any argument:
   - a URL's credentials: `https://user:pw@host` -> `https://[REDACTED]@host`;
   - a parameter after `?`, `&`, `#` or `;` (query string, fragment, form body) whose name is secret
     (rule 1), holds signature, or is `key` or `sig`: `?api_key=`, `access_token=`, `token=`, `sig=`,
     `signature=`, `X-Amz-Signature=`, `X-Amz-Credential=`, `client_secret=`, `password=`: the
     value, up to `&`, `#`, a quote, whitespace or the end, goes; the name stays;
   - a JSON string field with a secret name: `{"api_key": "x"}` -> `{"api_key": "[REDACTED]"}`;
   - a private key block, from `-----BEGIN ... PRIVATE KEY-----` to its END line (or the end);
   - a well-known key shape at the start of a word: OpenAI and Anthropic `sk-` + 20 letters or
     digits, or `sk-proj-`, `sk-ant-`, `sk-live-`, `sk-test-`, `sk-svcacct-`, `sk-admin-` + 10; GitHub
     `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 20 and `github_pat_` + 20; GitLab `glpat-` + 20; Hugging
     Face `hf_` + 30; Slack `xox[abprs]-` + 10; Stripe `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`
     + 10 and `whsec_` + 20; AWS access key ids `AKIA`/`ASIA` + 16; Google `AIza` + 30; JWTs
     (`eyJ` + 10, `.`, 10, `.`, signature). The minimum lengths and the start-of-word condition keep
     `sk-learn`, `risk-assessment-report-2024`, `sk-proj-setup` and `--task fix-bug` as they are.
5. An argument with whitespace in it (a `sh -c`/`bash -lc` script, a prompt) is split into words the
   way a POSIX shell does (quotes, backslashes, `#` comments; `;`, `&`, `|`, parentheses and newlines
   end a command), and each command's words go through these rules, three levels of nesting deep:
   `bash -lc "curl -H 'Authorization: Bearer x' -u a:pw URL"` is redacted as that curl's own argv
   is, the script keeping its quoting. Text that does not split (an unbalanced quote, as in "don't")
   gets rule 4 and, found by pattern, secret header lines (the value up to a quote or the end of the
   line), secret `NAME=value`, `--secret-option value` and `-u user:pw` (a value up to the next
   whitespace, punctuation included); if that balances the quotes, the words get the rules as well.

Not covered: a secret with neither a telling name nor a known shape (`tool s3cr3t`, `mysql -ps3cr3t`,
`sshpass -p s3cr3t`, a `Bearer` token outside an Authorization header), a header line or password
assembled at run time or read from a file (`-H @headers.txt`, `--netrc`), and secrets in a child's
environment (agenttrace records variable names, never values). Redaction errs towards hiding: a
secret option's value goes even when it is a path (`--secret-file /s`), and so does the value after
`-H`/`-u` in tools where they mean something else, when it looks like a secret header or
`user:password`.
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

REDACTED = "[REDACTED]"

_SECRET_NAME = re.compile(
    r"passw(?:or)?d|passphrase|(?<![a-z])pass(?![a-z])|(?<=_)pwd(?![a-z])|secret|token(?!s|iz)"
    r"|api[-_]?key|access[-_]?key|private[-_]?key|credential|authorization|auth(?!or)|cookie(?![-_]?jar)",
    re.I,
)
_SECRET_PARAM = re.compile(r"signature|^(?:key|sig)$", re.I)  # in a query string, besides _SECRET_NAME
_SECRET_HEADER = re.compile(r"auth|token|secret|key|passw|cookie|credential", re.I)
_BARE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "api-key", "apikey", "x-api-key"}
    | {"x-auth-token"}
)
_SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization"})

_KEY_SHAPE = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj|ant|live|test|svcacct|admin)-[A-Za-z0-9_-]{10,}"
    r"|sk-[A-Za-z0-9]{20,}[A-Za-z0-9_-]*"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"
    r"|whsec_[A-Za-z0-9]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|A(?:KI|SI)A[0-9A-Z]{16}(?![0-9A-Za-z])"
    r"|AIza[0-9A-Za-z_-]{30,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"
    r")"
)
_PRIVATE_KEY = re.compile(
    r"(?P<begin>-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----)"
    r".*?(?P<end>-----END (?P=kind)-----|\Z)",
    re.S,
)
_URL_CREDENTIALS = re.compile(r"(?<![a-z0-9+.-])(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]*:[^/?#\s]*@", re.I)
_QUERY_PARAM = re.compile(r"(?P<lead>[?&#;])(?P<name>[\w.%\[\]-]+)=(?P<value>\[REDACTED\]|[^&#\s'\"]+)")
_JSON_FIELD = re.compile(r'(?P<key>"(?P<name>[^"\\\n]{1,100})"\s*:\s*)"(?P<value>(?:[^"\\]|\\.)*)"')

_ASSIGNMENT = re.compile(r"(?P<name>-{0,2}[A-Za-z_][\w.-]*)(?P<sep>==|:=|=)(?P<value>.*)", re.S)
_HEADER_LINE = re.compile(r"(?P<name>[A-Za-z][\w-]*)(?P<colon>[ \t]*:[ \t]*)(?P<value>.*)", re.S)
_AUTH_SCHEME = re.compile(r"[A-Za-z][\w.+-]*[ \t]+(?=\S)")
_AUTH_SCHEMES = frozenset(
    {"basic", "bearer", "digest", "token", "bot", "negotiate", "ntlm", "apikey", "oauth", "aws4-hmac-sha256"}
)
_HEADER_NAME = re.compile(r"(?P<name>[A-Za-z][\w-]*)[ \t]*:")
_OPTION = re.compile(r"--?[A-Za-z][\w.-]*")
_LONG_OPTION = re.compile(r"--[A-Za-z][\w-]*(?:=.*)?", re.S)
_HEADER_OPTION = re.compile(r"-[A-Za-z]{0,3}H|--header|--proxy-header")
_USER_OPTION = re.compile(r"-[A-Za-z]{0,3}[uU]|--user|--proxy-user")
_HEADER_ATTACHED = re.compile(r"(?P<opt>-[A-Za-z]{0,3}H=?|--header=|--proxy-header=)(?P<value>.+)", re.S)
_USER_ATTACHED = re.compile(r"(?P<opt>-[uU]=?|--user=|--proxy-user=)(?P<value>.+)", re.S)

# Text that does not split into shell words: the same rules, found by pattern.
_PROSE_HEADER = re.compile(r"(?<![\w-])(?P<name>[A-Za-z][\w-]*)(?P<colon>[ \t]*:[ \t]*)")
_PROSE_HEADER_VALUE = re.compile(r"[^'\"\r\n]*[^'\"\s]")
_QUOTED_OR_WORD = r"\[REDACTED\]|\"[^\"]*\"?|'[^']*'?"
_PROSE_ASSIGNMENT = re.compile(
    rf"(?<![\w.-])(?P<name>-{{0,2}}[A-Za-z_][\w.-]*)(?P<sep>==|:=|=)(?P<value>{_QUOTED_OR_WORD}|[^\s'\"`;&|()]+)"
)
_PROSE_OPTION = re.compile(
    rf"(?<![\w-])(?P<opt>--?[A-Za-z][\w.-]*)(?P<space>[ \t]+)(?P<value>{_QUOTED_OR_WORD}|[^\s'\"]+)"
)

_SHELL_BREAK = frozenset(" \t\r\n;&|()")
_SHELL_SAFE = re.compile(r"[\w@%+=:,./\[\]-]+")
_MAX_DEPTH = 3


def redact_argv(argv: list[str]) -> list[str]:
    """argv with secret values replaced by `[REDACTED]`, one output argument per input argument."""
    return _redact_argv(list(argv), 0)


def redact_value(value: str) -> str:
    """One argument standing alone, with its secrets replaced (rules 1, 2, 4 and 5 of the module)."""
    return _redact_arg(value, 0)


def _redact_argv(argv: list[str], depth: int) -> list[str]:
    out: list[str] = []
    pending: str | None = None  # what the previous argument makes of this one (see _option_kind)
    for arg in argv:
        if pending in ("auth-header", "header-value") and "://" in arg:
            pending = None  # `-H Authorization: URL`: curl drops the header, the URL is no value
        if pending is not None and not _LONG_OPTION.fullmatch(arg):
            if pending == "auth-header" and arg.lower() in _AUTH_SCHEMES:
                out.append(arg)  # `Authorization:` `Bearer` `x`: the scheme stays, the next word goes
                pending = "header-value"
                continue
            if pending == "header" and (split := _header_name_kind(arg, strict=False)):
                out.append(arg)  # `-H` `X-Api-Key:` `x`, as a shell splits `-H X-Api-Key: x`
                pending = split
                continue
            out.append(_redact_option_value(pending, arg, depth))
            pending = None
            continue
        pending = _option_kind(arg)
        if pending is not None:
            out.append(arg)
        else:
            out.append(_redact_attached(arg, depth))
    return out


def _option_kind(arg: str) -> str | None:
    """What the next argument is to an option standing alone: "header" (a header line), "user"
    (`user:password`), "secret" (all of it), "auth-header" (after `Authorization:`, a scheme or the
    value), "header-value" (after another secret header's name, the value); None: nothing secret."""
    if _HEADER_OPTION.fullmatch(arg):
        return "header"
    if _USER_OPTION.fullmatch(arg):
        return "user"
    if _OPTION.fullmatch(arg) and not arg.startswith("--no-") and _SECRET_NAME.search(arg):
        return "secret"
    return _header_name_kind(arg, strict=True)


def _header_name_kind(arg: str, *, strict: bool) -> str | None:
    """`Authorization:` or another secret header's name alone: its value is in the next argument."""
    if (m := _HEADER_NAME.fullmatch(arg)) and _secret_header(m["name"], strict=strict):
        return "auth-header" if m["name"].lower() in _SCHEME_HEADERS else "header-value"
    return None


def _redact_option_value(kind: str, value: str, depth: int) -> str:
    if kind in ("secret", "auth-header", "header-value"):
        return REDACTED
    if kind == "user":
        return _redact_arg(_redact_user(value), depth)
    header = _redact_header_line(_redact_text(value), strict=False)
    return header if header is not None else _redact_arg(value, depth)


def _redact_attached(arg: str, depth: int) -> str:
    """`-HX`, `--header=X`, `-uX`, `--user=X`; any other argument by the rules for one argument."""
    if m := _HEADER_ATTACHED.fullmatch(arg):
        return m["opt"] + _redact_option_value("header", m["value"], depth)
    if (m := _USER_ATTACHED.fullmatch(arg)) and ":" in m["value"]:
        return m["opt"] + _redact_option_value("user", m["value"], depth)
    return _redact_arg(arg, depth)


def _redact_arg(arg: str, depth: int) -> str:
    prefix = ""  # the names of `A=B=value`, none of them secret
    while m := _ASSIGNMENT.fullmatch(arg):
        if not m["value"]:
            return prefix + arg
        if _SECRET_NAME.search(m["name"]):
            return f"{prefix}{m['name']}{m['sep']}{REDACTED}"
        prefix, arg = prefix + m["name"] + m["sep"], m["value"]
    text = _redact_text(arg)
    header = _redact_header_line(text, strict=True)
    if header is not None:
        return prefix + header
    if depth < _MAX_DEPTH and any(c.isspace() for c in text):
        return prefix + _redact_script(text, depth + 1)
    return prefix + text


def _redact_text(text: str) -> str:
    """Rule 4: what is found anywhere inside an argument."""
    text = _PRIVATE_KEY.sub(lambda m: f"{m['begin']}{REDACTED}{m['end']}", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _QUERY_PARAM.sub(_redact_param, text)
    text = _JSON_FIELD.sub(
        lambda m: f'{m["key"]}"{REDACTED}"' if m["value"] and _SECRET_NAME.search(m["name"]) else m[0], text
    )
    return _KEY_SHAPE.sub(REDACTED, text)


def _redact_param(m: re.Match[str]) -> str:
    name = m["name"]
    if _SECRET_NAME.search(name) or _SECRET_PARAM.search(name):
        return f"{m['lead']}{name}={REDACTED}"
    return m[0]


def _secret_header(name: str, *, strict: bool) -> bool:
    if not _SECRET_HEADER.search(name):
        return False
    return not strict or "-" in name or name.lower() in _BARE_HEADERS


def _redact_header_value(name: str, value: str) -> str:
    if not value.strip():
        return value
    if name.lower() in _SCHEME_HEADERS and (scheme := _AUTH_SCHEME.match(value)):
        return scheme[0] + REDACTED
    return REDACTED


def _redact_header_line(arg: str, *, strict: bool) -> str | None:
    """`Name: value` with a secret name, value redacted; None when `arg` is no such header line."""
    m = _HEADER_LINE.fullmatch(arg)
    if m is None or not _secret_header(m["name"], strict=strict):
        return None
    return m["name"] + m["colon"] + _redact_header_value(m["name"], m["value"])


def _redact_user(value: str) -> str:
    """`user:password` -> `user:[REDACTED]`; a lone user, `uid:gid`, `+%H:%M` or a URL stays."""
    user, _, password = value.partition(":")
    if (
        not password
        or user.startswith(("+", "%"))
        or password.startswith("//")
        or (user.isdigit() and password.isdigit())
        or any(c.isspace() for c in user)
    ):
        return value
    return f"{user}:{REDACTED}"


def _redact_script(text: str, depth: int) -> str:
    """Rule 5: each command of a shell script gets the argv rules; a changed word is written back."""
    commands = _shell_words(text)
    if commands is None:
        text = _redact_prose(text)  # which may balance the quotes, by redacting a quoted value
        if (commands := _shell_words(text)) is None:
            return text
    pieces: list[str] = []
    pos = 0
    for command in commands:
        redacted = _redact_argv([word.value for word in command], depth)
        for word, new in zip(command, redacted, strict=True):
            if new != word.value:
                pieces += [text[pos : word.start], _rewrite(text, word, new)]
                pos = word.end
    return "".join([*pieces, text[pos:]])


class _Word(NamedTuple):
    start: int  # where the word stands in the text, quotes included
    end: int
    value: str  # the word as the command receives it
    at: list[int]  # where each character of value stands in the text


def _shell_words(text: str) -> list[list[_Word]] | None:
    """The words of each command in `text`, split as a POSIX shell would; None on an unbalanced quote."""
    commands: list[list[_Word]] = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
        elif c in _SHELL_BREAK:
            if commands[-1]:
                commands.append([])
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        else:
            start, chars, at = i, [], []
            while i < n and text[i] not in _SHELL_BREAK:
                c = text[i]
                if c == "\\":
                    if text[i + 1 : i + 2] not in ("", "\n"):
                        chars.append(text[i + 1])
                        at.append(i + 1)
                    i += 2
                elif c == "'":
                    end = text.find("'", i + 1)
                    if end < 0:
                        return None
                    chars.append(text[i + 1 : end])
                    at += range(i + 1, end)
                    i = end + 1
                elif c == '"':
                    i += 1
                    while i < n and text[i] != '"':
                        if text[i] == "\\" and text[i + 1 : i + 2] in ('"', "\\", "$", "`", "\n"):
                            if text[i + 1] != "\n":
                                chars.append(text[i + 1])
                                at.append(i + 1)
                            i += 2
                        else:
                            chars.append(text[i])
                            at.append(i)
                            i += 1
                    if i >= n:
                        return None
                    i += 1
                else:
                    chars.append(c)
                    at.append(i)
                    i += 1
            commands[-1].append(_Word(start, min(i, n), "".join(chars), at))
    return [command for command in commands if command]


def _rewrite(text: str, word: _Word, new: str) -> str:
    """The word's text with its value changed to `new` (old with parts replaced by [REDACTED]),
    quotes and escapes kept; requoted when that cannot be done."""
    literals = new.split(REDACTED)
    old = word.value
    spans: list[tuple[int, int]] = []  # the parts of old that became [REDACTED]
    pos = len(literals[0])
    if old.startswith(literals[0]) and old.endswith(literals[-1]):
        for literal in literals[1:-1]:
            found = old.find(literal, pos, len(old) - len(literals[-1]))
            if found < 0:
                break
            spans.append((pos, found))
            pos = found + len(literal)
        else:
            if pos <= len(old) - len(literals[-1]):
                spans.append((pos, len(old) - len(literals[-1])))
    if len(spans) == len(literals) - 1:
        raw, cut = [], word.start
        for a, b in spans:
            at = word.at[a] if a < len(old) else word.end
            raw += [text[cut:at], REDACTED]
            cut = word.at[b - 1] + 1 if a < b else at
        candidate = "".join([*raw, text[cut : word.end]])
        words = _shell_words(candidate)
        if words and len(words) == len(words[0]) == 1 and words[0][0][:3] == (0, len(candidate), new):
            return candidate
    return _requote(text[word.start : word.end], new)


def _requote(raw: str, new: str) -> str:
    """`new` as a shell word, in `raw`'s quotes where it can be."""
    if len(raw) > 1 and raw[0] == raw[-1] == '"' and not re.search(r'["\\$`]', new):
        return f'"{new}"'
    if len(raw) > 1 and raw[0] == raw[-1] == "'" and "'" not in new:
        return f"'{new}'"
    return new if _SHELL_SAFE.fullmatch(new) else shlex.quote(new)


def _redact_prose(text: str) -> str:
    """Text that does not split into shell words: header lines, assignments and options by pattern."""

    def assignment(m: re.Match[str]) -> str:
        return f"{m['name']}{m['sep']}{REDACTED}" if _SECRET_NAME.search(m["name"]) else m[0]

    def option(m: re.Match[str]) -> str:
        kind, value = _option_kind(m["opt"]), m["value"]
        if kind == "secret" and not value.startswith("--"):
            return f"{m['opt']}{m['space']}{REDACTED}"
        if kind == "user" and value[0] not in "'\"":
            return f"{m['opt']}{m['space']}{_redact_user(value)}"
        return m[0]

    pieces: list[str] = []
    pos = 0
    for m in _PROSE_HEADER.finditer(text):
        if m.start() < pos or not _secret_header(m["name"], strict=True):
            continue
        if value := _PROSE_HEADER_VALUE.match(text, m.end()):
            pieces += [text[pos : m.end()], _redact_header_value(m["name"], value[0])]
            pos = value.end()
    text = "".join([*pieces, text[pos:]])
    text = _PROSE_ASSIGNMENT.sub(assignment, text)
    return _PROSE_OPTION.sub(option, text)

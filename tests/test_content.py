"""Documents round-trip byte-exact, through JSON as they travel to the store."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.content import FilePolicy, Unsupported, decode, decode_entry, encode, identity, link_problem, sha256_hex

SKIP = FilePolicy(binary="skip")
SYNC = FilePolicy()
# JSON can escape what jsonb refuses: NUL and lone surrogates, made likely here
ANY_CHAR = st.characters() | st.characters(categories=["Cs"]) | st.just("\x00")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def through_json(content: dict) -> dict:
    """As PostgreSQL takes it: strict JSON in UTF-8 (no lone surrogates), and no U+0000."""
    raw = json.dumps(content, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert not any("\x00" in s for s in strings(content))
    return json.loads(raw)


@pytest.mark.parametrize("path,data", [
    ("crlf.md", b"one\r\ntwo\r\n"),
    ("nofinal.txt", b"no final newline"),
    ("bom.md", "\ufeff# BOM\n".encode()),
    ("empty.md", b""),
    ("ünï cödé.md", "日本語 ✓\n".encode()),
    ("mixed.txt", b"a\nb\r\nc\rd"),
    ("trailing.md", b"   \n\n\n"),
])
def test_text_round_trips_byte_exact(path, data):
    content = through_json(encode(path, data, SKIP))
    assert content["encoding"] == "utf-8"
    assert decode(content) == data


def test_json_and_yaml_carry_their_parsed_value():
    content = encode("meta/session.json", b'{"id": "s1", "n": [1, 2]}\n', SKIP)
    assert (content["format"], content["value"]) == ("json", {"id": "s1", "n": [1, 2]})
    content = through_json(encode("x.yaml", b"when: 2024-01-02\nitems: [1, two]\n", SKIP))
    assert content["value"] == {"when": "2024-01-02", "items": [1, "two"]}


def test_front_matter_after_a_bom_with_crlf_and_closing_at_the_end():
    data = "\ufeff---\r\ntitle: Spec\r\n---".encode()
    content = through_json(encode("spec.md", data, SKIP))
    assert content["front_matter"] == {"title": "Spec"} and decode(content) == data
    assert "front_matter" not in encode("open.md", b"---\ntitle: never closed\n", SKIP)


def test_markdown_front_matter_is_parsed_and_the_text_kept():
    data = b"---\ntitle: Spec\ntags: [a, b]\n---\n# Spec\n"
    content = encode("spec.md", data, SKIP)
    assert content["front_matter"] == {"title": "Spec", "tags": ["a", "b"]}
    assert decode(content) == data
    assert "front_matter" not in encode("plain.md", b"# no front matter\n---\n", SKIP)


@pytest.mark.parametrize("path,data", [
    ("bad.json", b'{"a": NaN}'),
    ("bad.json", b"{not json"),
    ("bad.json", b'[Infinity]'),
    ("bad.json", b'[1e400]'),
    ("bad.json", b'{"a": "\\u0000"}'),
    ("bad.json", b'{"a": "\\ud800"}'),
    ("bad.json", b'{"\\udc80": 1}'),
    ("odd.yaml", b'a: "\\ud800"\n'),
    ("odd.yaml", b'a: "\\0"\n'),
    ("odd.yaml", b"2024-01-02: a date as a key\n"),
    ("bad.md", b'---\ntitle: "\\udfff"\n---\nbody'),
    ("odd.yaml", b"? [1, 2]\n: complex key\n"),
    ("odd.yaml", b"s: !!set {a}\n"),
    ("odd.yaml", b"a: .nan\n"),
    ("bad.md", b"---\n: : :\n---\nbody"),
])
def test_unparseable_structure_never_breaks_the_document(path, data):
    content = through_json(encode(path, data, SKIP))
    assert "value" not in content and "front_matter" not in content
    assert decode(content) == data


def test_binary_is_a_blob_by_default_and_a_skip_says_the_real_reason():
    data = b"\x89PNG\r\n\x1a\n\xff\x00"
    with pytest.raises(Unsupported, match=r"^img/logo.png: contains NUL bytes; skipped because files.binary: skip"):
        encode("img/logo.png", data, SKIP)
    with pytest.raises(Unsupported, match=r"^img/logo.png: not UTF-8; skipped because files.binary: skip"):
        encode("img/logo.png", b"\xff\xfe", SKIP)
    assert through_json(encode("img/logo.png", data, SYNC)) == {
        "encoding": "blob", "format": "binary", "sha256": sha256_hex(data), "size": len(data)}


def test_markdown_with_a_nul_byte_is_a_blob_not_a_skip():
    """Regression (issue 18): valid UTF-8 with U+0000 was skipped as "not UTF-8 text"."""
    content = encode("notes.md", b"# notes\x00\n", SYNC)
    assert content["encoding"] == "blob" and content["size"] == 9


def test_legacy_base64_content_still_decodes():
    data = b"\x00\xff"
    assert decode({"encoding": "base64", "format": "binary", "data": "AP8="}) == data
    assert decode_entry({"encoding": "base64", "format": "binary", "data": "AP8="}).identity == sha256_hex(data)


def test_oversize_is_skipped_whatever_the_binary_policy():
    for policy in (FilePolicy(max_size=10), FilePolicy(max_size=10, binary="skip")):
        with pytest.raises(Unsupported, match=r"big.md: .* over files.max_size"):
            encode("big.md", b"x" * 11, policy)


def test_identity_hashes_the_mode_like_git():
    digest = sha256_hex(b"#!/bin/sh\n")
    assert identity(digest) == digest  # every plain file's hash from before modes stays valid
    assert identity(digest, executable=True) == sha256_hex(f"100755 {digest}".encode())
    assert identity(sha256_hex(b"../x"), link=True) == sha256_hex(f"120000 {sha256_hex(b'../x')}".encode())
    script = encode("run.sh", b"#!/bin/sh\n", SYNC, executable=True)
    assert script["executable"] is True and decode_entry(script).identity == identity(digest, executable=True)
    assert "executable" not in encode("run.sh", b"#!/bin/sh\n", SYNC)


@pytest.mark.parametrize("path,target,ok", [
    ("a/l", "b", True), ("a/l", "../b", True), ("a/b/l", "../../c/d", True), ("l", "./x/./y", True),
    ("a/l", "../../b", False), ("l", "/etc/passwd", False), ("a/l", "x/../y", False), ("a/l", "..", False),
    ("l", "", False),
])
def test_a_link_syncs_only_when_it_stays_inside_the_root(path, target, ok):
    assert (link_problem(path, target) is None) == ok


@given(st.binary(max_size=300))
def test_any_bytes_round_trip_or_are_refused(data):
    assert decode_entry(through_json(encode("f.bin", data, SYNC))).identity == sha256_hex(data)
    try:
        content = encode("f.md", data, SKIP)
    except Unsupported:
        return
    assert decode(through_json(content)) == data


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(ANY_CHAR),
                    lambda kids: st.lists(kids) | st.dictionaries(st.text(ANY_CHAR), kids),
                    max_leaves=20))
def test_any_json_document_is_stored_safely(value):
    """Whatever a JSON file holds (escaped NUL, lone surrogates), the document is storable."""
    data = json.dumps(value).encode()
    content = through_json(encode("a.json", data, SKIP))
    assert decode(content) == data
    assert "value" in content or "parse_error" in content


@given(st.text(max_size=200).filter(lambda t: "\x00" not in t))
def test_any_text_round_trips_in_every_format(text):
    data = text.encode("utf-8", "surrogatepass")
    for path in ("a.md", "a.json", "a.yaml", "a.txt"):
        try:
            content = encode(path, data, SKIP)
        except Unsupported:  # lone surrogates are not UTF-8
            continue
        assert decode(through_json(content)) == data


def test_yaml_alias_bombs_are_not_expanded():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))  # 10^10 leaves if expanded
    content = encode("bomb.yaml", bomb.encode(), SKIP)
    assert "value" not in content and "more than" in content["parse_error"]
    assert decode(content) == bomb.encode()
    loop = encode("loop.yaml", b"a: &a [*a]\n", SKIP)
    assert "value" not in loop

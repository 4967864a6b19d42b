"""Three-way merge: real git merge-file for text, value merges for JSON and YAML."""
from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from syncd.content import file_entry, link_entry
from syncd.engine.merge import MergeResult, has_markers, merge3, merge_entries

MD_BASE = b"# Title\n\nFirst paragraph.\n\nSecond paragraph.\n\nThird paragraph.\n"


def lines(*items: str, end: str = "\n") -> bytes:
    return "".join(item + end for item in items).encode()


# --- text ---------------------------------------------------------------------------------

def test_markdown_edits_to_different_paragraphs_merge_cleanly():
    local = MD_BASE.replace(b"First paragraph.", b"First paragraph, edited here.")
    remote = MD_BASE.replace(b"Third paragraph.", b"Third paragraph, edited there.")
    result = merge3("notes.md", MD_BASE, local, remote)
    expected = (b"# Title\n\nFirst paragraph, edited here.\n\nSecond paragraph.\n\n"
                b"Third paragraph, edited there.\n")
    assert result == MergeResult(expected, expected, "text")
    assert result.clean


def test_markdown_overlapping_edits_conflict_with_both_versions_and_labels():
    local = MD_BASE.replace(b"Second paragraph.", b"Second, as I wrote it.")
    remote = MD_BASE.replace(b"Second paragraph.", b"Second, as they wrote it.")
    result = merge3("notes.md", MD_BASE, local, remote, labels=("mine", "ancestor", "theirs"))
    assert not result.clean and result.content is None and result.how == "none"
    assert b"<<<<<<< mine\n" in result.marked and b">>>>>>> theirs\n" in result.marked
    assert b"Second, as I wrote it." in result.marked and b"Second, as they wrote it." in result.marked
    assert b"ancestor" not in result.marked  # no base section without diff3
    assert has_markers(result.marked)


def test_diff3_conflict_shows_the_base_section():
    local = MD_BASE.replace(b"Second paragraph.", b"Mine.")
    remote = MD_BASE.replace(b"Second paragraph.", b"Theirs.")
    result = merge3("notes.md", MD_BASE, local, remote, labels=("mine", "ancestor", "theirs"), diff3=True)
    assert not result.clean
    assert b"||||||| ancestor\nSecond paragraph.\n=======\n" in result.marked


def test_markdown_identical_edits_on_both_sides_merge_cleanly():
    edited = MD_BASE.replace(b"Second paragraph.", b"Both sides wrote this.")
    assert merge3("notes.md", MD_BASE, edited, edited) == MergeResult(edited, edited, "text")


@pytest.mark.parametrize("end,prefix,final", [
    ("\r\n", "", True),  # CRLF line endings
    ("\n", "", False),  # no final newline
    ("\n", "\ufeff", True),  # a UTF-8 BOM
    ("\r\n", "\ufeff", False),  # all three
])
def test_line_endings_bom_and_missing_final_newline_survive_byte_exact(end, prefix, final):
    def doc(first: str, last: str) -> bytes:
        text = end.join([prefix + first, "two", "three", "four", last]) + (end if final else "")
        return text.encode()

    result = merge3("notes.md", doc("one", "five"), doc("ONE", "five"), doc("one", "FIVE"))
    assert result.clean and result.how == "text"
    assert result.content == doc("ONE", "FIVE")


def test_base_none_with_different_text_on_both_sides_conflicts():
    result = merge3("new.md", None, b"# Mine\n", b"# Theirs\n")
    assert not result.clean and result.how == "none"
    assert b"# Mine" in result.marked and b"# Theirs" in result.marked and has_markers(result.marked)


def test_base_none_with_identical_text_is_clean():
    assert merge3("new.md", None, b"# Same\n", b"# Same\n") == MergeResult(b"# Same\n", b"# Same\n", "text")


@pytest.mark.parametrize("side", ["base", "local", "remote"])
@pytest.mark.parametrize("data", [b"PK\x03\x04\x00\x00", b"caf\xe9\n"])  # NUL; not UTF-8
def test_binary_input_is_not_mergeable(side, data):
    sides = {"base": b"text\n", "local": b"local text\n", "remote": b"remote text\n", side: data}
    result = merge3("file.bin", sides["base"], sides["local"], sides["remote"])
    assert result == MergeResult(None, sides["local"], "none")


# --- JSON ---------------------------------------------------------------------------------

JSON_BASE = lines("{", '  "name": "idse",', '  "stage": "plan",', '  "owner": "ana",',
                  '  "team": "core",', '  "status": "open"', "}")


def test_json_different_keys_changed_on_each_side_merge_cleanly():
    local = JSON_BASE.replace(b'"idse"', b'"idse-2"')
    remote = JSON_BASE.replace(b'"open"', b'"closed"')
    result = merge3("session.json", JSON_BASE, local, remote)
    assert result.clean and result.how == "text"
    assert json.loads(result.content) == {"name": "idse-2", "stage": "plan", "owner": "ana",
                                          "team": "core", "status": "closed"}


def test_json_keys_added_at_the_end_merge_by_structure_in_local_style():
    base = lines("{", '    "a": 1', "}")
    local = lines("{", '    "a": 1,', '    "b": 2', "}")
    remote = lines("{", '    "a": 1,', '    "c": 3', "}")
    assert not merge3("plain.txt", base, local, remote).clean  # the line merge cannot do it
    result = merge3("state.json", base, local, remote)
    expected = lines("{", '    "a": 1,', '    "b": 2,', '    "c": 3', "}")
    assert result == MergeResult(expected, expected, "structure")


def test_json_structure_result_keeps_bom_crlf_and_no_final_newline():
    base = "\ufeff{\r\n\t\"a\": 1\r\n}".encode()
    local = "\ufeff{\r\n\t\"a\": 1,\r\n\t\"b\": \"é\"\r\n}".encode()
    remote = "\ufeff{\r\n\t\"a\": 1,\r\n\t\"c\": 3\r\n}".encode()
    result = merge3("state.json", base, local, remote)
    assert result.how == "structure"
    assert result.content == "\ufeff{\r\n\t\"a\": 1,\r\n\t\"b\": \"é\",\r\n\t\"c\": 3\r\n}".encode()


def test_json_same_key_changed_differently_conflicts():
    local = JSON_BASE.replace(b'"plan"', b'"tasks"')
    remote = JSON_BASE.replace(b'"plan"', b'"spec"')
    result = merge3("session.json", JSON_BASE, local, remote)
    assert not result.clean and result.how == "none" and has_markers(result.marked)


def test_json_same_key_added_with_different_values_in_different_places_conflicts():
    local = JSON_BASE.replace(b'  "stage"', b'  "due": "monday",\n  "stage"')
    remote = JSON_BASE.replace(b'  "status"', b'  "due": "friday",\n  "status"')
    textual = merge3("session.txt", JSON_BASE, local, remote)
    assert textual.clean  # lines merge fine, yet the JSON would hold "due" twice
    result = merge3("session.json", JSON_BASE, local, remote)
    assert not result.clean and result.how == "none"
    assert result.marked == textual.content  # what the user edits to settle it


def test_json_delete_on_one_side_and_edit_on_the_other_merge_cleanly():
    local = JSON_BASE.replace(b'  "stage": "plan",\n', b"")
    remote = JSON_BASE.replace(b'"open"', b'"closed"')
    result = merge3("session.json", JSON_BASE, local, remote)
    assert result.clean
    assert json.loads(result.content) == {"name": "idse", "owner": "ana", "team": "core", "status": "closed"}


def test_json_delete_on_one_side_and_edit_of_that_key_on_the_other_conflicts():
    base = b'{"a": 1, "b": 2}\n'
    result = merge3("x.json", base, b'{"b": 2}\n', b'{"a": 5, "b": 2}\n')
    assert not result.clean


def test_json_nested_objects_merge_recursively():
    base = b'{"outer": {"x": 1, "y": 2}, "keep": [1, 2]}\n'
    local = b'{"outer": {"x": 10, "y": 2}, "keep": [1, 2]}\n'
    remote = b'{"outer": {"x": 1, "y": 20, "z": 30}, "keep": [1, 2]}\n'
    result = merge3("nested.json", base, local, remote)
    assert result.how == "structure"
    assert json.loads(result.content) == {"outer": {"x": 10, "y": 20, "z": 30}, "keep": [1, 2]}
    assert result.content.startswith(b'{\n  "outer": {\n    "x": 10,')  # default indent 2


def test_json_lists_changed_differently_on_both_sides_conflict():
    base = b'{"tags": ["a"], "n": 1}\n'
    result = merge3("tags.json", base, b'{"tags": ["a", "b"], "n": 1}\n', b'{"tags": ["a", "c"], "n": 1}\n')
    assert not result.clean and result.how == "none"


def test_json_true_is_a_different_value_from_one():
    base = b'{"flag": 1, "n": 1}\n'
    result = merge3("t.json", base, b'{"flag": true, "n": 1}\n', b'{"flag": 1, "n": 2}\n')
    assert result.clean
    assert json.loads(result.content) == {"flag": True, "n": 2}
    assert json.loads(result.content)["flag"] is True


def test_json_base_none_with_disjoint_objects_merges_both():
    result = merge3("new.json", None, b'{\n  "a": 1\n}\n', b'{\n  "b": 2\n}\n')
    assert result == MergeResult(b'{\n  "a": 1,\n  "b": 2\n}\n', b'{\n  "a": 1,\n  "b": 2\n}\n', "structure")


def test_json_that_does_not_parse_follows_text_rules():
    base = b'{"a": NaN}\n'
    result = merge3("bad.json", base, b'{"a": NaN, "b": 1}\n', b'{"a": NaN, "c": 2}\n')
    assert not result.clean and has_markers(result.marked)


def test_deeply_nested_json_falls_back_to_text():
    deep = b"[" * 100_000 + b"]" * 100_000
    result = merge3("deep.json", deep, deep + b"\n", deep)
    assert result.clean and result.content == deep + b"\n"


# --- YAML ---------------------------------------------------------------------------------

YAML_BASE = b"name: idse\nstage: plan\nowner: ana\nteam: core\nstatus: open\n"


def test_yaml_different_keys_changed_on_each_side_merge_cleanly():
    local = YAML_BASE.replace(b"idse", b"idse-2")
    remote = YAML_BASE.replace(b"open", b"closed")
    result = merge3("session.yaml", YAML_BASE, local, remote)
    assert result.clean
    assert yaml.safe_load(result.content) == {"name": "idse-2", "stage": "plan", "owner": "ana",
                                              "team": "core", "status": "closed"}


def test_yaml_keys_added_at_the_end_merge_by_structure():
    result = merge3("s.yml", b"a: 1\n", b"a: 1\nb: [x, y]\n", b"a: 1\nc: 3\n")
    assert result == MergeResult(b"a: 1\nb:\n- x\n- y\nc: 3\n", b"a: 1\nb:\n- x\n- y\nc: 3\n", "structure")


def test_yaml_with_comments_that_only_a_structure_merge_could_settle_conflicts():
    base = b"# pipeline\na: 1\n"
    result = merge3("s.yaml", base, base + b"b: 2\n", base + b"c: 3  # why\n")
    assert not result.clean and result.how == "none" and has_markers(result.marked)


def test_yaml_alias_bomb_is_not_expanded():
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for name, prev in zip("bcdefghi", "abcdefgh"):
        bomb += f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n".encode()
    result = merge3("bomb.yaml", bomb, bomb + b"j: 1\n", bomb + b"k: 2\n")
    assert not result.clean and has_markers(result.marked)  # judged as text


# --- has_markers --------------------------------------------------------------------------

def test_has_markers_on_merge_file_output():
    result = merge3("a.txt", b"x\n", b"y\n", b"z\n")
    assert has_markers(result.marked)


@pytest.mark.parametrize("data", [
    b"Title\n=====\n\nText.\n",
    b"Title\n=======\n\nText.\n",
    b"=======\n",
    b"<<<<<<< local\nonly a start and a rule\n=======\n",
    b"text with <<<<<<< inside\n=======\n>>>>>>> remote\n",
])
def test_has_markers_false_without_a_whole_block(data):
    assert not has_markers(data)


def test_has_markers_with_crlf():
    assert has_markers(b"a\r\n<<<<<<< local\r\nx\r\n=======\r\ny\r\n>>>>>>> remote\r\nb\r\n")
    assert has_markers(b"<<<<<<<\r\nx\r\n=======\r\ny\r\n>>>>>>> remote")


# --- properties ---------------------------------------------------------------------------

LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), max_size=6)
TEXT = st.builds(lambda items, final: ("\n".join(items) + ("\n" if final and items else "")).encode(),
                 st.lists(LINE, max_size=8), st.booleans())
PATHS = st.sampled_from(["doc.md", "notes.txt"])


@settings(max_examples=50, deadline=None)
@given(PATHS, TEXT, TEXT)
def test_same_change_on_both_sides_is_that_change(path, base, changed):
    assert merge3(path, base, changed, changed) == MergeResult(changed, changed, "text")


@settings(max_examples=50, deadline=None)
@given(PATHS, TEXT, TEXT)
def test_change_on_one_side_only_is_that_change(path, base, changed):
    assert merge3(path, base, base, changed).content == changed
    assert merge3(path, base, changed, base).content == changed


KEYS = st.text("abcdefgh", min_size=1, max_size=3)
VALUES = st.none() | st.booleans() | st.integers(-5, 5) | st.text("xyz", max_size=3)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8), st.data())
def test_json_disjoint_changes_on_flat_objects_both_land(base, data):
    owner = {key: data.draw(st.sampled_from(["local", "remote", None]), label=key) for key in base}
    local, remote, expected = dict(base), dict(base), dict(base)
    for key, side in owner.items():
        if side is None:
            continue
        changed = local if side == "local" else remote
        if data.draw(st.booleans(), label=f"delete {key}"):
            del changed[key], expected[key]
        else:
            changed[key] = expected[key] = data.draw(VALUES, label=f"new {key}")
    for prefix, changed in (("L", local), ("R", remote)):  # new keys, disjoint by their prefix
        for key, value in data.draw(st.dictionaries(KEYS, VALUES, max_size=3), label=prefix).items():
            changed[prefix + key] = expected[prefix + key] = value

    def dump(value: dict) -> bytes:
        return (json.dumps(value, indent=2) + "\n").encode()

    result = merge3("flat.json", dump(base), dump(local), dump(remote))
    assert result.clean
    merged = json.loads(result.content)
    assert merged == expected
    assert [type(v) for v in merged.values()] == [type(expected[k]) for k in merged]


def test_entries_merge_only_as_text_and_the_executable_bit_three_way():
    base = file_entry(b"a\nb\nc\n")
    ours = file_entry(b"A\nb\nc\n", executable=True)
    theirs = file_entry(b"a\nb\nC\n")
    merged, how = merge_entries("t.sh", base, ours, theirs)
    assert (merged.data, merged.executable, how) == (b"A\nb\nC\n", True, "text")
    script = file_entry(b"a\nb\nc\n", executable=True)  # the bit taken off here, the text edited there
    merged, _ = merge_entries("t.sh", script, file_entry(b"a\nb\nc\n"), file_entry(b"a\nb\nC\n", executable=True))
    assert (merged.data, merged.executable) == (b"a\nb\nC\n", False)
    assert merge_entries("img.png", base, file_entry(b"\x00a"), theirs) is None  # a blob is never merged
    assert merge_entries("l", base, link_entry("x"), theirs) is None  # nor a link

"""The docs' table of request fields and headers says what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from semcache.http.partition import ANSWER_HEADERS, CREDENTIAL_HEADERS, DEFAULT_IGNORED_FIELDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-it-works.md"


def table() -> dict[str, str]:
    """``{name: role}`` for the rows that name one field or header alone."""
    text = PAGE.read_text()
    body = text.split("<!-- request-table:start -->", 1)[1].split("<!-- request-table:end -->")[0]
    roles: dict[str, str] = {}
    for line in body.strip().splitlines()[2:]:
        first, role = (cell.strip() for cell in line.strip("|").split("|")[:2])
        single = re.fullmatch(r"`([^`]+)`", first)
        if single:
            roles[single.group(1).lower()] = role
    return roles


def test_every_identity_and_answer_header_is_listed_as_partition():
    roles = table()
    for header in (*CREDENTIAL_HEADERS, *ANSWER_HEADERS):
        assert roles.get(header) == "partition", header


def test_every_ignored_body_field_is_listed_as_ignored_and_no_other():
    roles = table()
    for name in DEFAULT_IGNORED_FIELDS:
        assert roles.get(name) == "ignored", name
    fields = {n for n, r in roles.items() if r == "ignored" and "-" not in n}
    assert fields == set(DEFAULT_IGNORED_FIELDS)


def test_no_header_is_listed_as_partition_that_the_code_does_not_use():
    roles = table()
    known = {*CREDENTIAL_HEADERS, *ANSWER_HEADERS, "host", "store", "background", "stream"}
    known |= {"model"}
    listed = {n for n, r in roles.items() if r == "partition"}
    assert listed <= known, listed - known

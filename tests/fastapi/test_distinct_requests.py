"""Requests that differ only in what normalisation hides are never served to each other.

The exact key is the question as sent (only its ends stripped, line endings unified),
and the shape of the input (a list of prompts or one string) is part of the partition:
``x²`` is not ``x2``, Python code indented differently is other code, and a batch of two
prompts is not one prompt holding both lines.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fastapi.test_fastapi_middleware import client, counting_app

CODE_A = "Fix this:\ndef f(x):\n    if x:\n        return 1\n    return 2"
CODE_B = "Fix this:\ndef f(x):\n    if x:\n        return 1\n        return 2"

DIFFERENT: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "superscript two vs two": (
        {"prompt": "Expand (x²+1)*(x+1)"},
        {"prompt": "Expand (x2+1)*(x+1)"},
    ),
    "cube vs twenty-three": ({"prompt": "What is 2³?"}, {"prompt": "What is 23?"}),
    "code indentation": ({"prompt": CODE_A}, {"prompt": CODE_B}),
    "list of prompts vs one string": ({"input": ["a cat", "a dog"]}, {"input": "a cat\na dog"}),
    "list of prompts vs fewer prompts": (
        {"input": ["a cat", "a dog"]},
        {"input": ["a cat\na dog"]},
    ),
    "text parts vs one string": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Translate: the cat"},
                        {"type": "text", "text": "the dog"},
                    ],
                }
            ]
        },
        {"messages": [{"role": "user", "content": "Translate: the cat\nthe dog"}]},
    ),
}


@pytest.mark.parametrize("pair", DIFFERENT.values(), ids=list(DIFFERENT))
async def test_requests_differing_only_in_normalised_text_or_shape_do_not_match(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = pair
    app, cache, calls = counting_app()
    async with client(app) as c:
        assert (await c.post("/v1/ask", json=first)).headers["x-semcache"] == "miss"
        assert (await c.post("/v1/ask", json=first)).headers["x-semcache"] == "hit"
        again = await c.post("/v1/ask", json=second)
        assert again.headers["x-semcache"] == "miss"
        assert again.json()["n"] == 2
        # Both are stored: each is served its own answer afterwards.
        assert (await c.post("/v1/ask", json=second)).json()["n"] == 2
        assert (await c.post("/v1/ask", json=first)).json()["n"] == 1
    assert len(calls) == 2
    await cache.close()


async def test_exact_repeats_and_harmless_differences_still_hit() -> None:
    app, cache, calls = counting_app()
    async with client(app) as c:
        assert (await c.post("/v1/ask", json={"prompt": CODE_A})).headers["x-semcache"] == "miss"
        for variant in (CODE_A, CODE_A + "\n", "  " + CODE_A, CODE_A.replace("\n", "\r\n")):
            response = await c.post("/v1/ask", json={"prompt": variant})
            assert response.headers["x-semcache"] == "hit", repr(variant)
        # Case and spacing inside a line: a semantic hit now, no longer an exact one.
        await c.post("/v1/ask", json={"prompt": "What is the capital of France?"})
        folded = await c.post("/v1/ask", json={"prompt": "what is the  capital of france"})
        assert folded.headers["x-semcache"] == "hit"
    assert len(calls) == 2
    await cache.close()

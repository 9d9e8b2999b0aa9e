import json

from hypothesis import given, settings
from hypothesis import strategies as st

from semcache.http import QUERY_PLACEHOLDER, default_extract_model, default_extract_query, extract
from semcache.http.extract import CONTEXT_PLACEHOLDER, mask_text


def q(body):
    return default_extract_query(None, body)


def test_plain_fields():
    assert q({"query": "What is AI?"}) == "What is AI?"
    assert q({"prompt": "Write a poem"}) == "Write a poem"
    assert q({"input": "Summarise this"}) == "Summarise this"
    assert q({"input": ["first line", "second line"]}) == "first line\nsecond line"
    assert q({"prompt": ["a", "b"]}) == "a\nb"


def test_fields_in_order_and_unusable_ones_skipped():
    assert (
        q({"query": "the query", "messages": [{"role": "user", "content": "chat"}]}) == "the query"
    )
    assert q({"query": None, "prompt": 42, "input": "the input"}) == "the input"
    assert q({"query": "   ", "prompt": "p"}) == "p"


def test_openai_chat_last_user_turn():
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about Paris"},
            {"role": "assistant", "content": "It is the capital of France."},
            {"role": "user", "content": "How big is it?"},
        ],
    }
    found = extract(body)
    assert found is not None
    assert (found.query, found.source) == ("How big is it?", "messages")
    # Everything but the last user turn's text stays for the partition.
    assert found.rest["messages"][:3] == body["messages"][:3]
    assert found.rest["messages"][3] == {"role": "user", "content": QUERY_PLACEHOLDER}
    assert found.rest["model"] == "gpt-4o"
    assert body["messages"][3]["content"] == "How big is it?"  # the body is not modified


def test_chat_content_parts_join_text_and_keep_images():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in"},
                    image,
                    {"type": "text", "text": "this picture?"},
                ],
            }
        ]
    }
    found = extract(body)
    assert found is not None
    assert found.query == "What is in\nthis picture?"
    assert image in found.rest["messages"][0]["content"]  # the image changes the answer


def test_text_only_parts_equal_string_content():
    as_string = extract({"messages": [{"role": "user", "content": "hi there"}]})
    as_parts = extract(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]}
    )
    assert as_string is not None and as_parts is not None
    assert as_string.rest == as_parts.rest


def test_last_user_turn_without_text_is_no_question():
    body = {
        "messages": [
            {"role": "user", "content": "Describe it"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        ]
    }
    assert q(body) is None


def test_tool_results_after_the_user_turn_stay_in_the_partition():
    body = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "tool_calls": [{"id": "1"}]},
            {"role": "tool", "tool_call_id": "1", "content": "12C"},
        ]
    }
    found = extract(body)
    assert found is not None and found.query == "Weather in Oslo?"
    assert found.rest["messages"][2]["content"] == "12C"


def test_messages_as_a_string():
    assert q({"messages": "just text"}) == "just text"


def test_responses_api_items():
    body = {
        "model": "gpt-4.1",
        "instructions": "Answer in French.",
        "input": [
            {"role": "user", "content": "Hello"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Bonjour"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "How are you?"}],
            },
            {"type": "function_call_output", "call_id": "c", "output": "{}"},
        ],
    }
    found = extract(body)
    assert found is not None
    assert (found.query, found.source) == ("How are you?", "input_items")
    assert found.rest["instructions"] == "Answer in French."
    assert found.rest["input"][0]["content"] == "Hello"


def test_anthropic_messages_with_system():
    body = {
        "model": "claude-sonnet",
        "system": [{"type": "text", "text": "You are terse."}],
        "max_tokens": 64,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Why is the sky blue?",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            }
        ],
    }
    found = extract(body)
    assert found is not None and found.query == "Why is the sky blue?"
    assert found.rest["system"] == body["system"]


def test_not_a_question():
    for body in (
        None,
        [],
        ["query"],
        "text",
        3,
        {},
        {"foo": "bar"},
        {"messages": []},
        {"messages": [{"role": "assistant", "content": "x"}]},
        {"input": []},
        {"messages": [{"role": "user", "content": None}]},
    ):
        assert q(body) is None, body


def test_default_extract_model():
    assert default_extract_model(None, {"model": "m"}) == "m"
    assert default_extract_model(None, {"model": 3}) is None
    assert default_extract_model(None, ["model"]) is None


def test_mask_text_replaces_every_equal_string():
    body = {"a": {"b": ["find me", "other"]}, "c": "find me", "d": 1}
    assert mask_text(body, "find me") == {
        "a": {"b": [QUERY_PLACEHOLDER, "other"]},
        "c": QUERY_PLACEHOLDER,
        "d": 1,
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["query", "prompt", "input", "messages", "role", "content", "type", "text", "model"]
            )
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_extract_never_raises_and_returns_text(body):
    found = extract(body)
    if found is not None:
        assert isinstance(found.query, str) and found.query.strip()
        json.dumps(found.rest)  # the rest stays JSON


def test_earlier_turns_as_context():
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "I am going skiing"},
            {"role": "assistant", "content": "Fun!", "tool_calls": [{"id": "t1"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and"},
                    {"type": "image_url", "image_url": {"url": "u"}},
                ],
            },
            {"role": "assistant", "content": None},
            {"role": "user", "content": "What should I pack?"},
        ],
    }
    found = extract(body)
    assert found is not None and found.query == "What should I pack?"
    assert found.context == (
        "user: I am going skiing\n"
        'assistant: Fun! {"tool_calls":[{"id":"t1"}]}\n'
        'user: and {"image_url":{"url":"u"},"type":"image_url"}\n'
        "assistant: "
    )
    assert "Be brief." not in found.context  # instructions stay in the partition
    messages = found.rest_without_context["messages"]
    assert messages[0] == body["messages"][0]
    # One placeholder for the run of earlier turns: their number is not a partition.
    assert messages[1:] == [CONTEXT_PLACEHOLDER, {"role": "user", "content": QUERY_PLACEHOLDER}]
    assert found.rest["messages"][1:5] == body["messages"][1:5]


def test_no_context_for_single_questions():
    for body in (
        {"query": "q"},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]},
    ):
        found = extract(body)
        assert found is not None
        assert found.context is None and found.rest_without_context == found.rest

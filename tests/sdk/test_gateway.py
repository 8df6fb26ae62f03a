"""The gateway (`fazztv serve`) driven by the official `openai` and `anthropic` Python SDKs and
by `curl`.

Run by `tests/sdk/run.sh`, which starts `fazztv serve --config tests/sdk/gateway.json` and sets
FAZZTV_GATEWAY_URL (`http://127.0.0.1:PORT`). Every provider in that config is an offline mock:
- `primary` serves `fazz-large` and fails its first call (`overloaded`); the route `smart` tries
  it first, then `backup` (`fazz-small`);
- `backup` serves `fazz-small` (chat), `fazz-embed` (12-dimensional embeddings) and
  `fazz-moderate`, and answers with a `get_weather` tool call when the request offers that tool;
- `limited` serves `fazz-limited` and is always rate limited (the mock's 1 s retry-after).
The virtual keys are `sk-test-alpha` (no limits), `sk-test-beta` (`rpm: 1`) and `sk-test-gamma`
(`models: ["fazz-embed"]`); the config holds their SHA-256 only. The `anthropic` SDK sends its key
as `x-api-key` to `POST /v1/messages`.

Plain unittest (no pytest): `python tests/sdk/test_gateway.py` (ends with `N passed, N failed`),
or `python -m unittest -v` from tests/sdk.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

import anthropic
import openai
from openai import OpenAI

ALPHA_KEY = "sk-test-alpha"
BETA_KEY = "sk-test-beta"  # rpm: 1, used by the rate-limit test only
GAMMA_KEY = "sk-test-gamma"  # may use `fazz-embed` only
EMBEDDING_DIMENSIONS = 12
WEATHER_ARGUMENTS = {"city": "Paris", "unit": "celsius"}
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIMEOUT = 30.0


def gateway_url() -> str:
    url = os.environ.get("FAZZTV_GATEWAY_URL", "").rstrip("/")
    if not url:
        raise RuntimeError(
            "FAZZTV_GATEWAY_URL is not set: run tests/sdk/run.sh, which starts the gateway"
        )
    return url


def client(api_key: str = ALPHA_KEY) -> OpenAI:
    # No retries: a 429 or 5xx must reach the test as the SDK's error, not be retried away.
    return OpenAI(
        base_url=gateway_url() + "/v1", api_key=api_key, max_retries=0, timeout=TIMEOUT
    )


def anthropic_client(api_key: str = ALPHA_KEY) -> anthropic.Anthropic:
    # The SDK adds `/v1/messages` to the root itself. No retries, as for `client`.
    return anthropic.Anthropic(
        base_url=gateway_url(), api_key=api_key, max_retries=0, timeout=TIMEOUT
    )


def http(method: str, path: str, body: object | None = None, key: str | None = ALPHA_KEY):
    """A bare HTTP request (stdlib only): (status, headers, parsed JSON body or text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(gateway_url() + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    text = raw.decode()
    try:
        return status, headers, json.loads(text)
    except ValueError:
        return status, headers, text


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "--max-time", str(int(TIMEOUT)), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
        check=False,
    )


def backup_answer(prompt: str, tool_result: str = "") -> str:
    """What `backup` replies (its `reply` template in gateway.json)."""
    return f"backup (fazz-small) answers: {prompt} ✓{tool_result}"


def words(text: str) -> int:
    """The mock's token count: whitespace-separated words."""
    return len(text.split())


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


class Chat(unittest.TestCase):
    """POST /v1/chat/completions, not streamed and streamed."""

    PROMPT = "Say hello"

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = client()

    def create(self, **kwargs):
        return self.client.chat.completions.create(
            model="fazz-small",
            messages=[{"role": "user", "content": self.PROMPT}],
            **kwargs,
        )

    def test_chat_completion_has_content_model_usage_and_provider_header(self) -> None:
        raw = self.client.chat.completions.with_raw_response.create(
            model="fazz-small", messages=[{"role": "user", "content": self.PROMPT}]
        )
        self.assertEqual(raw.status_code, 200)
        self.assertEqual(raw.headers.get("x-fazztv-provider"), "backup")
        completion = raw.parse()
        self.assertEqual(completion.object, "chat.completion")
        self.assertTrue(completion.id)
        self.assertIsInstance(completion.created, int)
        self.assertEqual(completion.model, "fazz-small")
        self.assertEqual(len(completion.choices), 1)
        choice = completion.choices[0]
        self.assertEqual(choice.index, 0)
        self.assertEqual(choice.finish_reason, "stop")
        self.assertEqual(choice.message.role, "assistant")
        self.assertEqual(choice.message.content, backup_answer(self.PROMPT))
        self.assertIsNotNone(completion.usage)
        self.assertEqual(completion.usage.prompt_tokens, words(self.PROMPT))
        self.assertEqual(completion.usage.completion_tokens, words(backup_answer(self.PROMPT)))
        self.assertEqual(
            completion.usage.total_tokens,
            completion.usage.prompt_tokens + completion.usage.completion_tokens,
        )

    def test_chat_with_system_message_and_history(self) -> None:
        completion = self.client.chat.completions.create(
            model="fazz-small",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": [{"type": "text", "text": "second question"}]},
            ],
            temperature=0.2,
            max_tokens=64,
        )
        # The mock answers the last user message; content parts arrive as text.
        self.assertEqual(completion.choices[0].message.content, backup_answer("second question"))

    def test_stream_deltas_add_up_to_the_non_streamed_answer(self) -> None:
        expected = self.create().choices[0].message.content
        chunks = list(self.create(stream=True))
        self.assertGreater(len(chunks), 2, "the answer should arrive in several chunks")
        for chunk in chunks:
            self.assertEqual(chunk.object, "chat.completion.chunk")
            self.assertEqual(chunk.id, chunks[0].id, "every chunk of a stream has the same id")
            self.assertIsNone(chunk.usage, "usage only comes with stream_options.include_usage")
        with_choices = [chunk for chunk in chunks if chunk.choices]
        self.assertEqual(with_choices[0].choices[0].delta.role, "assistant")
        deltas = [chunk.choices[0].delta.content or "" for chunk in with_choices]
        self.assertGreater(sum(1 for delta in deltas if delta), 1, "several content deltas")
        self.assertEqual("".join(deltas), expected)
        self.assertEqual(with_choices[-1].choices[0].finish_reason, "stop")
        for chunk in with_choices[:-1]:
            self.assertIsNone(chunk.choices[0].finish_reason)

    def test_stream_with_include_usage_ends_with_a_usage_chunk(self) -> None:
        answer = self.create()
        with self.create(stream=True, stream_options={"include_usage": True}) as stream:
            chunks = list(stream)
        last = chunks[-1]
        self.assertEqual(last.choices, [], "the usage chunk has no choices")
        self.assertIsNotNone(last.usage)
        self.assertEqual(last.usage.prompt_tokens, answer.usage.prompt_tokens)
        self.assertEqual(last.usage.completion_tokens, answer.usage.completion_tokens)
        self.assertEqual(last.usage.total_tokens, answer.usage.total_tokens)
        for chunk in chunks[:-1]:
            self.assertIsNone(chunk.usage)
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
        )
        self.assertEqual(text, answer.choices[0].message.content)

    def test_sdk_stream_helper_accumulates_the_answer_and_usage(self) -> None:
        # `chat.completions.stream()` is the SDK's accumulating helper (content.delta/done events).
        answer = self.create()
        with self.client.chat.completions.stream(
            model="fazz-small",
            messages=[{"role": "user", "content": self.PROMPT}],
            stream_options={"include_usage": True},
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        self.assertIn("content.delta", kinds)
        self.assertIn("content.done", kinds)
        self.assertEqual(final.choices[0].message.content, answer.choices[0].message.content)
        self.assertEqual(final.choices[0].finish_reason, "stop")
        self.assertEqual(final.usage.total_tokens, answer.usage.total_tokens)

    def test_async_client_chat_stream_and_embeddings(self) -> None:
        async def exercise():
            api = openai.AsyncOpenAI(
                base_url=gateway_url() + "/v1", api_key=ALPHA_KEY, max_retries=0, timeout=TIMEOUT
            )
            try:
                completion = await api.chat.completions.create(
                    model="fazz-small", messages=[{"role": "user", "content": "async"}]
                )
                stream = await api.chat.completions.create(
                    model="fazz-small",
                    messages=[{"role": "user", "content": "async"}],
                    stream=True,
                )
                streamed = "".join(
                    [
                        chunk.choices[0].delta.content or ""
                        async for chunk in stream
                        if chunk.choices
                    ]
                )
                embeddings = await api.embeddings.create(model="fazz-embed", input=["async"])
                return completion, streamed, embeddings
            finally:
                await api.close()

        completion, streamed, embeddings = asyncio.run(exercise())
        self.assertEqual(completion.choices[0].message.content, backup_answer("async"))
        self.assertEqual(streamed, backup_answer("async"))
        self.assertEqual(len(embeddings.data[0].embedding), EMBEDDING_DIMENSIONS)


class Routing(unittest.TestCase):
    """The request's `model` as a route name and as `provider/model`, through the gateway."""

    def test_route_falls_back_then_provider_slash_model_reaches_the_primary(self) -> None:
        # One test, in this order: `primary` fails its first call only, and no other test calls
        # it. The route `smart` tries primary (overloaded) and falls back to backup.
        api = client()
        raw = api.chat.completions.with_raw_response.create(
            model="smart", messages=[{"role": "user", "content": "route me"}]
        )
        self.assertEqual(raw.headers.get("x-fazztv-provider"), "backup")
        self.assertEqual(raw.headers.get("x-fazztv-model"), "fazz-small")
        self.assertEqual(raw.headers.get("x-fazztv-attempts"), "2", "primary, then backup")
        completion = raw.parse()
        self.assertEqual(completion.choices[0].message.content, backup_answer("route me"))
        # Its second call succeeds; `provider/model` addresses it directly.
        raw = api.chat.completions.with_raw_response.create(
            model="primary/fazz-large", messages=[{"role": "user", "content": "direct"}]
        )
        self.assertEqual(raw.headers.get("x-fazztv-provider"), "primary")
        completion = raw.parse()
        self.assertEqual(
            completion.choices[0].message.content, "primary (fazz-large) answers: direct"
        )


class Tools(unittest.TestCase):
    """`tools` in, `tool_calls` out, and the tool result sent back."""

    PROMPT = "What is the weather in Paris?"

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = client()

    def test_tool_call_then_tool_result(self) -> None:
        messages = [{"role": "user", "content": self.PROMPT}]
        first = self.client.chat.completions.create(
            model="fazz-small", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
        )
        choice = first.choices[0]
        self.assertEqual(choice.finish_reason, "tool_calls")
        self.assertFalse(choice.message.content, "a tool-call answer has no text")
        self.assertIsNotNone(choice.message.tool_calls)
        self.assertEqual(len(choice.message.tool_calls), 1)
        call = choice.message.tool_calls[0]
        self.assertTrue(call.id)
        self.assertEqual(call.type, "function")
        self.assertEqual(call.function.name, "get_weather")
        self.assertIsInstance(call.function.arguments, str, "arguments are a JSON string")
        self.assertEqual(json.loads(call.function.arguments), WEATHER_ARGUMENTS)

        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"})
        second = self.client.chat.completions.create(
            model="fazz-small", messages=messages, tools=[WEATHER_TOOL]
        )
        self.assertEqual(second.choices[0].finish_reason, "stop")
        self.assertFalse(second.choices[0].message.tool_calls)
        self.assertEqual(
            second.choices[0].message.content, backup_answer(self.PROMPT, "sunny, 21 C")
        )

    def test_streamed_tool_call_assembles(self) -> None:
        stream = self.client.chat.completions.create(
            model="fazz-small",
            messages=[{"role": "user", "content": self.PROMPT}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in stream:
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or []:
                    call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    if delta.id:
                        call["id"] = delta.id
                    if delta.function and delta.function.name:
                        call["name"] += delta.function.name
                    if delta.function and delta.function.arguments:
                        call["arguments"] += delta.function.arguments
                if choice.finish_reason:
                    finish = choice.finish_reason
        self.assertEqual(finish, "tool_calls")
        self.assertEqual(sorted(calls), [0])
        self.assertTrue(calls[0]["id"])
        self.assertEqual(calls[0]["name"], "get_weather")
        self.assertEqual(json.loads(calls[0]["arguments"]), WEATHER_ARGUMENTS)

    def test_sdk_stream_helper_accumulates_the_tool_call(self) -> None:
        with self.client.chat.completions.stream(
            model="fazz-small",
            messages=[{"role": "user", "content": self.PROMPT}],
            tools=[WEATHER_TOOL],
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        self.assertIn("tool_calls.function.arguments.done", kinds)
        choice = final.choices[0]
        self.assertEqual(choice.finish_reason, "tool_calls")
        self.assertEqual(len(choice.message.tool_calls), 1)
        self.assertEqual(choice.message.tool_calls[0].function.name, "get_weather")
        self.assertEqual(
            json.loads(choice.message.tool_calls[0].function.arguments), WEATHER_ARGUMENTS
        )

    def test_tools_without_a_scripted_call_are_accepted(self) -> None:
        other = {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        }
        completion = self.client.chat.completions.create(
            model="fazz-small",
            messages=[{"role": "user", "content": "What time is it?"}],
            tools=[other],
        )
        self.assertEqual(completion.choices[0].finish_reason, "stop")
        self.assertEqual(
            completion.choices[0].message.content, backup_answer("What time is it?")
        )


class Embeddings(unittest.TestCase):
    """POST /v1/embeddings; the SDK asks for base64 unless told otherwise."""

    TEXTS = ["the first text", "a second one", "third"]

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = client()

    def test_sdk_default_base64_decodes_to_float_vectors_in_order(self) -> None:
        response = self.client.embeddings.create(model="fazz-embed", input=self.TEXTS)
        self.assertEqual(response.object, "list")
        self.assertEqual(response.model, "fazz-embed")
        self.assertEqual([item.index for item in response.data], [0, 1, 2])
        vectors = [item.embedding for item in response.data]
        for vector in vectors:
            self.assertIsInstance(vector, list)
            self.assertEqual(len(vector), EMBEDDING_DIMENSIONS)
            self.assertTrue(all(isinstance(x, float) for x in vector))
            self.assertAlmostEqual(norm(vector), 1.0, places=5)  # the mock's unit vectors
        self.assertEqual(len({tuple(vector) for vector in vectors}), 3, "distinct texts differ")
        # In order: each input alone gives the vector at its position.
        for position, text in enumerate(self.TEXTS):
            alone = self.client.embeddings.create(model="fazz-embed", input=text)
            self.assertEqual(len(alone.data), 1)
            self.assertEqual(alone.data[0].embedding, vectors[position])
        self.assertEqual(response.usage.prompt_tokens, sum(words(text) for text in self.TEXTS))
        self.assertEqual(response.usage.total_tokens, response.usage.prompt_tokens)

    def test_base64_is_little_endian_float32_on_the_wire_and_matches_float(self) -> None:
        status, _, body = http(
            "POST",
            "/v1/embeddings",
            {"model": "fazz-embed", "input": self.TEXTS[:2], "encoding_format": "base64"},
        )
        self.assertEqual(status, 200, body)
        encoded = [item["embedding"] for item in body["data"]]
        for value in encoded:
            self.assertIsInstance(value, str, "encoding_format=base64 gives strings")
            self.assertEqual(len(base64.b64decode(value)), 4 * EMBEDDING_DIMENSIONS)
        decoded = [
            list(struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", base64.b64decode(value)))
            for value in encoded
        ]
        floats = self.client.embeddings.create(
            model="fazz-embed", input=self.TEXTS[:2], encoding_format="float"
        )
        for vector, item in zip(decoded, floats.data):
            self.assertIsInstance(item.embedding[0], float)
            self.assertEqual(len(item.embedding), EMBEDDING_DIMENSIONS)
            for a, b in zip(vector, item.embedding):
                self.assertAlmostEqual(a, b, places=6)

    def test_dimensions_parameter(self) -> None:
        response = self.client.embeddings.create(
            model="fazz-embed", input="short vector", dimensions=4
        )
        self.assertEqual(len(response.data[0].embedding), 4)


class ModelsAndModeration(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.client = client()

    def test_models_list_has_the_route_and_the_mock_models(self) -> None:
        models = list(self.client.models.list())
        ids = [model.id for model in models]
        for model in models:
            self.assertEqual(model.object, "model")
            self.assertTrue(model.owned_by, model.id)
        self.assertIn("smart", ids)
        for expected in ["fazz-large", "fazz-small", "fazz-embed", "fazz-moderate", "fazz-limited"]:
            self.assertTrue(
                any(found == expected or found.endswith("/" + expected) for found in ids),
                f"{expected} not in {ids}",
            )

    def test_moderation_flags_the_blocklisted_word(self) -> None:
        flagged = self.client.moderations.create(input="plan an attack")
        self.assertEqual(len(flagged.results), 1)
        self.assertTrue(flagged.results[0].flagged)
        clean = self.client.moderations.create(input=["a friendly greeting", "an attack"])
        self.assertEqual([result.flagged for result in clean.results], [False, True])


class Errors(unittest.TestCase):
    """The SDK's exception classes for the gateway's OpenAI-shaped errors."""

    def assert_openai_error_body(self, error: openai.APIStatusError) -> None:
        # The SDK keeps the `error` object of `{"error": {...}}` as `body`.
        self.assertIsInstance(error.body, dict, error.response.text)
        self.assertTrue(error.body.get("message"), error.body)
        self.assertTrue(error.body.get("type"), error.body)

    def test_wrong_key_is_an_authentication_error(self) -> None:
        with self.assertRaises(openai.AuthenticationError) as caught:
            client("sk-test-wrong").chat.completions.create(
                model="fazz-small", messages=[{"role": "user", "content": "hi"}]
            )
        self.assertEqual(caught.exception.status_code, 401)
        self.assert_openai_error_body(caught.exception)
        with self.assertRaises(openai.AuthenticationError):
            client("sk-test-wrong").models.list()

    def test_missing_key_is_401_with_an_openai_error_body(self) -> None:
        status, _, body = http(
            "POST",
            "/v1/chat/completions",
            {"model": "fazz-small", "messages": [{"role": "user", "content": "hi"}]},
            key=None,
        )
        self.assertEqual(status, 401, body)
        self.assertIsInstance(body, dict, body)
        self.assertTrue(body["error"]["message"], body)

    def test_unknown_model_is_not_found(self) -> None:
        with self.assertRaises(openai.NotFoundError) as caught:
            client().chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hi"}]
            )
        self.assertEqual(caught.exception.status_code, 404)
        self.assertEqual(caught.exception.code, "model_not_found")
        self.assert_openai_error_body(caught.exception)

    def test_key_limited_to_other_models_is_permission_denied(self) -> None:
        gamma = client(GAMMA_KEY)
        with self.assertRaises(openai.PermissionDeniedError) as caught:
            gamma.chat.completions.create(
                model="fazz-small", messages=[{"role": "user", "content": "hi"}]
            )
        self.assertEqual(caught.exception.status_code, 403)
        self.assert_openai_error_body(caught.exception)
        allowed = gamma.embeddings.create(model="fazz-embed", input="allowed")
        self.assertEqual(len(allowed.data[0].embedding), EMBEDDING_DIMENSIONS)

    def test_key_rpm_limit_is_a_rate_limit_error_with_retry_after(self) -> None:
        beta = client(BETA_KEY)  # rpm: 1; no other test uses this key
        first = beta.chat.completions.create(
            model="fazz-small", messages=[{"role": "user", "content": "one"}]
        )
        self.assertEqual(first.choices[0].message.content, backup_answer("one"))
        with self.assertRaises(openai.RateLimitError) as caught:
            beta.chat.completions.create(
                model="fazz-small", messages=[{"role": "user", "content": "two"}]
            )
        error = caught.exception
        self.assertEqual(error.status_code, 429)
        self.assert_openai_error_body(error)
        retry_after = error.response.headers.get("retry-after")
        self.assertIsNotNone(retry_after, dict(error.response.headers))
        self.assertGreater(float(retry_after), 0)
        self.assertLessEqual(float(retry_after), 60, "at most the rpm window")

    def test_upstream_rate_limit_is_a_rate_limit_error_with_retry_after(self) -> None:
        # `limited` is always rate limited with a 1 s retry-after; addressed directly, so no
        # fallback.
        with self.assertRaises(openai.RateLimitError) as caught:
            client().chat.completions.create(
                model="limited/fazz-limited", messages=[{"role": "user", "content": "hi"}]
            )
        error = caught.exception
        self.assertEqual(error.status_code, 429)
        self.assert_openai_error_body(error)
        retry_after = error.response.headers.get("retry-after")
        self.assertIsNotNone(retry_after, dict(error.response.headers))
        self.assertGreater(float(retry_after), 0)

    def test_a_streamed_request_fails_with_a_status_not_inside_the_stream(self) -> None:
        # Nothing was streamed yet, so the failure is an HTTP status the SDK raises on `create`.
        api = client()
        with self.assertRaises(openai.NotFoundError) as not_found:
            api.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        self.assertEqual(not_found.exception.code, "model_not_found")
        with self.assertRaises(openai.RateLimitError) as limited:
            api.chat.completions.create(
                model="limited/fazz-limited",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
        self.assertIsNotNone(limited.exception.response.headers.get("retry-after"))


class AnthropicMessages(unittest.TestCase):
    """POST /v1/messages through the official `anthropic` SDK: not streamed, streamed, tools."""

    PROMPT = "Say hello"

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = anthropic_client()

    def create(self, **kwargs):
        return self.client.messages.create(
            model="fazz-small",
            max_tokens=64,
            messages=[{"role": "user", "content": self.PROMPT}],
            **kwargs,
        )

    def test_message_has_text_stop_reason_usage_and_provider_header(self) -> None:
        raw = self.client.messages.with_raw_response.create(
            model="fazz-small", max_tokens=64, messages=[{"role": "user", "content": self.PROMPT}]
        )
        self.assertEqual(raw.status_code, 200)
        self.assertEqual(raw.headers.get("x-fazztv-provider"), "backup")
        message = raw.parse()
        self.assertTrue(message.id.startswith("msg_"), message.id)
        self.assertEqual(message.type, "message")
        self.assertEqual(message.role, "assistant")
        self.assertEqual(message.model, "fazz-small")
        self.assertEqual([block.type for block in message.content], ["text"])
        self.assertEqual(message.content[0].text, backup_answer(self.PROMPT))
        self.assertEqual(message.stop_reason, "end_turn")
        self.assertIsNone(message.stop_sequence)
        self.assertEqual(message.usage.input_tokens, words(self.PROMPT))
        self.assertEqual(message.usage.output_tokens, words(backup_answer(self.PROMPT)))

    def test_system_prompt_and_history(self) -> None:
        message = self.client.messages.create(
            model="fazz-small",
            max_tokens=64,
            system="Be brief.",
            messages=[
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": [{"type": "text", "text": "second question"}]},
            ],
            stop_sequences=["END"],
            metadata={"user_id": "user-1"},
        )
        # The mock answers the last user message.
        self.assertEqual(message.content[0].text, backup_answer("second question"))

    def test_stream_helper_accumulates_the_text_and_the_final_message(self) -> None:
        expected = self.create()
        with self.client.messages.stream(
            model="fazz-small", max_tokens=64, messages=[{"role": "user", "content": self.PROMPT}]
        ) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        self.assertGreater(len(pieces), 1, "the text should arrive in several deltas")
        self.assertEqual("".join(pieces), expected.content[0].text)
        self.assertEqual(final.content[0].text, expected.content[0].text)
        self.assertEqual(final.stop_reason, "end_turn")
        self.assertEqual(final.usage.input_tokens, expected.usage.input_tokens)
        self.assertEqual(final.usage.output_tokens, expected.usage.output_tokens)

    def test_raw_stream_events_come_in_anthropic_order(self) -> None:
        events = list(self.create(stream=True))
        kinds = [event.type for event in events]
        self.assertEqual(kinds[0], "message_start")
        self.assertEqual(kinds[-2:], ["message_delta", "message_stop"])
        self.assertIn("content_block_start", kinds)
        self.assertIn("content_block_stop", kinds)
        text = "".join(
            event.delta.text
            for event in events
            if event.type == "content_block_delta" and event.delta.type == "text_delta"
        )
        self.assertEqual(text, backup_answer(self.PROMPT))
        self.assertEqual(events[-2].delta.stop_reason, "end_turn")

    def test_tool_use_then_tool_result(self) -> None:
        question = "What is the weather in Paris?"
        messages = [{"role": "user", "content": question}]
        first = self.client.messages.create(
            model="fazz-small",
            max_tokens=64,
            messages=messages,
            tools=[ANTHROPIC_WEATHER_TOOL],
            tool_choice={"type": "auto"},
        )
        self.assertEqual(first.stop_reason, "tool_use")
        calls = [block for block in first.content if block.type == "tool_use"]
        self.assertEqual(len(calls), 1)
        call = calls[0]
        self.assertTrue(call.id)
        self.assertEqual(call.name, "get_weather")
        self.assertEqual(call.input, WEATHER_ARGUMENTS, "input is an object")

        # The assistant turn goes back as the SDK gave it, the result in the next user turn.
        messages.append({"role": "assistant", "content": first.content})
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21 C"}
                ],
            }
        )
        second = self.client.messages.create(
            model="fazz-small", max_tokens=64, messages=messages, tools=[ANTHROPIC_WEATHER_TOOL]
        )
        self.assertEqual(second.stop_reason, "end_turn")
        self.assertEqual(
            [block.type for block in second.content], ["text"], "no further tool call"
        )
        self.assertEqual(second.content[0].text, backup_answer(question, "sunny, 21 C"))

    def test_stream_helper_accumulates_the_tool_input(self) -> None:
        with self.client.messages.stream(
            model="fazz-small",
            max_tokens=64,
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[ANTHROPIC_WEATHER_TOOL],
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
        self.assertIn("input_json", kinds)
        self.assertEqual(final.stop_reason, "tool_use")
        call = final.content[-1]
        self.assertEqual(call.type, "tool_use")
        self.assertEqual(call.name, "get_weather")
        self.assertEqual(call.input, WEATHER_ARGUMENTS)


class AnthropicErrors(unittest.TestCase):
    """The `anthropic` SDK's exception classes for the gateway's Anthropic-shaped errors."""

    def assert_anthropic_error(self, error: anthropic.APIStatusError, kind: str) -> None:
        body = error.response.json()
        self.assertEqual(body.get("type"), "error", body)
        self.assertEqual(body["error"]["type"], kind, body)
        self.assertTrue(body["error"]["message"], body)

    def test_wrong_key_is_an_authentication_error(self) -> None:
        with self.assertRaises(anthropic.AuthenticationError) as caught:
            anthropic_client("sk-test-wrong").messages.create(
                model="fazz-small", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
        self.assertEqual(caught.exception.status_code, 401)
        self.assert_anthropic_error(caught.exception, "authentication_error")
        self.assertNotIn("sk-test-wrong", caught.exception.response.text)

    def test_unknown_model_is_not_found(self) -> None:
        with self.assertRaises(anthropic.NotFoundError) as caught:
            anthropic_client().messages.create(
                model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
        self.assertEqual(caught.exception.status_code, 404)
        self.assert_anthropic_error(caught.exception, "not_found_error")

    def test_a_streamed_request_fails_with_a_status_not_inside_the_stream(self) -> None:
        api = anthropic_client()
        with self.assertRaises(anthropic.NotFoundError):
            with api.messages.stream(
                model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                stream.until_done()
        with self.assertRaises(anthropic.RateLimitError) as limited:
            api.messages.create(
                model="limited/fazz-limited",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
        self.assert_anthropic_error(limited.exception, "rate_limit_error")
        self.assertIsNotNone(limited.exception.response.headers.get("retry-after"))


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class Curl(unittest.TestCase):
    """The same gateway through curl."""

    def test_healthz_and_readyz(self) -> None:
        for path in ["/healthz", "/readyz"]:
            result = curl("-o", "/dev/null", "-w", "%{http_code}", gateway_url() + path)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, "200", path)

    def test_streamed_chat_ends_with_done(self) -> None:
        body = {
            "model": "fazz-small",
            "messages": [{"role": "user", "content": "stream it"}],
            "stream": True,
        }
        result = curl(
            "-N",
            "-D",
            "-",
            "-H",
            f"Authorization: Bearer {ALPHA_KEY}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(body),
            gateway_url() + "/v1/chat/completions",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        head, _, events = result.stdout.replace("\r\n", "\n").partition("\n\n")
        self.assertIn(" 200", head.splitlines()[0], head)
        self.assertIn("content-type: text/event-stream", head.lower(), head)
        data = [
            line[len("data:") :].strip()
            for line in events.splitlines()
            if line.startswith("data:")
        ]
        self.assertEqual(data[-1], "[DONE]", result.stdout)
        chunks = [json.loads(payload) for payload in data[:-1]]
        text = "".join(
            chunk["choices"][0]["delta"].get("content") or ""
            for chunk in chunks
            if chunk["choices"]
        )
        self.assertEqual(text, backup_answer("stream it"))

    def test_messages_with_x_api_key(self) -> None:
        # The README's example: the key as Anthropic's clients send it.
        body = {
            "model": "fazz-small",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "curl me"}],
        }
        result = curl(
            "-w",
            "\n%{http_code}",
            "-H",
            f"x-api-key: {ALPHA_KEY}",
            "-H",
            "anthropic-version: 2023-06-01",
            "-H",
            "content-type: application/json",
            "-d",
            json.dumps(body),
            gateway_url() + "/v1/messages",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        text, _, status = result.stdout.rpartition("\n")
        self.assertEqual(status, "200", result.stdout)
        message = json.loads(text)
        self.assertEqual(message["type"], "message")
        self.assertEqual(message["content"], [{"type": "text", "text": backup_answer("curl me")}])

    def test_wrong_key_gets_401_json(self) -> None:
        result = curl(
            "-w",
            "\n%{http_code}",
            "-H",
            "Authorization: Bearer sk-test-wrong",
            gateway_url() + "/v1/models",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        body, _, status = result.stdout.rpartition("\n")
        self.assertEqual(status, "401", result.stdout)
        self.assertTrue(json.loads(body)["error"]["message"])


def main() -> int:
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"sdk: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

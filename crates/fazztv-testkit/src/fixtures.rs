//! Wire fixtures copied verbatim from `shared/specs/openai.md`, `shared/specs/openrouter.md` and
//! `shared/specs/ollama.md` (recorded or documented bodies), so every test of a provider, and of
//! the CLI in front of it, replays the same real bytes. Streams keep their exact framing
//! (`data: …\n\n`, `data: [DONE]`, one JSON object a line for Ollama).

/// The recorded tool-call stream (`openai.md` §1.5, verbatim): no content, finish `tool_calls`, usage 44/16/60.
pub const OPENAI_TOOL_CALL_STREAM: &str = r##"data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_4XzlGBLtUe9dy3GVNV4jhq7h","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"city"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\":\""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"New"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" York"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" City"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62","object":"chat.completion.chunk","created":1727346182,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_143bb8492c","choices":[],"usage":{"prompt_tokens":44,"completion_tokens":16,"total_tokens":60,"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

"##;

/// The text stream (`openai.md` §1.5): content `I'm`, ` unable`, ` to help.`, finish `stop`, usage 14/30/44.
pub const OPENAI_TEXT_STREAM: &str = r##"data: {"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[{"index":0,"delta":{"content":"I'm"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[{"index":0,"delta":{"content":" unable"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[{"index":0,"delta":{"content":" to help."},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}

data: {"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44,"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

"##;

/// A plain chat completion (`openai.md` §1.4): `Hello! How can I assist you today?`, usage 19/10/29.
pub const OPENAI_CHAT_COMPLETION: &str = r##"{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}
"##;

/// A tool-call completion (`openai.md` §1.4): `content: null`, finish `tool_calls`.
pub const OPENAI_TOOL_CALL_COMPLETION: &str = r##"{
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1699896916,
  "model": "gpt-4o-mini",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": null,
        "tool_calls": [
          {
            "id": "call_abc123",
            "type": "function",
            "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}
          }
        ]
      },
      "logprobs": null,
      "finish_reason": "tool_calls"
    }
  ],
  "usage": {
    "prompt_tokens": 82,
    "completion_tokens": 17,
    "total_tokens": 99,
    "completion_tokens_details": {"reasoning_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  }
}
"##;

/// 401 body (`openai.md` §2.1).
pub const OPENAI_INVALID_API_KEY: &str = r##"{
  "error": {
    "message": "Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
    "param": null,
    "code": "invalid_api_key"
  }
}
"##;

/// 404 body (`openai.md` §2.3).
pub const OPENAI_MODEL_NOT_FOUND: &str = r##"{"error": {"message": "The model `gpt-4o` does not exist or you do not have access to it.", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}
"##;

/// 400 body (`openai.md` §2.3).
pub const OPENAI_CONTEXT_LENGTH_EXCEEDED: &str = r##"{"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 8227 tokens. Please reduce the length of the messages.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
"##;

/// 429 rate-limit body (`openai.md` §2.3).
pub const OPENAI_RATE_LIMITED: &str = r##"{"error": {"message": "Rate limit reached for gpt-4o in organization org-xxxxxxxxxxxxxxxxxxxxxxxx on tokens per min (TPM): Limit 30000, Used 29937, Requested 385. Please try again in 644ms. Visit https://platform.openai.com/account/rate-limits to learn more.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}
"##;

/// 429 quota body (`openai.md` §2.3).
pub const OPENAI_INSUFFICIENT_QUOTA: &str = r##"{"error": {"message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}
"##;

/// Embeddings of two inputs, 8 dimensions (`openai.md` §4).
pub const OPENAI_EMBEDDINGS: &str = r##"{
  "object": "list",
  "data": [
    {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, 0.015797347, -0.0028842222, 0.021390583, -0.0011738112, 0.008203371, -0.012657225]},
    {"object": "embedding", "index": 1, "embedding": [-0.010751318, 0.0040932684, -0.0216578, 0.0107296, 0.005291387, -0.02017542, 0.00031237, 0.009126438]}
  ],
  "model": "text-embedding-3-small",
  "usage": {"prompt_tokens": 16, "total_tokens": 16}
}
"##;

/// Omni moderation verdict, flagged (`openai.md` §5).
pub const OPENAI_MODERATION: &str = r##"{
  "id": "modr-0d9740456c391e43c445bf0f010940c7",
  "model": "omni-moderation-latest",
  "results": [
    {
      "flagged": true,
      "categories": {
        "harassment": true, "harassment/threatening": true, "sexual": false, "hate": false,
        "hate/threatening": false, "illicit": false, "illicit/violent": false,
        "self-harm/intent": false, "self-harm/instructions": false, "self-harm": false,
        "sexual/minors": false, "violence": true, "violence/graphic": true
      },
      "category_scores": {
        "harassment": 0.8189693396524255, "harassment/threatening": 0.804985420696006,
        "sexual": 1.573112165348997e-6, "hate": 0.007562942636942845,
        "hate/threatening": 0.004208854591835476, "illicit": 0.030535955153511665,
        "illicit/violent": 0.008925306722380033, "self-harm/intent": 0.00023023930975076432,
        "self-harm/instructions": 0.0002293869201073356, "self-harm": 0.012598046106750154,
        "sexual/minors": 2.212566909570261e-8, "violence": 0.9999992735124786,
        "violence/graphic": 0.843064871157054
      },
      "category_applied_input_types": {
        "harassment": ["text"], "harassment/threatening": ["text"], "sexual": ["text", "image"],
        "hate": ["text"], "hate/threatening": ["text"], "illicit": ["text"], "illicit/violent": ["text"],
        "self-harm/intent": ["text", "image"], "self-harm/instructions": ["text", "image"],
        "self-harm": ["text", "image"], "sexual/minors": ["text"], "violence": ["text", "image"],
        "violence/graphic": ["text", "image"]
      }
    }
  ]
}
"##;

/// `GET /models` (`openai.md` §6).
pub const OPENAI_MODELS: &str = r##"{
  "object": "list",
  "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system", "shutdown_date": null},
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
    {"id": "ft:gpt-4o-mini:acemeco:suffix:abc123", "object": "model", "created": 1727000000, "owned_by": "acemeco"}
  ]
}
"##;

/// OpenRouter stream with `: OPENROUTER PROCESSING` comments (`openrouter.md` §4): `Hello`, ` there!`, finish `stop`, usage 10/4/14.
pub const OPENROUTER_STREAM: &str = r##": OPENROUTER PROCESSING

: OPENROUTER PROCESSING

data: {"id":"gen-1755600000-AbCdEfGhIjKlMnOpQrSt","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1755600000,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}

data: {"id":"gen-1755600000-AbCdEfGhIjKlMnOpQrSt","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1755600000,"choices":[{"index":0,"delta":{"role":"assistant","content":" there!"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}

data: {"id":"gen-1755600000-AbCdEfGhIjKlMnOpQrSt","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1755600000,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"stop","logprobs":null}]}

data: {"id":"gen-1755600000-AbCdEfGhIjKlMnOpQrSt","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1755600000,"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"cost":0.000065,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.000025,"upstream_inference_completions_cost":0.00004},"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

"##;

/// OpenRouter mid-stream error event (`openrouter.md` §4): embedded 429.
pub const OPENROUTER_MID_STREAM_ERROR: &str = r##"data: {"id":"gen-abc123","object":"chat.completion.chunk","created":1234567890,"model":"openai/gpt-4o","provider":"OpenAI","error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}

"##;

/// OpenRouter chat completion (`openrouter.md` §2): `Hello there!`, usage 10/4/14.
pub const OPENROUTER_CHAT_COMPLETION: &str = r##"{
  "id": "gen-1755600000-AbCdEfGhIjKlMnOpQrSt",
  "provider": "OpenAI",
  "model": "openai/gpt-4o",
  "object": "chat.completion",
  "created": 1755600000,
  "choices": [
    {
      "logprobs": null,
      "finish_reason": "stop",
      "native_finish_reason": "stop",
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello there!",
        "refusal": null,
        "reasoning": null
      }
    }
  ],
  "system_fingerprint": "fp_07871e2ad8",
  "usage": {
    "prompt_tokens": 10,
    "completion_tokens": 4,
    "total_tokens": 14,
    "cost": 0.000065,
    "is_byok": false,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "cost_details": {
      "upstream_inference_cost": null,
      "upstream_inference_prompt_cost": 0.000025,
      "upstream_inference_completions_cost": 0.00004
    },
    "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}
  }
}
"##;

/// OpenRouter 402 body (`openrouter.md` §5.1).
pub const OPENROUTER_INSUFFICIENT_CREDITS: &str = r##"{"error": {"code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/settings/credits", "metadata": {"limit_source": "openrouter_credits", "remedy_hint": "Add credits at https://openrouter.ai/settings/credits, or lower max_tokens / prompt size to fit your remaining balance."}}}
"##;

/// OpenRouter upstream 400 body with `metadata.raw` (`openrouter.md` §5.3).
pub const OPENROUTER_PROVIDER_ERROR: &str = r##"{
  "error": {
    "message": "Provider returned error",
    "code": 400,
    "metadata": {
      "raw": "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"invalid_request_error\",\"message\":\"Model 'moonshotai/kimi-k2.6' supports at most 1 image per prompt.\",\"request_id\":\"req_*******\"}}",
      "provider_name": "Crucible",
      "is_byok": false
    }
  },
  "user_id": "user_***************"
}
"##;

/// OpenRouter typed 429 body (`openrouter.md` §5.3).
pub const OPENROUTER_RATE_LIMITED: &str = r##"{"error": {"code": 429, "message": "Rate limit exceeded", "metadata": {"error_type": "rate_limit_exceeded", "provider_code": "rate_limited"}}}
"##;

/// OpenRouter availability error without `code` (`openrouter.md` §5.4).
pub const OPENROUTER_CAPACITY_EXHAUSTED: &str = r##"{
  "error": {
    "message": "All providers for anthropic/claude-sonnet-4.5 are at capacity. Retry after 40 seconds.",
    "error_type": "rate_limit_exceeded",
    "http_status": 429,
    "availability": {
      "code": "capacity_exhausted",
      "retryable": true,
      "retry_after": 40,
      "requested_models": ["anthropic/claude-sonnet-4.5"],
      "affected_providers": ["anthropic", "amazon-bedrock", "google-vertex"],
      "fallback_models": ["anthropic/claude-haiku-4.5"],
      "docs_url": "https://openrouter.ai/docs/errors#capacity_exhausted"
    },
    "metadata": {
      "previous_errors": [
        {"provider": "anthropic", "code": "capacity_exhausted", "status": 429},
        {"provider": "amazon-bedrock", "code": "capacity_exhausted", "status": 429}
      ]
    }
  }
}
"##;

/// OpenRouter `GET /models` (`openrouter.md` §6): a paid and a `:free` model.
pub const OPENROUTER_MODELS: &str = r##"{
  "data": [
    {
      "id": "openai/gpt-4",
      "canonical_slug": "openai/gpt-4",
      "hugging_face_id": null,
      "name": "GPT-4",
      "created": 1692901234,
      "description": "GPT-4 is a large multimodal model that can solve difficult problems with greater accuracy.",
      "context_length": 8192,
      "architecture": {
        "modality": "text->text",
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "tokenizer": "GPT",
        "instruct_type": "chatml"
      },
      "pricing": {"prompt": "0.00003", "completion": "0.00006", "request": "0", "image": "0"},
      "top_provider": {"context_length": 8192, "max_completion_tokens": 4096, "is_moderated": true},
      "per_request_limits": null,
      "supported_parameters": ["temperature", "top_p", "max_tokens"],
      "default_parameters": null,
      "supported_voices": null,
      "expiration_date": null,
      "knowledge_cutoff": null,
      "links": {"details": "/api/v1/models/openai/gpt-4/endpoints"}
    },
    {
      "id": "meta-llama/llama-3.3-70b-instruct:free",
      "canonical_slug": "meta-llama/llama-3.3-70b-instruct",
      "hugging_face_id": "meta-llama/Llama-3.3-70B-Instruct",
      "name": "Meta: Llama 3.3 70B Instruct (free)",
      "created": 1733506137,
      "description": "Llama 3.3 70B instruction-tuned model.",
      "context_length": 131072,
      "architecture": {
        "modality": "text->text",
        "input_modalities": ["text"],
        "output_modalities": ["text"],
        "tokenizer": "Llama3",
        "instruct_type": null
      },
      "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0"},
      "top_provider": {"context_length": 131072, "max_completion_tokens": 2048, "is_moderated": false},
      "per_request_limits": null,
      "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice", "seed"],
      "default_parameters": null,
      "supported_voices": null,
      "expiration_date": null,
      "knowledge_cutoff": null,
      "links": {"details": "/api/v1/models/meta-llama/llama-3.3-70b-instruct:free/endpoints"}
    }
  ],
  "total_count": 2,
  "links": {"next": null}
}
"##;

/// OpenRouter `GET /key` (`openrouter.md` §7.1).
pub const OPENROUTER_KEY: &str = r##"{
  "data": {
    "label": "sk-or-v1-au7...890",
    "limit": 100,
    "limit_reset": "monthly",
    "limit_remaining": 74.5,
    "include_byok_in_limit": false,
    "usage": 25.5,
    "usage_daily": 25.5,
    "usage_weekly": 25.5,
    "usage_monthly": 25.5,
    "byok_usage": 17.38,
    "byok_usage_daily": 17.38,
    "byok_usage_weekly": 17.38,
    "byok_usage_monthly": 17.38,
    "is_free_tier": false,
    "is_management_key": false,
    "is_provisioning_key": false,
    "creator_user_id": "user_2dHFtVWx2n56w6HkM0000000000",
    "expires_at": "2027-12-31T23:59:59Z",
    "rate_limit": {"requests": 1000, "interval": "1h", "note": "This field is deprecated and safe to ignore."}
  }
}
"##;

/// `ollama.md` §1.3: a non-streamed `/api/chat` reply.
pub const OLLAMA_CHAT_REPLY: &str = r#"{
  "model": "llama3.2",
  "created_at": "2023-12-12T14:13:43.416799Z",
  "message": {"role": "assistant", "content": "Hello! How are you today?"},
  "done_reason": "stop",
  "done": true,
  "total_duration": 5191566416,
  "load_duration": 2154458,
  "prompt_eval_count": 26,
  "prompt_eval_duration": 383809000,
  "eval_count": 298,
  "eval_duration": 4799921000
}"#;

/// `ollama.md` §1.4: a streamed `/api/chat` transcript (NDJSON).
pub const OLLAMA_CHAT_STREAM: &str = r#"{"model":"llama3.2","created_at":"2025-07-07T20:22:19.101256Z","message":{"role":"assistant","content":"The"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.113892Z","message":{"role":"assistant","content":" sky"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.126004Z","message":{"role":"assistant","content":" appears"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.138211Z","message":{"role":"assistant","content":" blue"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.150377Z","message":{"role":"assistant","content":" because of Rayleigh scattering."},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.162488Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":182242375,"load_duration":41295167,"prompt_eval_count":31,"prompt_eval_duration":24573166,"eval_count":5,"eval_duration":115959084}
"#;

/// `ollama.md` §1.4: a thinking chunk.
pub const OLLAMA_THINKING_CHUNK: &str = r#"{"model":"qwen3","created_at":"2025-10-26T17:15:24.097767Z","message":{"role":"assistant","content":"","thinking":"Count the r's in strawberry"},"done":false}"#;

/// `ollama.md` §1.5: a mid-stream error line.
pub const OLLAMA_STREAM_ERROR_LINE: &str =
    r#"{"error":"an error was encountered while running the model"}"#;

/// `ollama.md` §3.1: `GET /api/tags`.
pub const OLLAMA_TAGS: &str = r#"{
  "models": [
    {
      "name": "deepseek-r1:latest",
      "model": "deepseek-r1:latest",
      "modified_at": "2025-05-10T08:06:48.639712648-07:00",
      "size": 4683075271,
      "digest": "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163",
      "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "qwen2",
        "families": ["qwen2"],
        "parameter_size": "7.6B",
        "quantization_level": "Q4_K_M"
      }
    },
    {
      "name": "llama3.2:latest",
      "model": "llama3.2:latest",
      "modified_at": "2025-05-04T17:37:44.706015396-07:00",
      "size": 2019393189,
      "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
      "details": {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M"
      }
    }
  ]
}"#;

/// `ollama.md` §3.3: `POST /api/pull` progress.
pub const OLLAMA_PULL_STREAM: &str = r#"{"status":"pulling manifest"}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376,"completed":241970}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376,"completed":2019377376}
{"status":"pulling 966de95ca8a6","digest":"sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396","total":1429,"completed":1429}
{"status":"verifying sha256 digest"}
{"status":"writing manifest"}
{"status":"removing unused layers"}
{"status":"success"}
"#;

/// `ollama.md` §3.3: a pull of an unknown model: HTTP 200, the manifest line, then an in-band error.
pub const OLLAMA_PULL_UNKNOWN_MODEL: &str = r#"{"status":"pulling manifest"}
{"error":"pull model manifest: file does not exist"}
"#;

/// `ollama.md` §4.1: a `POST /api/embed` reply.
pub const OLLAMA_EMBED_REPLY: &str = r#"{
  "model": "all-minilm",
  "embeddings": [
    [0.010071029, -0.0017594862, 0.05007221, 0.04692972, 0.054916814, 0.008599704, 0.105441414, -0.025878139, 0.12958129, 0.031952348],
    [-0.0098027075, 0.06042469, 0.025257962, -0.006364387, 0.07272725, 0.017194884, 0.09032035, -0.051705178, 0.09951512, 0.09072481]
  ],
  "total_duration": 14143917,
  "load_duration": 1019500,
  "prompt_eval_count": 8
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fixtures_parse_and_streams_end_with_done() {
        for body in [
            OPENAI_CHAT_COMPLETION,
            OPENAI_TOOL_CALL_COMPLETION,
            OPENAI_INVALID_API_KEY,
            OPENAI_MODEL_NOT_FOUND,
            OPENAI_CONTEXT_LENGTH_EXCEEDED,
            OPENAI_RATE_LIMITED,
            OPENAI_INSUFFICIENT_QUOTA,
            OPENAI_EMBEDDINGS,
            OPENAI_MODERATION,
            OPENAI_MODELS,
            OPENROUTER_CHAT_COMPLETION,
            OPENROUTER_INSUFFICIENT_CREDITS,
            OPENROUTER_PROVIDER_ERROR,
            OPENROUTER_RATE_LIMITED,
            OPENROUTER_CAPACITY_EXHAUSTED,
            OPENROUTER_MODELS,
            OPENROUTER_KEY,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_ok(),
                "{body}"
            );
        }
        for stream in [
            OPENAI_TEXT_STREAM,
            OPENAI_TOOL_CALL_STREAM,
            OPENROUTER_STREAM,
        ] {
            assert!(stream.ends_with("data: [DONE]\n\n"));
        }
        assert!(OPENROUTER_MID_STREAM_ERROR.ends_with("}\n\n"));
    }
}

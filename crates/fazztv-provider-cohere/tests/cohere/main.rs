//! The Cohere provider against loopback servers speaking the wire format of
//! `shared/specs/cohere-huggingface.md` Part A: wiremock for request/response, the testkit
//! server for streams. The spec's bodies and transcripts are kept verbatim below.

mod chat;
mod conformance;
mod embed;
mod models;
mod registration;
mod streaming;

// Every dependency must be used by every test target (`unused_crate_dependencies`).
use {
    bytes as _, fazztv_openai_compat as _, futures as _, proptest as _, schemars as _, serde as _,
};

use fazztv_core::ProviderConfig;
use fazztv_provider_cohere::CohereProvider;

pub use fazztv_testkit::provider::{drain, no_env};

/// A key that must never show up in Debug output, errors or snapshots.
pub const SENTINEL_KEY: &str = "co-SENTINEL-do-not-leak-3b8e1d";

/// A configuration pointing at `base_url` with the sentinel key.
pub fn config(base_url: &str) -> ProviderConfig {
    ProviderConfig::new("cohere")
        .with_api_key(SENTINEL_KEY)
        .with_base_url(base_url)
}

/// A provider built without reading the process environment.
pub fn provider(config: ProviderConfig) -> CohereProvider {
    CohereProvider::with_environment(config, &no_env()).expect("valid configuration")
}

/// Asserts the sentinel key appears nowhere in `text`.
pub fn assert_no_key(text: &str) {
    fazztv_testkit::provider::assert_no_key(text, SENTINEL_KEY);
}

/// A.1: the chat answer example.
pub const CHAT_RESPONSE: &str = r#"{
  "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
  "message": {
    "role": "assistant",
    "content": [
      {"type": "text", "text": "LLMs stand for Large Language Models, which are a type of neural network model specialized in processing and generating human language."}
    ]
  },
  "finish_reason": "COMPLETE",
  "usage": {
    "billed_units": {"input_tokens": 5, "output_tokens": 418},
    "tokens": {"input_tokens": 71, "output_tokens": 418}
  }
}"#;

/// A.1: the tool-call answer example.
pub const TOOL_CALL_RESPONSE: &str = r#"{
  "id": "9e5f00aa-bf1e-481a-abe3-0eceac18c3ec",
  "message": {
    "role": "assistant",
    "content": [
      {"type": "thinking", "thinking": "I will first find the sales summary for 29th September 2023. Then, I will find the details of the products in the 'Electronics' category."}
    ],
    "tool_calls": [
      {"id": "query_daily_sales_report_hgxxmkby3wta", "type": "function", "function": {"name": "query_daily_sales_report", "arguments": "{\"day\": \"2023-09-29\"}"}},
      {"id": "query_product_catalog_rpg0z5h8yyz2", "type": "function", "function": {"name": "query_product_catalog", "arguments": "{\"category\": \"Electronics\"}"}}
    ]
  },
  "finish_reason": "TOOL_CALL",
  "usage": {
    "billed_units": {"input_tokens": 127, "output_tokens": 69},
    "tokens": {"input_tokens": 1032, "output_tokens": 124}
  }
}"#;

/// A.1: the image request example (`detail` left out: fazztv's images carry none).
pub const IMAGE_REQUEST: &str = r#"{
  "model": "command-a-03-2025",
  "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {
      "role": "user",
      "content": [
        {"type": "text", "text": "Describe this image"},
        {"type": "image_url", "image_url": {"url": "https://cohere.com/favicon-32x32.png"}}
      ]
    }
  ],
  "temperature": 0.3,
  "max_tokens": 512,
  "stream": false
}"#;

/// A.1: the tool-result turn example, verbatim (fazztv adds `"stream": false`).
pub const TOOL_RESULT_REQUEST: &str = r#"{
  "model": "command-a-03-2025",
  "messages": [
    {"role": "user", "content": "Sales summary for 2023-09-29?"},
    {
      "role": "assistant",
      "tool_plan": "I will query the daily sales report.",
      "tool_calls": [
        {"id": "query_daily_sales_report_hgxxmkby3wta", "type": "function", "function": {"name": "query_daily_sales_report", "arguments": "{\"day\": \"2023-09-29\"}"}}
      ]
    },
    {"role": "tool", "tool_call_id": "query_daily_sales_report_hgxxmkby3wta", "content": "{\"total_sales_amount\": 10000, \"total_units_sold\": 250}"}
  ],
  "tools": [
    {
      "type": "function",
      "function": {
        "name": "query_daily_sales_report",
        "description": "Connects to a database to retrieve overall sales volumes and sales information for a given day.",
        "parameters": {"type": "object", "properties": {"day": {"type": "string", "description": "YYYY-MM-DD"}}, "required": ["day"]}
      }
    }
  ]
}"#;

/// A.2: the text stream transcript.
pub const TEXT_STREAM: &str = concat!(
    "event: message-start\n",
    "data: {\"type\":\"message-start\",\"id\":\"29f14a5a-11de-4cae-9800-25e4747408ea\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n",
    "\n",
    "event: content-start\n",
    "data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n",
    "\n",
    "event: content-delta\n",
    "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"LL\"}}}}\n",
    "\n",
    "event: content-delta\n",
    "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Ms stand for Large Language Models.\"}}}}\n",
    "\n",
    "event: content-end\n",
    "data: {\"type\":\"content-end\",\"index\":0}\n",
    "\n",
    "event: message-end\n",
    "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":26},\"tokens\":{\"input_tokens\":71,\"output_tokens\":26}}}}\n",
    "\n",
);

/// A.2: the tool-call stream transcript.
pub const TOOL_STREAM: &str = concat!(
    "event: tool-plan-delta\n",
    "data: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will use the query_daily_sales_report tool\"}}}\n",
    "\n",
    "event: tool-call-start\n",
    "data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"query_daily_sales_report_j3f0adww9pmr\",\"type\":\"function\",\"function\":{\"name\":\"query_daily_sales_report\",\"arguments\":\"\"}}}}}\n",
    "\n",
    "event: tool-call-delta\n",
    "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"day\\\": \\\"2023-09-29\\\"}\"}}}}}\n",
    "\n",
    "event: tool-call-end\n",
    "data: {\"type\":\"tool-call-end\",\"index\":0}\n",
    "\n",
    "event: message-end\n",
    "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"billed_units\":{\"input_tokens\":126,\"output_tokens\":84},\"tokens\":{\"input_tokens\":1589,\"output_tokens\":135}}}}\n",
    "\n",
);

/// The non-streamed answers the two transcripts stand for, in Cohere's words.
pub const TEXT_STREAM_AS_RESPONSE: &str = r#"{"id":"29f14a5a-11de-4cae-9800-25e4747408ea","message":{"role":"assistant","content":[{"type":"text","text":"LLMs stand for Large Language Models."}]},"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":5,"output_tokens":26},"tokens":{"input_tokens":71,"output_tokens":26}}}"#;

/// See [`TEXT_STREAM_AS_RESPONSE`].
pub const TOOL_STREAM_AS_RESPONSE: &str = r#"{"id":"x","message":{"role":"assistant","tool_plan":"I will use the query_daily_sales_report tool","tool_calls":[{"id":"query_daily_sales_report_j3f0adww9pmr","type":"function","function":{"name":"query_daily_sales_report","arguments":"{\"day\": \"2023-09-29\"}"}}]},"finish_reason":"TOOL_CALL","usage":{"billed_units":{"input_tokens":126,"output_tokens":84},"tokens":{"input_tokens":1589,"output_tokens":135}}}"#;

/// A.3: the error body example.
pub const ERROR_BODY: &str =
    r#"{"id": "5a0a0bd4-9f5e-4a57-a2a4-1b2c3d4e5f60", "message": "invalid api token"}"#;

/// A.4: the embed request example.
pub const EMBED_REQUEST: &str = r#"{"model": "embed-v4.0", "input_type": "classification", "texts": ["hello", "goodbye"], "embedding_types": ["float"]}"#;

/// A.4: the embed answer example.
pub const EMBED_RESPONSE: &str = r#"{
  "id": "da6e531f-54c6-4a73-bf92-f60566d8d753",
  "texts": ["hello", "goodbye"],
  "embeddings": {
    "float": [
      [0.016296387, -0.008354187, -0.04699707, -0.07104492, 0.00013196468],
      [0.014839172, 0.0158, -0.021530151, -0.014663696, 0.051849365]
    ]
  },
  "meta": {
    "api_version": {"version": "2", "is_experimental": true},
    "warnings": ["You are using an experimental version, for more information please refer to https://docs.cohere.com/reference/about"],
    "billed_units": {"input_tokens": 2}
  }
}"#;

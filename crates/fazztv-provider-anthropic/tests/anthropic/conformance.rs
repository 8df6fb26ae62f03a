//! The testkit's conformance suite against Anthropic's wire (`anthropic.md`).

use std::sync::Arc;

use fazztv_core::{FinishReason, ModelCapability, Provider, Usage};
use fazztv_testkit::ScriptedResponse;
use fazztv_testkit::conformance::{Failure, Reply, WireHarness};
use serde_json::{Value, json};

#[derive(Debug)]
struct AnthropicWire;

/// `stop_reason` for a finish reason (§1.3).
fn stop_reason(reason: &FinishReason) -> String {
    match reason {
        FinishReason::Stop => "end_turn".to_owned(),
        FinishReason::Length => "max_tokens".to_owned(),
        FinishReason::ToolCalls => "tool_use".to_owned(),
        FinishReason::ContentFilter => "refusal".to_owned(),
        other => other.to_string(),
    }
}

/// `usage` for a usage: the prompt's cache parts reported apart from `input_tokens`.
fn wire_usage(usage: &Usage) -> Value {
    let cached = usage.cached_tokens.unwrap_or(0);
    let created = usage.cache_creation_tokens.unwrap_or(0);
    let mut wire = json!({
        "input_tokens": usage.prompt_tokens - cached - created,
        "output_tokens": usage.completion_tokens,
    });
    if let Some(tokens) = usage.cached_tokens {
        wire["cache_read_input_tokens"] = tokens.into();
    }
    if let Some(tokens) = usage.cache_creation_tokens {
        wire["cache_creation_input_tokens"] = tokens.into();
    }
    wire
}

fn tool_blocks(reply: &Reply) -> impl Iterator<Item = Value> + '_ {
    reply.tool_calls.iter().map(|call| {
        json!({"type": "tool_use", "id": call.id, "name": call.name,
               "input": call.arguments.json().cloned().unwrap_or_else(|| json!({}))})
    })
}

impl WireHarness for AnthropicWire {
    fn provider_type(&self) -> &str {
        "anthropic"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        Arc::new(crate::provider(
            fazztv_core::ProviderConfig::new("anthropic")
                .with_api_key(api_key)
                .with_base_url(server_url)
                .with_option("anthropic_version", json!("2023-06-01")),
        ))
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        let mut content = Vec::new();
        if !reply.content().is_empty() {
            content.push(json!({"type": "text", "text": reply.content()}));
        }
        content.extend(tool_blocks(reply));
        let mut body = json!({
            "id": "msg_conformance", "type": "message", "role": "assistant",
            "model": reply.model, "content": content,
            "stop_reason": stop_reason(&reply.finish_reason), "stop_sequence": null,
        });
        if let Some(reported) = &reply.usage {
            body["usage"] = wire_usage(reported);
        }
        ScriptedResponse::with_body(200, body.to_string())
            .header("content-type", "application/json")
            .header("request-id", "req_conformance")
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        let mut events = Vec::new();
        let mut start = json!({"type": "message_start", "message": {
            "id": "msg_conformance", "type": "message", "role": "assistant", "model": reply.model,
            "content": [], "stop_reason": null, "stop_sequence": null}});
        if let Some(reported) = &reply.usage {
            let mut first = wire_usage(reported);
            first["output_tokens"] = 1.into();
            start["message"]["usage"] = first;
        }
        events.push(start);
        let mut index = 0;
        if !reply.text.is_empty() {
            events.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}));
            events.push(json!({"type": "ping"}));
            for text in &reply.text {
                events.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}));
            }
            events.push(json!({"type": "content_block_stop", "index": index}));
            index += 1;
        }
        for call in &reply.tool_calls {
            let arguments = call.arguments.to_text();
            let half = (0..=arguments.len() / 2)
                .rev()
                .find(|&at| arguments.is_char_boundary(at))
                .unwrap_or(0);
            events.push(json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}}));
            for part in ["", &arguments[..half], &arguments[half..]] {
                events.push(json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": part}}));
            }
            events.push(json!({"type": "content_block_stop", "index": index}));
            index += 1;
        }
        let mut delta = json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(&reply.finish_reason), "stop_sequence": null}});
        if let Some(reported) = &reply.usage {
            delta["usage"] = json!({"output_tokens": reported.completion_tokens});
        }
        events.push(delta);
        events.push(json!({"type": "message_stop"}));
        let chunks: Vec<String> = events
            .iter()
            .map(|event| {
                format!(
                    "event: {}\ndata: {event}\n\n",
                    event["type"].as_str().unwrap()
                )
            })
            .collect();
        ScriptedResponse::new(200)
            .header("content-type", "text/event-stream; charset=utf-8")
            .header("request-id", "req_conformance")
            .chunks(chunks)
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        // §3.1: the envelope; `invalid_request_error` and `api_error` refine no status.
        let kind = if failure.status >= 500 {
            "api_error"
        } else {
            "invalid_request_error"
        };
        let body = json!({"type": "error", "error": {"type": kind, "message": failure.message},
                          "request_id": "req_conformance"});
        ScriptedResponse::with_body(failure.status, body.to_string())
            .header("content-type", "application/json")
            .header("request-id", "req_conformance")
    }

    fn extra_statuses(&self) -> Vec<u16> {
        // Billing, and the API's overload status (§3.2).
        vec![402, 529]
    }
}

fazztv_testkit::conformance_tests!(
    AnthropicWire,
    claims = [ModelCapability::ToolCalling, ModelCapability::Vision]
);

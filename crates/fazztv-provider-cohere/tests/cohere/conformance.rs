//! The testkit's conformance suite against Cohere's v2 wire (spec Part A).

use std::sync::Arc;

use fazztv_core::{FinishReason, Provider, ProviderConfig, Usage};
use fazztv_testkit::ScriptedResponse;
use fazztv_testkit::conformance::{Failure, Reply, WireHarness};
use serde_json::{Value, json};

use crate::provider;

#[derive(Debug)]
struct CohereWire;

/// Cohere's answers do not name the model, so the provider reports the one it asked for: the
/// harness's provider asks for the suite's model by default.
const SUITE_MODEL: &str = "conformance-model-1";

fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ToolCalls => "TOOL_CALL",
        _ => "COMPLETE",
    }
}

fn usage(usage: &Usage) -> Value {
    let mut json = json!({
        "tokens": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
    });
    if let Some(cached) = usage.cached_tokens {
        json["cached_tokens"] = cached.into();
    }
    if let Some(billed) = usage.billed_prompt_tokens {
        json["billed_units"]["input_tokens"] = billed.into();
    }
    if let Some(billed) = usage.billed_completion_tokens {
        json["billed_units"]["output_tokens"] = billed.into();
    }
    json
}

/// One SSE event as Cohere sends it: `event:` naming the type, `data:` carrying it too.
fn event(data: Value) -> String {
    format!(
        "event: {}\ndata: {data}\n\n",
        data["type"].as_str().unwrap_or_default()
    )
}

impl WireHarness for CohereWire {
    fn provider_type(&self) -> &str {
        "cohere"
    }

    fn provider(&self, server_url: &str, api_key: &str) -> Arc<dyn Provider> {
        // An option that goes into a header too, so the key check sees it beside the key.
        Arc::new(provider(
            ProviderConfig::new("cohere")
                .with_api_key(api_key)
                .with_base_url(server_url)
                .with_default_model(SUITE_MODEL)
                .with_option("client_name", json!("conformance")),
        ))
    }

    fn reply(&self, reply: &Reply) -> ScriptedResponse {
        let mut message = json!({"role": "assistant"});
        let content = reply.content();
        if !content.is_empty() {
            message["content"] = json!([{"type": "text", "text": content}]);
        }
        if !reply.tool_calls.is_empty() {
            message["tool_calls"] = reply
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function",
                           "function": {"name": call.name, "arguments": call.arguments.to_text()}})
                })
                .collect();
        }
        let mut body = json!({
            "id": "c14c80c3-conformance",
            "message": message,
            "finish_reason": finish_reason(&reply.finish_reason),
        });
        if let Some(reported) = &reply.usage {
            body["usage"] = usage(reported);
        }
        ScriptedResponse::with_body(200, body.to_string())
            .header("content-type", "application/json")
            .header("x-request-id", "req_conformance")
    }

    fn stream(&self, reply: &Reply) -> ScriptedResponse {
        let mut events = vec![event(json!({
            "type": "message-start", "id": "29f14a5a-conformance",
            "delta": {"message": {"role": "assistant"}}
        }))];
        if !reply.text.is_empty() {
            events.push(event(json!({
                "type": "content-start", "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}}
            })));
            for text in &reply.text {
                events.push(event(json!({
                    "type": "content-delta", "index": 0,
                    "delta": {"message": {"content": {"text": text}}}
                })));
            }
            events.push(event(json!({"type": "content-end", "index": 0})));
        }
        for (index, call) in reply.tool_calls.iter().enumerate() {
            let arguments = call.arguments.to_text();
            let half = (0..=arguments.len() / 2)
                .rev()
                .find(|&at| arguments.is_char_boundary(at))
                .unwrap_or(0);
            events.push(event(json!({
                "type": "tool-call-start", "index": index,
                "delta": {"message": {"tool_calls": {"id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}}}
            })));
            for part in [&arguments[..half], &arguments[half..]] {
                events.push(event(json!({
                    "type": "tool-call-delta", "index": index,
                    "delta": {"message": {"tool_calls": {"function": {"arguments": part}}}}
                })));
            }
            events.push(event(json!({"type": "tool-call-end", "index": index})));
        }
        let mut end = json!({"finish_reason": finish_reason(&reply.finish_reason)});
        if let Some(reported) = &reply.usage {
            end["usage"] = usage(reported);
        }
        events.push(event(json!({"type": "message-end", "delta": end})));
        ScriptedResponse::new(200)
            .header("content-type", "text/event-stream")
            .header("x-request-id", "req_conformance")
            .chunks(events)
    }

    fn failure(&self, failure: &Failure) -> ScriptedResponse {
        // A.3: `{"id", "message"}`.
        let body =
            json!({"id": "5a0a0bd4-9f5e-4a57-a2a4-1b2c3d4e5f60", "message": failure.message});
        ScriptedResponse::with_body(failure.status, body.to_string())
            .header("content-type", "application/json")
            .header("x-request-id", "req_conformance")
    }

    fn extra_statuses(&self) -> Vec<u16> {
        // A.3: invalid token, request cancelled, not implemented.
        vec![498, 499, 501]
    }
}

mod suite {
    use fazztv_core::ModelCapability;

    use super::CohereWire;

    fazztv_testkit::conformance_tests!(
        CohereWire,
        claims = [
            ModelCapability::ToolCalling,
            ModelCapability::Vision,
            ModelCapability::StructuredOutput,
        ]
    );
}

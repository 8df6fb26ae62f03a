//! `POST /v2/chat` against wiremock: request bodies, answers, errors.

use std::time::Duration;

use fazztv_core::{
    ChatMessage, ChatRequest, ContentPart, ErrorKind, FinishReason, GenerationOptions, ImageSource,
    Provider, Reasoning, ReasoningControl, ResponseFormat, Role, Tool, ToolArguments, ToolCall,
    ToolChoice, ToolResult, Usage,
};
use fazztv_testkit::mock::{self, ErrorContext, only_request, snapshot_of};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{
    CHAT_RESPONSE, ERROR_BODY, IMAGE_REQUEST, SENTINEL_KEY, TOOL_CALL_RESPONSE,
    TOOL_RESULT_REQUEST, assert_no_key, config, provider,
};

const REQUEST_ID: &str = "req_cohere_1";

fn json_response(status: u16, body: &str) -> ResponseTemplate {
    mock::json_response(status, body).insert_header("x-request-id", REQUEST_ID)
}

async fn chat_server(response: ResponseTemplate) -> MockServer {
    mock::server_with("/v2/chat", response).await
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("the request body is JSON")
}

/// The one request `server` got: checks its key, then matches it, key redacted, against the
/// snapshot `name`; returns its body.
async fn assert_request_snapshot(server: &MockServer, name: &str) -> Value {
    let request = only_request(server).await;
    mock::assert_bearer(&request, SENTINEL_KEY);
    let snapshot = snapshot_of(&request);
    assert_no_key(&snapshot["body"].to_string());
    insta::assert_json_snapshot!(name, snapshot, {
        ".headers.authorization" => "[redacted]"
    });
    body_of(&request)
}

fn model(name: &str) -> GenerationOptions {
    GenerationOptions::with_model(name)
}

#[tokio::test]
async fn a_plain_chat_sends_the_documented_request_and_decodes_the_answer() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider =
        provider(config(&server.uri()).with_option("client_name", json!("fazztv-tests")));
    let mut options = model("command-r")
        .temperature(0.3)
        .max_tokens(512)
        .extra("safety_mode", json!("STRICT"))
        .extra("k", json!(40));
    options.top_p = Some(0.75);
    options.stop = vec!["END".into()];
    options.seed = Some(7);
    let request = ChatRequest::new(vec![
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("What is an LLM?"),
    ])
    .with_options(options);
    let response = provider.chat(request).await.unwrap();
    assert_eq!(
        response.content,
        "LLMs stand for Large Language Models, which are a type of neural network model \
         specialized in processing and generating human language."
    );
    assert_eq!(response.model, "command-r");
    assert_eq!(response.provider, "cohere");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    // Cohere bills 5 of the 71 prompt tokens it processed.
    assert_eq!(
        response.usage,
        Some(Usage::new(71, 418).with_billed_tokens(Some(5), Some(418)))
    );
    assert_eq!(response.reasoning, None);
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.request_id.as_deref(), Some(REQUEST_ID));
    let body = assert_request_snapshot(&server, "plain_chat_request").await;
    assert_eq!(body["p"], 0.75);
    assert_eq!(body["stop_sequences"], json!(["END"]));
}

#[tokio::test]
async fn the_default_model_is_used_and_the_answers_id_is_the_request_id_without_a_header() {
    let server = chat_server(mock::json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let response = provider
        .query("Hi", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(response.model, "command-a-03-2025");
    assert_eq!(
        response.request_id.as_deref(),
        Some("c14c80c3-18eb-4519-9460-6c92edd8cfb4")
    );
    let request = only_request(&server).await;
    assert_eq!(request.url.path(), "/v2/chat");
    assert_eq!(
        body_of(&request),
        json!({"model": "command-a-03-2025", "messages": [{"role": "user", "content": "Hi"}], "stream": false})
    );
}

#[tokio::test]
async fn an_image_chat_is_the_specs_request() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let request = ChatRequest::new(vec![
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("Describe this image").with_part(ContentPart::image(ImageSource::Url(
            "https://cohere.com/favicon-32x32.png".into(),
        ))),
    ])
    .with_options(model("command-a-03-2025").temperature(0.3).max_tokens(512));
    provider.chat(request).await.unwrap();
    let body = assert_request_snapshot(&server, "image_chat_request").await;
    let spec: Value = serde_json::from_str(IMAGE_REQUEST).unwrap();
    assert_eq!(body, spec);
}

#[tokio::test]
async fn image_bytes_are_sent_as_a_data_uri() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let image = ImageSource::from_bytes("image/png", &b"\x89PNG"[..]);
    let request = ChatRequest::new(vec![
        ChatMessage::user("What is this?").with_part(ContentPart::image(image)),
    ]);
    provider.chat(request).await.unwrap();
    let body = body_of(&only_request(&server).await);
    assert_eq!(
        body["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}})
    );
}

fn sales_tool() -> Tool {
    Tool::new(
        "query_daily_sales_report",
        json!({"type": "object", "properties": {"day": {"type": "string", "description": "YYYY-MM-DD"}}, "required": ["day"]}),
    )
    .with_description(
        "Connects to a database to retrieve overall sales volumes and sales information for a \
         given day.",
    )
}

#[tokio::test]
async fn a_tool_result_turn_is_the_specs_request() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let call = ChatMessage::from_parts(
        Role::Assistant,
        vec![
            ContentPart::Reasoning(Reasoning::new("I will query the daily sales report.")),
            ContentPart::ToolCall(ToolCall::from_text(
                "query_daily_sales_report_hgxxmkby3wta",
                "query_daily_sales_report",
                "{\"day\": \"2023-09-29\"}",
            )),
        ],
    );
    let request = ChatRequest::new(vec![
        ChatMessage::user("Sales summary for 2023-09-29?"),
        call,
        ChatMessage::tool_result(ToolResult::new(
            "query_daily_sales_report_hgxxmkby3wta",
            "{\"total_sales_amount\": 10000, \"total_units_sold\": 250}",
        )),
    ])
    .with_tool(sales_tool())
    .with_options(model("command-a-03-2025"));
    provider.chat(request).await.unwrap();
    let body = assert_request_snapshot(&server, "tool_result_request").await;
    let mut spec: Value = serde_json::from_str(TOOL_RESULT_REQUEST).unwrap();
    // The arguments are re-serialised from parsed JSON: same value, compact text.
    spec["messages"][1]["tool_calls"][0]["function"]["arguments"] =
        json!("{\"day\":\"2023-09-29\"}");
    spec["stream"] = json!(false);
    assert_eq!(body, spec);
}

#[tokio::test]
async fn tool_choices_map_to_cohere_words_and_a_named_one_is_refused_before_sending() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    for (choice, expected) in [
        (ToolChoice::Auto, Value::Null),
        (ToolChoice::Required, json!("REQUIRED")),
        (ToolChoice::None, json!("NONE")),
    ] {
        server.reset().await;
        Mock::given(path("/v2/chat"))
            .respond_with(json_response(200, CHAT_RESPONSE))
            .mount(&server)
            .await;
        let request = ChatRequest::from_prompt("x")
            .with_tool(sales_tool())
            .with_tool_choice(choice);
        provider.chat(request).await.unwrap();
        let body = body_of(&only_request(&server).await);
        assert_eq!(
            body.get("tool_choice").cloned().unwrap_or(Value::Null),
            expected
        );
    }
    server.reset().await;
    let named = ChatRequest::from_prompt("x")
        .with_tool(sales_tool())
        .with_tool_choice(ToolChoice::Tool("query_daily_sales_report".into()));
    let error = provider.chat(named).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(error.provider(), Some("cohere"));
    assert!(error.message().contains("ToolChoice::Required"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn structured_output_sends_the_schema_as_json_object() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let request = ChatRequest::from_prompt("Weather in Paris as JSON")
        .with_response_format(ResponseFormat::JsonSchema {
            name: "weather".into(),
            schema: json!({"type": "object", "properties": {"celsius": {"type": "integer"}}, "required": ["celsius"]}),
            strict: Some(true),
        })
        .with_reasoning(ReasoningControl::BudgetTokens(1024))
        .with_options(model("command-a-reasoning-08-2025"));
    provider.chat(request).await.unwrap();
    let body = assert_request_snapshot(&server, "structured_output_request").await;
    assert_eq!(body["response_format"]["type"], "json_object");
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "token_budget": 1024})
    );
}

#[tokio::test]
async fn documents_pass_through_extra_and_cannot_be_combined_with_json_output() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let documents = json!([
        "Emperor penguins are the tallest.",
        {"id": "doc-2", "data": {"title": "Habitat", "text": "Emperor penguins only live in Antarctica."}}
    ]);
    let options = model("command-a-03-2025")
        .extra("documents", documents.clone())
        .extra("citation_options", json!({"mode": "FAST"}));
    let request = ChatRequest::from_prompt("Where do the tallest penguins live?")
        .with_options(options.clone());
    provider.chat(request).await.unwrap();
    let body = assert_request_snapshot(&server, "documents_request").await;
    assert_eq!(body["documents"], documents);

    server.reset().await;
    let json_with_documents = ChatRequest::from_prompt("x")
        .with_options(options)
        .with_response_format(ResponseFormat::JsonObject);
    let error = provider.chat(json_with_documents).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn fields_fazztv_sets_are_refused_in_extra() {
    let server = chat_server(json_response(200, CHAT_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    for key in ["model", "messages", "stream"] {
        let request = ChatRequest::from_prompt("x")
            .with_options(GenerationOptions::default().extra(key, json!(true)));
        let error = provider.chat(request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{key}");
        assert!(error.message().contains(key), "{error}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_specs_tool_call_answer_decodes_typed_calls_and_thinking_as_reasoning() {
    let server = chat_server(json_response(200, TOOL_CALL_RESPONSE)).await;
    let provider = provider(config(&server.uri()));
    let response = provider
        .chat(ChatRequest::from_prompt("Sales?").with_tool(sales_tool()))
        .await
        .unwrap();
    assert_eq!(response.content, "");
    assert_eq!(
        response.reasoning.unwrap().text,
        "I will first find the sales summary for 29th September 2023. Then, I will find the \
         details of the products in the 'Electronics' category."
    );
    assert_eq!(
        response.tool_calls,
        [
            ToolCall::new(
                "query_daily_sales_report_hgxxmkby3wta",
                "query_daily_sales_report",
                json!({"day": "2023-09-29"})
            ),
            ToolCall::new(
                "query_product_catalog_rpg0z5h8yyz2",
                "query_product_catalog",
                json!({"category": "Electronics"})
            ),
        ]
    );
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        response.usage,
        Some(Usage::new(1032, 124).with_billed_tokens(Some(127), Some(69)))
    );
}

#[tokio::test]
async fn invalid_arguments_unknown_parts_plan_and_cached_tokens() {
    let body = r#"{"id":"a","message":{"role":"assistant","content":[
        {"type":"text","text":"Checking."},{"type":"citation_thing","x":1},{"type":"text","text":" Done."}],
        "tool_plan":"Look it up.","citations":[{"start":0,"end":1,"text":"C","sources":[]}],
        "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\": "}}]},
        "finish_reason":"TOOL_CALL","unknown_field":true,
        "usage":{"tokens":{"input_tokens":10,"output_tokens":3},"cached_tokens":8}}"#;
    let server = chat_server(json_response(200, body)).await;
    let provider = provider(config(&server.uri()));
    let response = provider.chat(ChatRequest::from_prompt("x")).await.unwrap();
    assert_eq!(response.content, "Checking. Done.");
    assert_eq!(response.reasoning.unwrap().text, "Look it up.");
    assert_eq!(
        response.tool_calls[0].arguments,
        ToolArguments::Invalid("{\"a\": ".into())
    );
    assert_eq!(
        response.usage,
        Some(Usage::new(10, 3).with_cached_tokens(Some(8)))
    );
}

#[tokio::test]
async fn usage_is_known_or_none_never_zeros() {
    let without = r#"{"id":"a","message":{"role":"assistant","content":[{"type":"text","text":"Hi"}]},"finish_reason":"MAX_TOKENS"}"#;
    let billed_only = r#"{"id":"a","message":{"role":"assistant","content":[{"type":"text","text":"Hi"}]},"finish_reason":"STOP_SEQUENCE","usage":{"billed_units":{"input_tokens":1,"output_tokens":1}}}"#;
    for (body, reason) in [
        (without, FinishReason::Length),
        (billed_only, FinishReason::Stop),
    ] {
        let server = chat_server(json_response(200, body)).await;
        let response = provider(config(&server.uri()))
            .chat(ChatRequest::from_prompt("x"))
            .await
            .unwrap();
        assert_eq!(response.usage, None);
        assert_eq!(response.finish_reason, Some(reason));
    }
}

#[tokio::test]
async fn error_and_timeout_finishes_are_typed_errors() {
    for (reason, kind) in [
        ("ERROR", ErrorKind::ServerError),
        ("TIMEOUT", ErrorKind::Timeout),
    ] {
        let body = format!(
            r#"{{"id":"gen-1","message":{{"role":"assistant","content":[{{"type":"text","text":"par"}}]}},"finish_reason":"{reason}"}}"#
        );
        let server = chat_server(mock::json_response(200, &body)).await;
        let error = provider(config(&server.uri()))
            .chat(ChatRequest::from_prompt("x"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert_eq!(error.provider(), Some("cohere"));
        assert_eq!(error.request_id(), Some("gen-1"));
        assert!(error.message().contains(reason), "{error}");
    }
}

#[tokio::test]
async fn undecodable_answers_are_protocol_errors() {
    let server = chat_server(
        ResponseTemplate::new(200).set_body_raw("<html>captive portal</html>", "text/html"),
    )
    .await;
    let error = provider(config(&server.uri()))
        .chat(ChatRequest::from_prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(error.message().contains("captive portal"), "{error}");
}

fn cohere_error(message: &str) -> String {
    json!({"id": "5a0a0bd4-9f5e-4a57-a2a4-1b2c3d4e5f60", "message": message}).to_string()
}

#[tokio::test]
async fn every_documented_status_is_classified_by_cores_table_with_its_message() {
    let server = MockServer::start().await;
    let provider = provider(config(&server.uri()));
    let cases: Vec<(u16, String, ErrorKind, &str)> = vec![
        (
            400,
            cohere_error("invalid request: missing messages"),
            ErrorKind::InvalidRequest,
            "missing messages",
        ),
        (
            400,
            cohere_error("too many tokens: the prompt exceeds the context window"),
            ErrorKind::ContextLengthExceeded,
            "too many tokens",
        ),
        (
            401,
            cohere_error("invalid api token"),
            ErrorKind::Authentication,
            "invalid api token",
        ),
        (
            403,
            cohere_error("forbidden"),
            ErrorKind::PermissionDenied,
            "forbidden",
        ),
        (
            404,
            cohere_error("model 'command-x' not found"),
            ErrorKind::ModelNotFound,
            "command-x",
        ),
        (
            422,
            cohere_error("unprocessable entity"),
            ErrorKind::InvalidRequest,
            "unprocessable",
        ),
        (
            429,
            cohere_error("too many requests"),
            ErrorKind::RateLimited,
            "too many requests",
        ),
        (
            498,
            ERROR_BODY.to_owned(),
            ErrorKind::Authentication,
            "invalid api token",
        ),
        (
            499,
            cohere_error("request cancelled"),
            ErrorKind::Cancelled,
            "request cancelled",
        ),
        (
            500,
            cohere_error("internal server error"),
            ErrorKind::ServerError,
            "internal",
        ),
        (
            501,
            cohere_error("not implemented"),
            ErrorKind::ServerError,
            "not implemented",
        ),
        (
            503,
            cohere_error("service unavailable"),
            ErrorKind::Overloaded,
            "unavailable",
        ),
        (
            504,
            cohere_error("gateway timeout"),
            ErrorKind::ServerError,
            "gateway timeout",
        ),
    ];
    for (status, body, kind, _) in &cases {
        assert_eq!(
            ErrorKind::from_http_status(*status, None, body),
            *kind,
            "core's table for {status}"
        );
    }
    let borrowed: Vec<(u16, &str, ErrorKind, &str)> = cases
        .iter()
        .map(|(status, body, kind, message)| (*status, body.as_str(), *kind, *message))
        .collect();
    mock::assert_error_statuses(
        &server,
        "/v2/chat",
        &provider,
        json_response,
        ErrorContext {
            provider: "cohere",
            request_id: REQUEST_ID,
            key: SENTINEL_KEY,
        },
        &borrowed,
    )
    .await;
}

#[tokio::test]
async fn the_message_is_the_bodys_not_the_whole_json() {
    let server = chat_server(json_response(401, ERROR_BODY)).await;
    let error = provider(config(&server.uri()))
        .chat(ChatRequest::from_prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(error.message(), "invalid api token");
    assert_eq!(
        error.to_string(),
        format!("cohere: authentication: invalid api token (HTTP 401, request id {REQUEST_ID})")
    );
}

#[tokio::test]
async fn retry_after_becomes_the_retry_hint() {
    let server = chat_server(
        json_response(429, &cohere_error("too many requests")).insert_header("retry-after", "7"),
    )
    .await;
    let error = provider(config(&server.uri()))
        .chat(ChatRequest::from_prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(error.status(), Some(429));
}

#[tokio::test]
async fn the_key_never_shows_even_when_the_server_quotes_it() {
    let quoted = cohere_error(&format!("invalid api token: {SENTINEL_KEY}"));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/chat"))
        .respond_with(json_response(401, &quoted))
        .mount(&server)
        .await;
    let provider = provider(config(&server.uri()));
    assert_no_key(&format!("{provider:?}"));
    let error = provider
        .chat(ChatRequest::from_prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_no_key(&format!("{error:?} {error}"));
    assert!(error.message().contains("[REDACTED]"), "{error}");
    mock::assert_bearer(&only_request(&server).await, SENTINEL_KEY);
}

#[tokio::test]
async fn an_unreachable_server_is_a_network_error_without_the_key() {
    let closed = fazztv_testkit::provider::closed_port();
    let error = provider(config(&closed.url()))
        .chat(ChatRequest::from_prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network);
    assert_no_key(&format!("{error:?} {error}"));
}

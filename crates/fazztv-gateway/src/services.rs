//! Embeddings, moderations, the model list and the health probes.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fazztv_core::{Attempt, EmbeddingRequest, EmbeddingResponse, ModerationResult};
use fazztv_manager::HealthState;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::chat::{answer_headers, failure, options, routing_headers};
use crate::error::{ApiError, axum_json};
use crate::wire::{self, object};
use crate::{RequestId, Shared};

/// The strings of `input`: one string, or an array of them (token arrays are not taken).
fn texts(object: &Map<String, Value>, endpoint: &str) -> Result<Vec<String>, ApiError> {
    let wrong = || {
        ApiError::invalid(format!(
            "`input` must be a string or an array of strings (this gateway takes no token \
             arrays{endpoint})"
        ))
        .with_param("input")
    };
    let texts = match object.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Some(text.clone()),
                // Moderation's text parts.
                Value::Object(part) if part.get("type").and_then(Value::as_str) == Some("text") => {
                    part.get("text").and_then(Value::as_str).map(str::to_owned)
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(wrong)?,
        _ => return Err(wrong()),
    };
    if texts.is_empty() {
        return Err(ApiError::invalid("`input` is empty").with_param("input"));
    }
    Ok(texts)
}

/// `POST /v1/embeddings`: vectors as float arrays, or (`encoding_format: "base64"`, which the
/// official SDKs send by default) as base64 of little-endian `f32`s.
pub(crate) async fn embeddings(caller: Caller, body: Bytes) -> Response {
    let read = || -> Result<_, ApiError> {
        let object = object(&body)?;
        let texts = texts(&object, "")?;
        let model = wire::string(&object, "model", "")?;
        let base64 = match object.get("encoding_format") {
            None | Some(Value::Null) => false,
            Some(Value::String(format)) if format == "float" => false,
            Some(Value::String(format)) if format == "base64" => true,
            Some(_) => {
                return Err(
                    ApiError::invalid("`encoding_format` must be \"float\" or \"base64\"")
                        .with_param("encoding_format"),
                );
            }
        };
        let dimensions = match object.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|dimensions| u32::try_from(dimensions).ok())
                    .filter(|dimensions| *dimensions > 0)
                    .ok_or_else(|| {
                        ApiError::invalid("`dimensions` must be a positive integer")
                            .with_param("dimensions")
                    })?,
            ),
        };
        let user = object
            .get("user")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((texts, model, base64, dimensions, user))
    };
    let (texts, model, base64, dimensions, user) = match read() {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = caller.check_model(model.as_deref()) {
        return error.into_response();
    }
    let mut request = EmbeddingRequest::batch(texts);
    request.dimensions = dimensions;
    let options = options(&caller, model.as_deref(), user.as_deref());
    match caller
        .shared()
        .manager
        .get_embeddings_with_fallback(request, options)
        .await
    {
        Ok(response) => embedded(&response, base64),
        Err(error) => failure(&error),
    }
}

fn embedded(response: &EmbeddingResponse, base64: bool) -> Response {
    let data: Vec<Value> = response
        .embeddings
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                Value::String(BASE64.encode(bytes))
            } else {
                json!(vector)
            };
            // Set after: `json!` would copy the vector once more.
            let mut item = json!({"object": "embedding", "index": index});
            item["embedding"] = embedding;
            item
        })
        .collect();
    let mut body = json!({"object": "list", "model": response.model});
    body["data"] = Value::Array(data);
    if let Some(usage) = &response.usage {
        body["usage"] = json!({
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.total_tokens,
        });
    }
    let mut http = axum_json(&body);
    answer_headers(
        http.headers_mut(),
        &response.provider,
        &response.model,
        &response.attempts,
        response.cost.as_ref(),
    );
    http
}

/// `POST /v1/moderations`: one result per input text (text parts are read as texts; images
/// are not taken).
pub(crate) async fn moderations(caller: Caller, id: RequestId, body: Bytes) -> Response {
    let read = || -> Result<_, ApiError> {
        let object = object(&body)?;
        Ok((
            texts(&object, " and no images")?,
            wire::string(&object, "model", "")?,
        ))
    };
    let (texts, model) = match read() {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    if let Err(error) = caller.check_model(model.as_deref()) {
        return error.into_response();
    }
    let options = options(&caller, model.as_deref(), None);
    let verdicts = futures::future::join_all(texts.iter().map(|text| {
        caller
            .shared()
            .manager
            .moderate_with_fallback(text, options.clone())
    }))
    .await;
    let mut results = Vec::with_capacity(verdicts.len());
    for verdict in verdicts {
        match verdict {
            Ok(result) => results.push(result),
            Err(error) => return failure(&error),
        }
    }
    moderated(&results, model.as_deref(), &id.0)
}

fn moderated(results: &[ModerationResult], asked: Option<&str>, id: &str) -> Response {
    let model = results
        .iter()
        .find_map(|result| result.model.as_deref())
        .or(asked)
        .unwrap_or_default();
    let body = json!({
        "id": format!("modr-{id}"),
        "model": model,
        "results": results.iter().map(|result| {
            let categories: BTreeMap<&str, bool> = result
                .category_scores
                .keys()
                .map(|category| (category.as_str(), result.concerns.contains(category)))
                .chain(result.concerns.iter().map(|concern| (concern.as_str(), true)))
                .collect();
            json!({
                "flagged": !result.safe,
                "categories": categories,
                "category_scores": result.category_scores,
            })
        }).collect::<Vec<_>>(),
    });
    let mut http = axum_json(&body);
    let attempts: Vec<Attempt> = results
        .iter()
        .flat_map(|result| result.attempts.iter().cloned())
        .collect();
    let provider = results.last().and_then(|result| result.provider.as_deref());
    routing_headers(http.headers_mut(), provider, Some(model), &attempts);
    http
}

/// `GET /v1/models`: every model the enabled providers list (each id once, owned by the
/// first provider listing it) and every configured route; for a key limited to some models,
/// exactly those.
pub(crate) async fn models(caller: &Caller) -> Response {
    let shared = caller.shared();
    let registry = shared.manager.registry();
    let (listed, failures) = registry.list_all_models().await;
    for (provider, error) in &failures {
        tracing::debug!(provider = %provider, error = %error, "a provider could not list its models");
    }
    // Each id once, in listing order: a catalog lists hundreds.
    let mut seen = std::collections::HashSet::new();
    let mut owners: Vec<(String, String)> = Vec::new();
    for model in listed {
        if seen.insert(model.id.clone()) {
            owners.push((model.id, model.provider));
        }
    }
    for route in registry.routes().keys() {
        if seen.insert(route.clone()) {
            owners.push((route.clone(), String::from("fazztv")));
        }
    }
    let allowed = caller.models();
    if !allowed.is_empty() {
        owners = allowed
            .iter()
            .map(|model| {
                let owner = owners
                    .iter()
                    .find(|(id, _)| id == model)
                    .map_or_else(|| String::from("fazztv"), |(_, owner)| owner.clone());
                (model.clone(), owner)
            })
            .collect();
    }
    let data: Vec<Value> = owners
        .into_iter()
        .map(|(id, owner)| {
            json!({"id": id, "object": "model", "created": shared.started, "owned_by": owner})
        })
        .collect();
    axum_json(&json!({"object": "list", "data": data}))
}

/// `GET /healthz`: the process serves.
pub(crate) fn healthz() -> Response {
    axum_json(&json!({"status": "ok"}))
}

/// `GET /metrics`: the Prometheus text exposition (no key needed, as for the probes).
pub(crate) fn metrics(shared: &Shared) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// `GET /readyz`: 200 while at least one enabled provider is in rotation (not ejected), else
/// 503.
pub(crate) fn readyz(shared: &Shared) -> Response {
    let registry = shared.manager.registry();
    let in_rotation = shared
        .manager
        .health()
        .iter()
        .filter(|health| {
            registry
                .entry(&health.provider)
                .is_some_and(|entry| entry.config().enabled)
        })
        .filter(|health| !matches!(health.state, HealthState::Ejected { .. }))
        .count();
    if in_rotation > 0 {
        axum_json(&json!({"status": "ready", "providers_in_rotation": in_rotation}))
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ("server_error", "not_ready"),
            "api_error",
            "no enabled provider is in rotation: every one is ejected after failing, or none \
             is enabled",
        )
        .into_response()
    }
}

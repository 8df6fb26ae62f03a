//! Embeddings from a Text Embeddings Inference server or the router's feature-extraction
//! pipeline: both take `{"inputs": [texts]}` and answer with bare JSON arrays.

use fazztv_core::{EmbeddingResponse, Error, ErrorKind};
use fazztv_openai_compat::OpenAiCompatClient;
use serde_json::Value;

/// Where vectors come from (see the crate documentation for the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EmbeddingsEndpoint {
    /// A TEI server: `POST {url}/embed` (`url` without a trailing `/`).
    Tei(String),
    /// The router: `POST {root}/hf-inference/models/{model}/pipeline/feature-extraction`.
    Pipeline { root: String },
}

impl EmbeddingsEndpoint {
    /// From the chat `base_url` (already without a trailing `/`) and `options.embeddings_url`.
    pub(crate) fn resolve(base_url: &str, embeddings_url: Option<&str>) -> Result<Self, Error> {
        if let Some(url) = embeddings_url {
            let url = url.trim().trim_end_matches('/');
            let parsed = fazztv_core::http::Url::parse(url).map_err(|error| {
                Error::new(
                    ErrorKind::Configuration,
                    format!(
                        "`options.embeddings_url` is not a valid URL ({error}); expected e.g. \
                         http://127.0.0.1:8081"
                    ),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::new(
                    ErrorKind::Configuration,
                    "`options.embeddings_url` must use http or https",
                ));
            }
            // Given as the server or as its `/embed` route: both mean the same endpoint.
            let server = url.strip_suffix("/embed").unwrap_or(url);
            return Ok(Self::Tei(server.to_owned()));
        }
        Ok(match base_url.strip_suffix("/v1") {
            Some(root) => Self::Pipeline {
                root: root.to_owned(),
            },
            None => Self::Tei(base_url.to_owned()),
        })
    }

    pub(crate) fn url(&self, model: &str) -> String {
        match self {
            Self::Tei(server) => format!("{server}/embed"),
            Self::Pipeline { root } => {
                format!("{root}/hf-inference/models/{model}/pipeline/feature-extraction")
            }
        }
    }
}

/// Embeds `inputs`, one vector per text, in order.
pub(crate) async fn embed(
    client: &OpenAiCompatClient,
    endpoint: &EmbeddingsEndpoint,
    inputs: &[String],
    model: &str,
) -> Result<EmbeddingResponse, Error> {
    let provider = client.provider();
    if inputs.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "an embedding request needs at least one input text",
        )
        .with_provider(provider));
    }
    let body = serde_json::json!({ "inputs": inputs });
    let answer = client.post_json(&endpoint.url(model), &body).await?;
    let vectors = decode_vectors(&answer, inputs.len())
        .map_err(|message| Error::new(ErrorKind::Protocol, message).with_provider(provider))?;
    Ok(EmbeddingResponse::new(vectors, model, provider))
}

/// One vector per input from a 2-D answer (one row per text), a 1-D one (a single text) or a
/// 3-D one (one vector per token of each text, averaged).
fn decode_vectors(body: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        format!(
            "the embeddings answer is not JSON ({error}): {}",
            fazztv_core::http::body_excerpt(body)
        )
    })?;
    let not_vectors = || {
        format!(
            "the embeddings answer is not an array of vectors: {}",
            fazztv_core::http::body_excerpt(body)
        )
    };
    let rows = value.as_array().ok_or_else(not_vectors)?;
    let vectors = match rows.first() {
        Some(Value::Number(_)) => vec![numbers(rows).ok_or_else(not_vectors)?],
        Some(Value::Array(inner)) if matches!(inner.first(), Some(Value::Array(_))) => rows
            .iter()
            .map(|tokens| mean_of(tokens).ok_or_else(not_vectors))
            .collect::<Result<_, _>>()?,
        _ => rows
            .iter()
            .map(|row| row.as_array().and_then(|row| numbers(row)))
            .collect::<Option<_>>()
            .ok_or_else(not_vectors)?,
    };
    if vectors.len() != expected {
        return Err(format!(
            "the embeddings answer has {} vectors for {expected} inputs",
            vectors.len()
        ));
    }
    Ok(vectors)
}

fn numbers(values: &[Value]) -> Option<Vec<f32>> {
    values
        .iter()
        .map(|value| value.as_f64().map(|number| number as f32))
        .collect()
}

/// The average of a text's token vectors (mean pooling); `None` unless they are non-empty
/// vectors of one length.
fn mean_of(tokens: &Value) -> Option<Vec<f32>> {
    let tokens = tokens.as_array()?;
    let mut sum: Vec<f64> = Vec::new();
    for token in tokens {
        let token = token.as_array()?;
        if sum.is_empty() {
            sum = vec![0.0; token.len()];
        }
        if token.len() != sum.len() {
            return None;
        }
        for (total, value) in sum.iter_mut().zip(token) {
            *total += value.as_f64()?;
        }
    }
    if sum.is_empty() {
        return None;
    }
    let count = tokens.len() as f64;
    Some(
        sum.into_iter()
            .map(|total| (total / count) as f32)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_documented_order() {
        let tei = EmbeddingsEndpoint::resolve(
            "https://router.huggingface.co/v1",
            Some("http://127.0.0.1:8081/"),
        )
        .unwrap();
        assert_eq!(tei.url("m"), "http://127.0.0.1:8081/embed");
        let given_route =
            EmbeddingsEndpoint::resolve("http://x/v1", Some("http://127.0.0.1:8081/embed"))
                .unwrap();
        assert_eq!(given_route, tei);
        let tei_base = EmbeddingsEndpoint::resolve("http://127.0.0.1:8081", None).unwrap();
        assert_eq!(tei_base.url("m"), "http://127.0.0.1:8081/embed");
        let router = EmbeddingsEndpoint::resolve("https://router.huggingface.co/v1", None).unwrap();
        assert_eq!(
            router.url("intfloat/multilingual-e5-large-instruct"),
            "https://router.huggingface.co/hf-inference/models/intfloat/multilingual-e5-large-instruct/pipeline/feature-extraction"
        );
        let error = EmbeddingsEndpoint::resolve("http://x/v1", Some("ftp://host")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
    }

    #[test]
    fn one_two_and_three_dimensional_answers_give_one_vector_per_text() {
        assert_eq!(decode_vectors(b"[0.5, -1]", 1).unwrap(), [vec![0.5, -1.0]]);
        assert_eq!(
            decode_vectors(b"[[1, 2], [3, 4]]", 2).unwrap(),
            [vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        // Two texts of two and one tokens: the token vectors are averaged.
        assert_eq!(
            decode_vectors(b"[[[1, 2], [3, 6]], [[5, 5]]]", 2).unwrap(),
            [vec![2.0, 4.0], vec![5.0, 5.0]]
        );
    }

    #[test]
    fn answers_that_are_not_one_vector_per_text_are_refused() {
        for (body, expected, says) in [
            (&b"[[1, 2]]"[..], 2, "1 vectors for 2 inputs"),
            (b"{\"error\": \"x\"}", 1, "not an array of vectors"),
            (b"[[1, \"a\"]]", 1, "not an array of vectors"),
            (b"[[[1, 2], [3]]]", 1, "not an array of vectors"),
            (b"<html>", 1, "not JSON"),
        ] {
            let message = decode_vectors(body, expected).unwrap_err();
            assert!(message.contains(says), "{message}");
        }
    }
}

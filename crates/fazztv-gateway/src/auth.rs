//! Virtual keys: who is calling, what they may ask for, and how often.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, HeaderName};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fazztv_manager::Refused;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::{GatewayAuth, GatewayError, GatewaySettings, Shared, read_whole};

/// The header Anthropic's clients send their key in.
const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The configured keys, as digests ready to compare, and each key once it has been presented
/// and matched its digest. `Debug` shows how many, never a digest or a key.
pub(crate) struct Keys {
    digests: Vec<[u8; 32]>,
    /// Per key, the key itself and a keyed hash of it, set when it first matched: a key that
    /// came before is then recognised without SHA-256, which costs more than the rest of
    /// admitting a request. Only keys that matched are kept, so this never grows past the
    /// configured keys; a reload builds new `Keys`, forgetting them.
    seen: Vec<OnceLock<Seen>>,
    hasher: RandomState,
}

struct Seen {
    hash: u64,
    key: Box<[u8]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("count", &self.digests.len())
            .finish()
    }
}

/// Whether `a` and `b` are equal, in a time that depends only on their lengths.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Keys {
    /// Decodes every key's hash; a malformed one (or a name used twice) is a settings error
    /// naming the key, never quoting the hash.
    pub(crate) fn new(settings: &GatewaySettings) -> Result<Self, GatewayError> {
        let mut digests = Vec::with_capacity(settings.keys.len());
        for (index, key) in settings.keys.iter().enumerate() {
            if key.name.is_empty() {
                return Err(GatewayError::Settings(format!(
                    "key {index} has an empty `name`"
                )));
            }
            if settings.keys[..index]
                .iter()
                .any(|other| other.name == key.name)
            {
                return Err(GatewayError::Settings(format!(
                    "two keys are named `{}`; names must be unique",
                    key.name
                )));
            }
            let digest = decode_hex(&key.sha256).ok_or_else(|| {
                GatewayError::Settings(format!(
                    "the `sha256` of key `{}` is not 64 hexadecimal digits (the SHA-256 of the \
                     key, e.g. from `printf %s \"$KEY\" | sha256sum`)",
                    key.name
                ))
            })?;
            digests.push(digest);
        }
        Ok(Self {
            seen: digests.iter().map(|_| OnceLock::new()).collect(),
            digests,
            hasher: RandomState::new(),
        })
    }

    /// The index of the key whose hash is `key`'s. A key seen before is found by its keyed
    /// hash and then compared whole in constant time; any other is hashed with SHA-256 and
    /// compared in constant time with every digest.
    fn find(&self, key: &str) -> Option<usize> {
        let key = key.as_bytes();
        let hash = self.hasher.hash_one(key);
        let remembered = self.seen.iter().position(|seen| {
            seen.get()
                .is_some_and(|seen| seen.hash == hash && same_bytes(&seen.key, key))
        });
        if remembered.is_some() {
            return remembered;
        }
        let found = self.find_digest(key)?;
        // Another request with the same key may have set it first: either way it is this key.
        let _ = self.seen[found].set(Seen {
            hash,
            key: key.into(),
        });
        Some(found)
    }

    /// The index of the key whose SHA-256 is `key`'s, compared in constant time over every key.
    fn find_digest(&self, key: &[u8]) -> Option<usize> {
        let presented: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for (index, digest) in self.digests.iter().enumerate() {
            if same_bytes(digest, &presented) && found.is_none() {
                found = Some(index);
            }
        }
        found
    }
}

/// 64 hexadecimal digits as 32 bytes.
fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(bytes)
}

/// Who a request comes from: a configured key (by its index), or nobody with `auth: none`.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    key: Option<usize>,
    shared: Arc<Shared>,
}

impl Caller {
    /// The configuration it was admitted under.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The key's name, for `QueryOptions::key_name`.
    pub(crate) fn key_name(&self) -> Option<&str> {
        self.key
            .map(|index| self.shared.settings.keys[index].name.as_str())
    }

    /// Whether the key may ask for `model`.
    pub(crate) fn allows(&self, model: Option<&str>) -> bool {
        self.key
            .is_none_or(|index| self.shared.settings.keys[index].allows(model))
    }

    /// 403 unless the key may ask for `model`.
    pub(crate) fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        if self.allows(model) {
            Ok(())
        } else {
            Err(ApiError::forbidden_model(model))
        }
    }

    /// The models the key is limited to (empty: any).
    pub(crate) fn models(&self) -> &[String] {
        self.key
            .map_or(&[][..], |index| &self.shared.settings.keys[index].models)
    }
}

/// Admits a request of the API: its key (401 without a configured one), then the key's
/// requests per minute (429 with `Retry-After` over it), then its body ([`read_whole`]).
pub(crate) async fn admit(
    shared: &Arc<Shared>,
    request: Request,
) -> Result<(Caller, Bytes), Response> {
    let caller = identify(shared, request.headers()).map_err(IntoResponse::into_response)?;
    limit(&caller).await.map_err(IntoResponse::into_response)?;
    Ok((caller, read_whole(shared, request).await?))
}

/// The key of a request: `Authorization: Bearer <key>` (OpenAI's clients), else
/// `x-api-key: <key>` (Anthropic's).
fn identify(shared: &Arc<Shared>, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if shared.settings.auth == GatewayAuth::None {
        return Ok(Caller {
            key: None,
            shared: shared.clone(),
        });
    }
    let key = if let Some(header) = headers.get(AUTHORIZATION) {
        header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, key) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated(
                    "the `Authorization` header is not `Bearer <key>`; send a key of this \
                     gateway",
                )
            })?
    } else if let Some(header) = headers.get(API_KEY_HEADER) {
        header
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::unauthenticated(
                    "the `x-api-key` header is empty; send a key of this gateway",
                )
            })?
    } else {
        return Err(ApiError::unauthenticated(
            "no API key: send `Authorization: Bearer <key>` or `x-api-key: <key>` with a key \
             of this gateway",
        ));
    };
    let Some(index) = shared.keys.find(key) else {
        return Err(ApiError::unauthenticated(
            "the API key is not valid for this gateway",
        ));
    };
    Ok(Caller {
        key: Some(index),
        shared: shared.clone(),
    })
}

/// 429 with `Retry-After` when the caller's key has made its requests per minute.
async fn limit(caller: &Caller) -> Result<(), ApiError> {
    let Some(index) = caller.key else {
        return Ok(());
    };
    let shared = &caller.shared;
    let entry = &shared.settings.keys[index];
    if let Some(rpm) = entry.rpm {
        let store = shared.manager.state_store();
        let taken = store
            .acquire(
                &format!("gateway/rpm/{}", entry.name),
                Duration::from_secs(60),
                tokio::time::Instant::now(),
                u64::from(rpm),
                1,
            )
            .await;
        match taken {
            Ok(_) => {}
            Err(Refused::Full(wait)) => {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ("rate_limit_error", "rate_limit_exceeded"),
                    "rate_limit_error",
                    format!(
                        "key `{}` may make {rpm} requests per minute; try again in {:.1} s",
                        entry.name,
                        wait.as_secs_f64()
                    ),
                )
                .with_retry_after(wait));
            }
            Err(Refused::Unavailable(outage)) => {
                return Err(ApiError::from_error(&fazztv_core::Error::new(
                    fazztv_core::ErrorKind::StoreUnavailable,
                    format!(
                        "{outage}; the request was not sent (key `{}`'s requests per minute \
                         cannot be counted)",
                        entry.name
                    ),
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(presented: &[&str]) -> Keys {
        let keys: Vec<serde_json::Value> = presented
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let digest: String = Sha256::digest(key.as_bytes())
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                serde_json::json!({"name": format!("key{index}"), "sha256": digest})
            })
            .collect();
        let settings: GatewaySettings =
            serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap();
        Keys::new(&settings).unwrap()
    }

    #[test]
    fn a_key_is_found_by_its_digest_then_remembered() {
        let keys = keys(&["sk-one", "sk-two", "sk-two"]);
        assert!(keys.seen.iter().all(|seen| seen.get().is_none()));
        // The first of two keys with one digest, found by SHA-256 and then by memory.
        assert_eq!(keys.find("sk-two"), Some(1));
        assert!(keys.seen[1].get().is_some());
        assert_eq!(keys.find("sk-two"), Some(1));
        assert!(keys.seen[0].get().is_none() && keys.seen[2].get().is_none());
        assert_eq!(keys.find("sk-one"), Some(0));
        assert_eq!(keys.find("sk-one"), Some(0));
        // Near misses of a remembered key are neither found nor remembered.
        for wrong in ["sk-twO", "sk-two ", "sk-tw", "sk-two2", "", "sk-three"] {
            assert_eq!(keys.find(wrong), None, "{wrong:?}");
        }
        assert!(keys.seen[2].get().is_none());
        let shown = format!("{keys:?}");
        assert_eq!(shown, "Keys { count: 3 }");
    }

    #[test]
    fn bytes_compare_whole() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(same_bytes(b"", b""));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
        assert!(!same_bytes(b"ab", b"abc"));
    }

    #[test]
    fn hashes_decode_in_either_case() {
        let lower = "3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3";
        assert_eq!(decode_hex(lower), decode_hex(&lower.to_uppercase()));
        assert!(decode_hex(lower).is_some());
        assert!(decode_hex(&lower[1..]).is_none());
        assert!(decode_hex(&lower.replace('3', "g")).is_none());
    }
}

//! Shared helpers and the wire examples of `shared/specs/ollama.md`, verbatim.
#![allow(dead_code)] // Each test file uses a different part.

// Every dependency must be used by every test target (`unused_crate_dependencies`).
use {
    fazztv_testkit as _, futures as _, insta as _, proptest as _, reqwest as _, schemars as _,
    serde as _, serde_json as _, tokio as _, tracing as _, wiremock as _,
};

use fazztv_core::{Environment, ProviderConfig};
use fazztv_provider_ollama::OllamaProvider;

/// A provider pointed at `base_url`, with an empty environment.
pub fn provider(base_url: &str) -> OllamaProvider {
    provider_with(ProviderConfig::new("ollama").with_base_url(base_url))
}

/// A provider built from `config`, with an empty environment.
pub fn provider_with(config: ProviderConfig) -> OllamaProvider {
    OllamaProvider::with_environment(config, &no_env()).expect("valid configuration")
}

pub fn no_env() -> Environment {
    Environment::from_vars::<&str, &str>([])
}

/// §1.3 non-streaming reply.
pub const CHAT_REPLY: &str = r#"{
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

/// §1.4 streaming transcript.
pub const CHAT_STREAM: &str = r#"{"model":"llama3.2","created_at":"2025-07-07T20:22:19.101256Z","message":{"role":"assistant","content":"The"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.113892Z","message":{"role":"assistant","content":" sky"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.126004Z","message":{"role":"assistant","content":" appears"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.138211Z","message":{"role":"assistant","content":" blue"},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.150377Z","message":{"role":"assistant","content":" because of Rayleigh scattering."},"done":false}
{"model":"llama3.2","created_at":"2025-07-07T20:22:19.162488Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":182242375,"load_duration":41295167,"prompt_eval_count":31,"prompt_eval_duration":24573166,"eval_count":5,"eval_duration":115959084}
"#;

/// §1.4 thinking chunk.
pub const THINKING_CHUNK: &str = r#"{"model":"qwen3","created_at":"2025-10-26T17:15:24.097767Z","message":{"role":"assistant","content":"","thinking":"Count the r's in strawberry"},"done":false}"#;

/// §1.5 mid-stream error line.
pub const STREAM_ERROR_LINE: &str =
    r#"{"error":"an error was encountered while running the model"}"#;

/// §3.1 `/api/tags`.
pub const TAGS: &str = r#"{
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

/// §3.3 pull progress transcript.
pub const PULL_STREAM: &str = r#"{"status":"pulling manifest"}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376,"completed":241970}
{"status":"pulling dde5aa3fc5ff","digest":"sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff","total":2019377376,"completed":2019377376}
{"status":"pulling 966de95ca8a6","digest":"sha256:966de95ca8a62200913e3f8bfbf84c8494536f1b94b49166851e76644e966396","total":1429,"completed":1429}
{"status":"verifying sha256 digest"}
{"status":"writing manifest"}
{"status":"removing unused layers"}
{"status":"success"}
"#;

/// §3.3 unknown model: manifest, then an in-band error.
pub const PULL_UNKNOWN_MODEL: &str = r#"{"status":"pulling manifest"}
{"error":"pull model manifest: file does not exist"}
"#;

/// §4.1 `/api/embed` reply.
pub const EMBED_REPLY: &str = r#"{
  "model": "all-minilm",
  "embeddings": [
    [0.010071029, -0.0017594862, 0.05007221, 0.04692972, 0.054916814, 0.008599704, 0.105441414, -0.025878139, 0.12958129, 0.031952348],
    [-0.0098027075, 0.06042469, 0.025257962, -0.006364387, 0.07272725, 0.017194884, 0.09032035, -0.051705178, 0.09951512, 0.09072481]
  ],
  "total_duration": 14143917,
  "load_duration": 1019500,
  "prompt_eval_count": 8
}"#;

/// An NDJSON response whose body is split at the given byte offsets, one HTTP chunk each.
pub fn ndjson(body: &str, split_points: &[usize]) -> fazztv_testkit::ScriptedResponse {
    fazztv_testkit::ScriptedResponse::new(200)
        .header("content-type", "application/x-ndjson")
        .chunks(fazztv_testkit::split_at(body.as_bytes(), split_points))
}

/// A recorded request body as JSON.
pub fn json_body(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("request body is JSON")
}

/// Snapshots `value` with keys sorted, so the snapshot does not depend on map ordering.
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({sort_maps => true, prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!($name, $value);
        })
    };
}

/// An address on which nothing listens: bound, then released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

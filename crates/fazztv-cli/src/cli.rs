//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fazztv::ModelCapability;

use crate::scoring::ScoreSpec;

/// Many AI model providers behind one interface, with fallback.
#[derive(Debug, Parser)]
#[command(name = "fazztv", version)]
#[command(
    after_help = "Configuration is read from --config, else $FAZZTV_CONFIG, else \
    ./providers.json, else the built-in default.\nTry it offline: fazztv --config \
    examples/providers.offline.json query \"Explain quantum computing\""
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (else $FAZZTV_CONFIG, ./providers.json, the built-in default).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print one JSON document on stdout (JSON lines for `batch`).
    #[arg(long, global = true)]
    pub json: bool,

    /// Show routing decisions and every attempt on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Print usage statistics as JSON on stderr at the end.
    #[arg(long, global = true)]
    pub stats: bool,

    /// Retries of the same provider after a failure, before falling back (0: one try each;
    /// at most 5). Default: `retry.max_retries` in the configuration, else 2.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=5))]
    pub retries: Option<u32>,

    /// Give each request at most SECS seconds in all: every try, retry and wait, and a stream
    /// until its end. Default: `manager.deadline` in the configuration, else none.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_seconds)]
    pub deadline: Option<Duration>,

    /// Cache every answer for the rest of this run, whatever the request (by default only
    /// deterministic ones are: temperature 0 or a seed). The cache lives in the process: it
    /// serves repeated prompts within one `batch` or `chat`.
    #[arg(long, global = true, conflicts_with = "no_cache")]
    pub cache: bool,

    /// Neither look answers up in the cache nor store them.
    #[arg(long, global = true)]
    pub no_cache: bool,
}

/// A positive number of seconds (`30`, `0.5`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| {
            format!("expected a positive number of seconds (such as 30 or 0.5), got `{text}`")
        })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask one prompt, falling back over the configured providers.
    Query(QueryArgs),
    /// Answer a conversation from a file, or talk interactively.
    Chat(ChatArgs),
    /// Ask several providers the same prompt and show the answers side by side.
    Compare(CompareArgs),
    /// Show where a prompt would be sent and why, without sending it: how the model or route
    /// is read, every candidate, what each filter removed, and the final order.
    Route(RouteArgs),
    /// Answer one prompt per line of a file, in input order.
    Batch(BatchArgs),
    /// List the models the providers offer.
    Models(ModelsArgs),
    /// Show the cheapest model with a capability.
    Cheapest(CheapestArgs),
    /// Show every configured provider and whether it is available.
    Providers,
    /// Probe every enabled provider (models, tags or key: never a paid completion) and show
    /// its health; exit 1 when none is healthy.
    Health,
    /// Embed texts.
    Embed(EmbedArgs),
    /// Check whether a text is safe.
    Moderate(ModerateArgs),
    /// Manage the models of a local model server (Ollama).
    Ollama(OllamaArgs),
    /// Validate a configuration or print its schema.
    Config(ConfigArgs),
    /// Serve an OpenAI- and Anthropic-compatible API (chat completions, Anthropic messages,
    /// embeddings, moderations, models) over the configured providers, with the
    /// configuration's `gateway` keys; prints `listening on http://IP:PORT` on stderr once
    /// bound; on SIGHUP reloads the configuration (one that cannot be served is refused and
    /// the previous one stays); on SIGTERM or SIGINT stops accepting, lets requests in flight
    /// finish and exits 0.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0: any free port, printed once bound).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

/// Routing and generation flags shared by `query` and `chat`.
#[derive(Debug, Args)]
pub struct Generation {
    /// Try this provider first.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// The model: a route's name (`routes` in the configuration), PROVIDER/MODEL (that
    /// provider instance only, no fallback), or a model id (only the providers known to serve
    /// it: their configuration or model listing names it). `fazztv route --explain` shows how
    /// it is read.
    #[arg(long, value_name = "ID|ROUTE|PROVIDER/MODEL")]
    pub model: Option<String>,

    /// Send the request over this configured route (`routes` in the configuration).
    #[arg(long, value_name = "NAME", conflicts_with = "model")]
    pub route: Option<String>,

    #[command(flatten)]
    pub auto: AutoArgs,

    /// Try one provider only.
    #[arg(long)]
    pub no_fallback: bool,

    /// Sampling temperature.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,

    /// Upper bound on generated tokens.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,

    /// Print the whole answer at once, even on a terminal.
    #[arg(long, conflicts_with = "stream")]
    pub no_stream: bool,

    /// Print tokens as they arrive, even when stdout is not a terminal.
    #[arg(long)]
    pub stream: bool,
}

/// Automatic model selection, shared by `query`, `chat` and `route`.
#[derive(Debug, Args)]
pub struct AutoArgs {
    /// Choose the model automatically: the best-ranked model, among those the providers list or
    /// are configured with, that can do TASK (chat, code_generation, ...) and meets the
    /// constraints below.
    #[arg(long, value_name = "TASK", conflicts_with_all = ["model", "route"])]
    pub auto: Option<ModelCapability>,

    /// What to rank the qualifying models by.
    #[arg(
        long,
        value_name = "cheapest|fastest|best",
        requires = "auto",
        default_value = "cheapest"
    )]
    pub prefer: fazztv::Preference,

    /// Capabilities the model must also have, comma-separated, as in the configuration
    /// (tool_calling, vision, structured_output, reasoning).
    #[arg(long, value_name = "CAP,...", value_delimiter = ',', requires = "auto")]
    pub needs: Vec<ModelCapability>,

    /// The model's context window must be at least N tokens (an unknown one qualifies).
    #[arg(long, value_name = "N", requires = "auto")]
    pub min_context: Option<u64>,

    /// The model's input and output prices must each be at most USD per million tokens (an
    /// unknown price does not qualify).
    #[arg(long, value_name = "USD_PER_MTOK", value_parser = parse_usd, requires = "auto")]
    pub max_price: Option<f64>,

    /// Only models that cost nothing.
    #[arg(long, requires = "auto")]
    pub free_only: bool,

    /// Only models served locally (Ollama, vLLM, LM Studio, llama.cpp).
    #[arg(long, requires = "auto")]
    pub local_only: bool,
}

impl AutoArgs {
    /// The selection the flags ask for, if any.
    pub fn selection(&self) -> Option<fazztv::AutoSelect> {
        let mut auto = fazztv::AutoSelect::new(self.auto?)
            .prefer(self.prefer)
            .needs(self.needs.iter().copied());
        if let Some(tokens) = self.min_context {
            auto = auto.min_context(tokens);
        }
        if let Some(usd) = self.max_price {
            auto = auto.max_price_per_mtok(usd);
        }
        if self.free_only {
            auto = auto.free_only();
        }
        if self.local_only {
            auto = auto.local_only();
        }
        Some(auto)
    }
}

/// Tools, images and the shape of the answer, shared by `query` and `chat`.
#[derive(Debug, Args)]
pub struct ContentArgs {
    /// An image to send with the prompt (repeatable): a PNG, JPEG, GIF or WebP file, or an
    /// http(s) or data: URL that the provider fetches itself. `chat` attaches it to the last
    /// user message.
    #[arg(long, value_name = "PATH|URL")]
    pub image: Vec<PathBuf>,

    /// Tools the model may call: a JSON array in OpenAI's format, `{"type": "function",
    /// "function": {"name", "description", "parameters"}}`, or of bare `{"name", "description",
    /// "parameters"}` objects.
    #[arg(long, value_name = "FILE.json")]
    pub tools: Option<PathBuf>,

    /// Whether the model must call a tool: auto, none, required, or the name of one tool.
    #[arg(long, value_name = "auto|none|required|NAME", requires = "tools")]
    pub tool_choice: Option<String>,

    /// A JSON Schema the answer must follow: sent to the provider, and the answer is checked
    /// against it (exit 1 when it does not conform).
    #[arg(long, value_name = "FILE.json")]
    pub schema: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The prompt; `-` reads it from stdin.
    pub prompt: String,

    #[command(flatten)]
    pub generation: Generation,

    #[command(flatten)]
    pub content: ContentArgs,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// A JSON array of {"role", "content"} messages, also in OpenAI's format (content parts,
    /// tool calls, tool messages); `-` reads it from stdin. Without it, an interactive
    /// conversation (one user turn per line when stdin is not a terminal).
    #[arg(long, value_name = "FILE")]
    pub messages: Option<PathBuf>,

    /// A system message put before the conversation.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,

    /// A session id: every turn goes to the target that answered the last one while it is
    /// healthy, so the provider's prompt cache keeps hitting (within this run).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    #[command(flatten)]
    pub generation: Generation,

    #[command(flatten)]
    pub content: ContentArgs,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// The prompt (what it needs, such as tools or images, narrows the candidates).
    pub prompt: String,

    /// Explain the decision (what `route` always does; it never sends the prompt).
    #[arg(long)]
    pub explain: bool,

    #[command(flatten)]
    pub generation: Generation,

    #[command(flatten)]
    pub content: ContentArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The prompt.
    pub prompt: String,

    /// Providers to ask, comma-separated; `provider/model` asks that provider for that model.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',', required = true)]
    pub providers: Vec<String>,

    /// Score every answer and rank them best first: schema:FILE (JSON that follows the JSON
    /// Schema in FILE), regex:PATTERN, contains:TEXT, length:MIN..MAX (characters; either bound
    /// may be left out), or judge:PROVIDER[/MODEL] (that configured provider grades each answer
    /// from 0 to 10 against --rubric).
    #[arg(long, value_name = "SPEC", value_parser = ScoreSpec::parse)]
    pub score: Option<ScoreSpec>,

    /// What the judge grades against (with --score judge:... only). Default: correct,
    /// complete, clear, and an answer to what was asked.
    #[arg(long, value_name = "TEXT", requires = "score")]
    pub rubric: Option<String>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// File with one prompt per line; `-` reads stdin. Blank lines are skipped.
    pub file: PathBuf,

    /// A session id: every prompt goes to the target that answered the last one while it is
    /// healthy, so the provider's prompt cache keeps hitting.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Try this provider first.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// Prompts in flight at once (default: the configuration's `batch_concurrency`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,

    /// Spend at most this many US dollars: each prompt reserves what it may cost before it is
    /// sent, and once nothing more fits the rest are skipped (exit 1).
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub budget: Option<f64>,
}

/// A non-negative, finite amount of US dollars.
fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!(
            "`{text}` is not an amount of US dollars (e.g. 0.50)"
        )),
    }
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Only this provider's models.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// Only models with this capability (e.g. chat, embedding, code_generation).
    #[arg(long, value_name = "CAP")]
    pub capability: Option<ModelCapability>,

    /// Only models that cost nothing.
    #[arg(long)]
    pub free_only: bool,
}

#[derive(Debug, Args)]
pub struct CheapestArgs {
    /// The capability the model must have (e.g. chat, embedding, code_generation).
    #[arg(long, value_name = "CAP")]
    pub capability: ModelCapability,

    /// Only models that cost nothing.
    #[arg(long)]
    pub free_only: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The texts to embed; one vector each, in order.
    #[arg(required = true)]
    pub texts: Vec<String>,

    /// Try this provider first.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// The embedding model: a route's name, PROVIDER/MODEL, or a model id. Embeddings fall
    /// back only to targets of the same model (vectors of two models never mix), so without
    /// one only the first provider is tried.
    #[arg(long, value_name = "ID|ROUTE|PROVIDER/MODEL")]
    pub model: Option<String>,

    /// Embed over this configured route.
    #[arg(long, value_name = "NAME", conflicts_with = "model")]
    pub route: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModerateArgs {
    /// The text to check.
    pub text: String,

    /// Try this provider first.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
}

#[derive(Debug, Args)]
pub struct OllamaArgs {
    /// The provider to manage (default: the first configured one that manages local models).
    #[arg(long, global = true, value_name = "NAME")]
    pub provider: Option<String>,

    #[command(subcommand)]
    pub action: OllamaAction,
}

#[derive(Debug, Subcommand)]
pub enum OllamaAction {
    /// List the local models.
    List,
    /// Download a model.
    Pull {
        /// The model, e.g. llama3.2 or llama3.2:1b.
        model: String,
    },
    /// Remove a local model.
    Delete {
        /// The model.
        model: String,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Check a configuration file and list every problem with its JSON pointer.
    Validate {
        /// The file (default: the configuration fazztv would use).
        path: Option<PathBuf>,
    },
    /// Print the JSON schema of configuration files for this build's provider types.
    Schema,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

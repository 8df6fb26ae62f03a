//! Every example of the system description (the seed), in Rust.
//!
//! Names follow the seed in `snake_case`; keyword arguments become [`QueryOptions`] builders.
//! Examples that need a real provider are `no_run`; the others run against the offline mock
//! provider.
//!
//! # Automatic fallback
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fazztv::{QueryOptions, get_provider_manager};
//!
//! let manager = get_provider_manager()?;
//! let response = manager
//!     .query_with_fallback("Your prompt here", QueryOptions::new().preferred_provider("openrouter"))
//!     .await?;
//! println!("{response} (answered by {})", response.provider);
//! # Ok(()) }
//! ```
//!
//! # Load balancing
//! ```no_run
//! # fn demo(manager: fazztv::ProviderManager) {
//! manager.enable_load_balancing(true);
//! // Requests will be distributed across available providers, by weight.
//! # }
//! ```
//!
//! # Capability-based selection
//! ```no_run
//! # async fn demo(manager: fazztv::ProviderManager) {
//! use fazztv::ModelCapability;
//!
//! // Find providers that support code generation
//! let provider = manager.find_best_provider(ModelCapability::CodeGeneration).await;
//! # }
//! ```
//!
//! # Cost optimization
//! ```no_run
//! # async fn demo(manager: fazztv::ProviderManager) {
//! use fazztv::ModelCapability;
//!
//! // Get the cheapest model for text generation
//! let registry = manager.registry();
//! let cheapest_model = registry.get_cheapest_model(ModelCapability::TextGeneration, true).await;
//! # }
//! ```
//!
//! # Configuration
//! The seed's `providers.json` loads verbatim. [`get_provider_manager`] reads the file named by
//! `$FAZZTV_CONFIG`, else `./providers.json`, else a built-in default equal to the seed's
//! example; keys come from `OPENROUTER_API_KEY`, `OPENAI_API_KEY` (or each provider's
//! `api_key_env`), and Ollama's address from `OLLAMA_URL`. A file can also be loaded explicitly:
//! ```no_run
//! # fn demo() -> Result<(), fazztv::ConfigError> {
//! use fazztv::{ConfigLoader, ProviderManager};
//!
//! let manager = ProviderManager::load(&ConfigLoader::new().path("providers.json"))?;
//! # Ok(()) }
//! ```
//!
//! # Basic usage
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fazztv::{FazztvConfig, ProviderConfig, ProviderManager, QueryOptions, Registry};
//!
//! // An offline manager: one mock provider (with real providers, use get_provider_manager()).
//! let config = FazztvConfig::new([ProviderConfig::new("mock")]);
//! let manager = ProviderManager::from_config(Registry::discover()?, config)?;
//!
//! // Simple query with automatic provider selection
//! let response = manager.query_with_fallback("Explain quantum computing", QueryOptions::new()).await?;
//! println!("{response}");
//! assert_eq!(response.content, "Mock response to: Explain quantum computing");
//! # Ok(()) }
//! ```
//!
//! # Chat conversations
//! ```no_run
//! # async fn demo(manager: fazztv::ProviderManager) -> fazztv::Result<()> {
//! use fazztv::{ChatMessage, QueryOptions};
//!
//! let messages = vec![
//!     ChatMessage::system("You are a helpful assistant"),
//!     ChatMessage::user("What is the capital of France?"),
//! ];
//! let response = manager.chat_with_fallback(messages, QueryOptions::new()).await?;
//! println!("{response}");
//! # Ok(()) }
//! ```
//!
//! # Comparing provider responses
//! ```no_run
//! # async fn demo(manager: fazztv::ProviderManager) {
//! let responses = manager
//!     .compare_responses(
//!         "What are the benefits of renewable energy?",
//!         &["openrouter", "openai", "ollama"],
//!         fazztv::QueryOptions::new(),
//!     )
//!     .await;
//! for (provider, response) in &responses {
//!     match response {
//!         Ok(response) => println!("{provider}: {}...", response.content.chars().take(100).collect::<String>()),
//!         Err(error) => println!("{provider}: failed: {error}"),
//!     }
//! }
//! # }
//! ```
//!
//! # Batch processing
//! ```no_run
//! # async fn demo(manager: fazztv::ProviderManager) {
//! use fazztv::QueryOptions;
//!
//! let prompts = [
//!     "Translate 'Hello' to Spanish",
//!     "Translate 'Goodbye' to French",
//!     "Translate 'Thank you' to German",
//! ];
//! let responses = manager.batch_query(&prompts, QueryOptions::new().preferred_provider("openai")).await;
//! for (prompt, response) in prompts.iter().zip(&responses) {
//!     match response {
//!         Ok(response) => println!("{prompt}: {response}"),
//!         Err(error) => println!("{prompt}: failed: {error}"),
//!     }
//! }
//! # }
//! ```
//!
//! # OpenAI embeddings
//! ```no_run
//! # #[cfg(feature = "openai")]
//! # async fn demo() -> fazztv::Result<()> {
//! use fazztv::{OpenAiProvider, Provider, ProviderConfig};
//!
//! let config = ProviderConfig::new("openai").with_api_key("your_key");
//! let provider = OpenAiProvider::new(config)?;
//!
//! let embeddings = provider.get_embeddings("Sample text for embedding".into()).await?;
//! # Ok(()) }
//! ```
//!
//! # OpenAI content moderation
//! ```no_run
//! # async fn demo(provider: &dyn fazztv::Provider) -> fazztv::Result<()> {
//! let result = provider.moderate_content("Content to check for safety").await?;
//! println!("Safe: {}", result.safe);
//! println!("Concerns: {:?}", result.concerns);
//! println!("Rating: {}", result.rating);
//! # Ok(()) }
//! ```
//!
//! # Ollama model management
//! ```no_run
//! # #[cfg(feature = "ollama")]
//! # async fn demo() -> fazztv::Result<()> {
//! use fazztv::{ModelManager, OllamaProvider, Provider, ProviderConfig, StreamExt};
//!
//! let config = ProviderConfig::new("ollama");
//! let provider = OllamaProvider::new(config)?;
//!
//! // Pull a new model
//! let mut progress = provider.pull_model("codellama").await?;
//! while let Some(update) = progress.next().await {
//!     let update = update?;
//!     println!("{} {:?}/{:?}", update.status, update.completed, update.total);
//! }
//!
//! // List available models
//! for model in provider.list_models().await? {
//!     println!("{}: {}", model.name, model.description.unwrap_or_default());
//! }
//!
//! // Delete a model
//! provider.delete_model("llama2").await?;
//! # Ok(()) }
//! ```
//!
//! # Custom provider implementation
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use fazztv::{
//!     Availability, ChatRequest, ChatResponse, ModelCapability, ModelInfo, Provider,
//!     ProviderConfig, Registry, async_trait,
//! };
//!
//! #[derive(Debug)]
//! struct CustomProvider;
//!
//! #[async_trait]
//! impl Provider for CustomProvider {
//!     fn name(&self) -> &str {
//!         "custom"
//!     }
//!
//!     async fn chat(&self, request: ChatRequest) -> fazztv::Result<ChatResponse> {
//!         // Implement your custom query logic
//!         let prompt = request.messages.last().map(|m| m.text()).unwrap_or_default();
//!         Ok(ChatResponse::new(format!("Custom response to: {prompt}"), "custom-model", "custom"))
//!     }
//!
//!     async fn list_models(&self) -> fazztv::Result<Vec<ModelInfo>> {
//!         Ok(vec![ModelInfo::new("custom-model", "custom")
//!             .with_name("Custom Model")
//!             .with_capabilities([ModelCapability::TextGeneration])])
//!     }
//!
//!     async fn check_availability(&self) -> Availability {
//!         // Check if your provider is available
//!         Availability::Available
//!     }
//! }
//!
//! // Register and use custom provider
//! let mut registry = Registry::empty();
//! let config = ProviderConfig::new("custom");
//! registry.add_provider(config, Arc::new(CustomProvider))?;
//! let answer = registry.get_provider("custom").unwrap().query("hi", Default::default()).await?;
//! assert_eq!(answer.content, "Custom response to: hi");
//! # Ok(()) }
//! ```
//! A provider can also live in its own crate and register itself with
//! [`register_provider!`](crate::register_provider); see `examples/custom-provider`.
//!
//! # Error handling
//! ```no_run
//! # async fn demo(manager: fazztv::ProviderManager) -> fazztv::Result<()> {
//! use fazztv::QueryOptions;
//!
//! // Automatic fallback on failure
//! let response = manager
//!     .query_with_fallback("Your prompt", QueryOptions::new().preferred_provider("openrouter"))
//!     .await?;
//!
//! // Check provider availability
//! match manager.get_provider("openai") {
//!     Some(provider) if provider.check_availability().await.is_available() => {
//!         let response = provider.query("Your prompt", Default::default()).await?;
//!     }
//!     _ => println!("Provider not available"),
//! }
//!
//! // Usage statistics for monitoring
//! let stats = manager.get_usage_stats();
//! println!("Total requests: {}", stats.total_requests);
//! println!("Request distribution: {:?}", stats.request_counts);
//! # Ok(()) }
//! ```
//!
//! # Timeout configuration
//! ```
//! use std::time::Duration;
//! use fazztv::ProviderConfig;
//!
//! let config = ProviderConfig::new("provider").with_timeout(Duration::from_secs(60));
//! ```
//!
//! # Migration: from a single-provider client
//! ```no_run
//! use fazztv::{ProviderManager, QueryOptions, get_provider_manager};
//!
//! struct OpenRouterClient {
//!     manager: ProviderManager,
//! }
//!
//! impl OpenRouterClient {
//!     fn new() -> Result<Self, fazztv::ConfigError> {
//!         Ok(Self { manager: get_provider_manager()? })
//!     }
//!
//!     async fn query(&self, prompt: &str, options: QueryOptions) -> fazztv::Result<String> {
//!         let response = self
//!             .manager
//!             .query_with_fallback(prompt, options.preferred_provider("openrouter"))
//!             .await?;
//!         Ok(response.content)
//!     }
//! }
//! ```
#[cfg(doc)]
use crate::{QueryOptions, get_provider_manager};

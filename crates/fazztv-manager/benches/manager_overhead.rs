//! What the manager adds to a request: `query_with_fallback` through the manager versus calling
//! the same zero-latency mock provider directly. The provider's own work is identical in both,
//! so the difference is the manager's routing and bookkeeping.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use fazztv_core::{GenerationOptions, Provider, ProviderConfig};
use fazztv_manager::{ManagerSettings, ProviderManager, QueryOptions, Registry};
use fazztv_provider_mock::{MockOptions, MockProvider};
use {
    fazztv_testkit as _, futures as _, insta as _, jsonschema as _, moka as _, proptest as _,
    regex as _, schemars as _, serde as _, serde_json as _, sha2 as _, thiserror as _,
    tracing as _,
};

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = ProviderConfig::new("mock").with_type("mock");
    let provider: Arc<dyn Provider> =
        Arc::new(MockProvider::new(config.clone(), MockOptions::default()));
    let mut registry = Registry::empty();
    registry
        .add_provider(config, provider.clone())
        .expect("one provider");
    let manager = ProviderManager::new(registry, ManagerSettings::default());

    let mut group = c.benchmark_group("query");
    group.bench_function("direct provider", |b| {
        b.to_async(&runtime).iter(|| async {
            provider
                .query("Explain quantum computing", GenerationOptions::default())
                .await
                .expect("mock answers")
        })
    });
    group.bench_function("manager query_with_fallback", |b| {
        b.to_async(&runtime).iter(|| async {
            manager
                .query_with_fallback("Explain quantum computing", QueryOptions::new())
                .await
                .expect("mock answers")
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);

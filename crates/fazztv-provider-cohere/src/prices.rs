//! Cohere's list prices and model facts, shipped as the data file `prices.json`.

use std::sync::LazyLock;

use fazztv_core::PriceTable;

/// Parsed once, on first use; `the_shipped_table_parses_and_is_dated` makes sure it does.
static TABLE: LazyLock<PriceTable> =
    LazyLock::new(|| PriceTable::shipped(include_str!("../prices.json")));

/// Cohere's list prices (input and output per million tokens; embeddings charge input only)
/// and model facts, taken from [`PriceTable::source`] on [`PriceTable::as_of`], by the exact
/// ids the API takes (`command-a-03-2025`).
pub fn price_table() -> &'static PriceTable {
    &TABLE
}

#[cfg(test)]
mod tests {
    use fazztv_core::{ModelPricing, PriceSource};

    use super::*;
    use crate::wire::WireModel;

    #[test]
    fn the_shipped_table_parses_and_is_dated() {
        let table = price_table();
        assert_eq!(&*table.as_of, "2025-11-24");
        assert_eq!(table.source, "https://cohere.com/pricing");
        let price = table.price("command-r7b-12-2024").expect("listed");
        assert_eq!(price.pricing, ModelPricing::per_million(0.0375, 0.15));
        assert_eq!(
            price.source,
            PriceSource::Table {
                as_of: "2025-11-24".into()
            }
        );
        let context = |id: &str| table.lookup(id)?.context_length;
        assert_eq!(context("command-a-03-2025"), Some(256_000));
        assert_eq!(context("embed-english-v3.0"), Some(512));
        assert_eq!(table.price("command-r"), None, "aliases are not priced");
    }

    /// The table describes its models as a listing of them (with no `features`) would.
    #[test]
    fn the_table_agrees_with_the_listing_rules() {
        for model in &price_table().models {
            let endpoint = if model.id.starts_with("embed") {
                "embed"
            } else {
                "chat"
            };
            let listed: WireModel = serde_json::from_value(serde_json::json!({
                "name": model.id, "endpoints": [endpoint]
            }))
            .unwrap();
            assert_eq!(model.capabilities, listed.capabilities(), "{}", model.id);
        }
    }
}

//! Anthropic's list prices and model facts, shipped as the data file `prices.json`.

use std::sync::LazyLock;

use fazztv_core::{ListedPrice, PriceTable, TableModel};

/// Parsed once, on first use; `the_shipped_table_parses_and_is_dated` makes sure it does.
static TABLE: LazyLock<PriceTable> =
    LazyLock::new(|| PriceTable::shipped(include_str!("../prices.json")));

/// Anthropic's list prices (input, output, cache reads, 5-minute and 1-hour cache writes) and
/// model facts, taken from [`PriceTable::source`] on [`PriceTable::as_of`]. Listed by alias
/// (`claude-sonnet-4-5`); the provider also finds the alias of a dated id
/// (`claude-sonnet-4-5-20250929`), which [`PriceTable::lookup`] alone does not.
pub fn price_table() -> &'static PriceTable {
    &TABLE
}

/// The table's entry for `model_id`: its own, else its alias's when it is a dated snapshot
/// (`-YYYYMMDD`, as `GET /v1/models` lists them). Anthropic names the alias of a snapshot by
/// its family (`claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`), with `-0` for a first
/// version (`claude-sonnet-4-20250514` -> `claude-sonnet-4-0`) or `-latest` for the Claude 3
/// families (`claude-3-7-sonnet-20250219` -> `claude-3-7-sonnet-latest`).
pub(crate) fn table_model(model_id: &str) -> Option<&'static TableModel> {
    let models = &TABLE.models;
    if let Some(model) = models.iter().find(|model| model.id == model_id) {
        return Some(model);
    }
    let family = strip_snapshot_date(model_id)?;
    models.iter().find(|model| {
        model
            .id
            .strip_prefix(family)
            .is_some_and(|alias| matches!(alias, "" | "-0" | "-latest"))
    })
}

/// The list price of `model_id`, marked as coming from the table.
pub(crate) fn list_price(model_id: &str) -> Option<ListedPrice> {
    TABLE.price(&table_model(model_id)?.id)
}

/// `claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`; `None` without a `-YYYYMMDD` suffix.
fn strip_snapshot_date(id: &str) -> Option<&str> {
    let (family, date) = id.split_at_checked(id.len().checked_sub(9)?)?;
    let digits = date.strip_prefix('-')?;
    digits
        .bytes()
        .all(|byte| byte.is_ascii_digit())
        .then_some(family)
}

#[cfg(test)]
mod tests {
    use fazztv_core::{ModelPricing, PriceSource};

    use super::*;
    use crate::default_capabilities;

    #[test]
    fn the_shipped_table_parses_and_is_dated() {
        let table = price_table();
        assert_eq!(&*table.as_of, "2025-11-24");
        assert_eq!(table.source, "https://www.anthropic.com/pricing#api");
        assert_eq!(table.models.len(), 9);
    }

    #[test]
    fn dated_ids_find_their_alias() {
        let alias = |id: &str| table_model(id).map(|model| model.id.as_str());
        for (id, expected) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("claude-opus-4-5-20251101", "claude-opus-4-5"),
            ("claude-opus-4-1-20250805", "claude-opus-4-1"),
            ("claude-opus-4-20250514", "claude-opus-4-0"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4-0"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
            ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"),
            ("claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
            ("claude-3-haiku-20240307", "claude-3-haiku-20240307"),
        ] {
            assert_eq!(alias(id), Some(expected), "{id}");
        }
        // Retired or unknown models, and ids that only look dated, have no price.
        for id in [
            "claude-3-5-sonnet-20241022",
            "claude-3-opus-20240229",
            "claude-sonnet-4-5-2025092",
            "claude-sonnet-4-5-2025-09-29",
            "20250929",
            "claude-sonnet",
        ] {
            assert_eq!(alias(id), None, "{id}");
        }
    }

    #[test]
    fn prices_carry_both_cache_writes_and_the_table_date() {
        let price = list_price("claude-sonnet-4-5-20250929").expect("priced");
        assert_eq!(
            price.source,
            PriceSource::Table {
                as_of: "2025-11-24".into()
            }
        );
        let per_mtok = |usd: f64| usd / 1_000_000.0;
        assert_eq!(
            price.pricing,
            ModelPricing::per_million(3.0, 15.0)
                .with_cached_prompt(per_mtok(0.30))
                .with_cache_write(per_mtok(3.75), Some(per_mtok(6.0)))
        );
        let haiku = list_price("claude-3-haiku-20240307").expect("priced");
        assert_eq!(haiku.pricing.cache_write_1h, Some(per_mtok(0.50)));
        assert_eq!(
            table_model("claude-3-5-haiku-20241022").and_then(|model| model.max_output_tokens),
            Some(8192)
        );
    }

    /// The table is the source for the models it lists; the family rules serve the others.
    /// Both describe the same families, so they agree.
    #[test]
    fn the_table_agrees_with_the_family_rules() {
        for model in &price_table().models {
            assert_eq!(
                model.capabilities,
                default_capabilities(&model.id),
                "{}",
                model.id
            );
        }
    }
}

//! Content moderation, in the seed's `{safe, concerns, rating}` shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The verdict on a piece of content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModerationResult {
    /// `true` when the provider flagged nothing.
    pub safe: bool,
    /// Names of the flagged categories (`harassment`, `violence/graphic`, …), sorted.
    pub concerns: Vec<String>,
    /// How unsafe the content is, from 0.0 (clearly safe) to 1.0: the highest category score
    /// the provider reported. Providers document how they derive it.
    pub rating: f64,
    /// Every category score the provider reported.
    pub category_scores: BTreeMap<String, f64>,
    /// The model that judged.
    pub model: Option<String>,
    /// The provider instance that judged, filled in by the manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Every provider tried, filled in by the manager (empty for a direct call).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<crate::Attempt>,
}

impl ModerationResult {
    /// Builds the verdict from the flagged categories and the scores: `safe` when nothing is
    /// flagged, `rating` the highest score (0.0 when there are none).
    pub fn from_scores(
        flagged: bool,
        concerns: impl IntoIterator<Item = String>,
        category_scores: BTreeMap<String, f64>,
    ) -> Self {
        let mut concerns: Vec<String> = concerns.into_iter().collect();
        concerns.sort();
        concerns.dedup();
        let rating = category_scores.values().copied().fold(0.0_f64, f64::max);
        Self {
            safe: !flagged && concerns.is_empty(),
            concerns,
            rating,
            category_scores,
            model: None,
            provider: None,
            attempts: Vec::new(),
        }
    }

    /// Sets the model.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

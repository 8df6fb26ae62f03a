//! `-v`: the engine's routing decisions and health changes — its `tracing` events under
//! [`fazztv::ROUTE_TARGET`] — printed as verbose lines on stderr.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::ui::Ui;

/// Prints routing events as `route:` and `health:` lines for as long as the process runs.
pub fn install(ui: Ui) {
    // Fails only when a subscriber is already set, which this binary never does elsewhere.
    let _ = tracing::subscriber::set_global_default(RouteLines { ui });
}

struct RouteLines {
    ui: Ui,
}

/// An event's message and fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, String)>,
}

impl Fields {
    fn get(&self, name: &str) -> &str {
        self.rest
            .iter()
            .find(|(field, _)| *field == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.rest.push((field.name(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.rest.push((field.name(), text));
        }
    }
}

impl Subscriber for RouteLines {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == fazztv::ROUTE_TARGET && !metadata.is_span()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Never called: no span is enabled.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = match fields.message.as_str() {
            // The explanation is several lines; each is shown as a `route:` line.
            "route" => fields
                .get("explanation")
                .lines()
                .map(|line| format!("route: {line}"))
                .collect::<Vec<_>>()
                .join("\n"),
            "provider ejected" => format!(
                "health: {} ejected for {:.1} s after {}",
                fields.get("provider"),
                fields.get("ejected_ms").parse::<f64>().unwrap_or(0.0) / 1e3,
                fields.get("kind")
            ),
            "cache hit" if fields.get("shared") == "true" => format!(
                "cache: {} answered an identical request in flight; its answer is shared",
                fields.get("provider")
            ),
            "cache hit" => format!(
                "cache: answered from the cache ({}'s earlier answer)",
                fields.get("provider")
            ),
            message => format!("health: {}: {message}", fields.get("provider")),
        };
        self.ui.verbose(&line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

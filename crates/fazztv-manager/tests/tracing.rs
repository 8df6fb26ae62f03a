//! The engine's `tracing` spans, in a test binary of their own: a subscriber set for one test
//! sees every callsite only when no other test thread is registering the same callsites.

mod common;

use std::sync::Arc;

use common::{Scripted, Step, config, manager, retrying};
use fazztv_core::ErrorKind;
use fazztv_manager::QueryOptions;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, futures as _, insta as _,
    jsonschema as _, moka as _, proptest as _, regex as _, schemars as _, serde as _,
    serde_json as _, sha2 as _, thiserror as _,
};

/// A `tracing` subscriber that keeps every span (name, fields, parent) and, for every event,
/// the span it happened in.
mod traced {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Debug, Clone)]
    pub struct Span {
        pub name: &'static str,
        pub fields: Vec<String>,
        pub parent: Option<u64>,
    }

    #[derive(Default)]
    pub struct Log {
        pub spans: Vec<Span>,
        /// (message fields, the span it was in)
        pub events: Vec<(String, Option<u64>)>,
        current: Vec<u64>,
    }

    #[derive(Clone, Default)]
    pub struct Recorder(pub Arc<Mutex<Log>>);

    struct Fields(Vec<String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push(format!("{}={value:?}", field.name()));
        }
    }

    impl Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attributes: &Attributes<'_>) -> Id {
            let mut fields = Fields(Vec::new());
            attributes.record(&mut fields);
            let mut log = self.0.lock().unwrap();
            let parent = attributes
                .parent()
                .map(Id::into_u64)
                .or_else(|| log.current.last().copied());
            log.spans.push(Span {
                name: attributes.metadata().name(),
                fields: fields.0,
                parent,
            });
            Id::from_u64(log.spans.len() as u64)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            let mut log = self.0.lock().unwrap();
            let within = log.current.last().copied();
            log.events.push((fields.0.join(" "), within));
        }
        fn enter(&self, span: &Id) {
            self.0.lock().unwrap().current.push(span.into_u64());
        }
        fn exit(&self, _: &Id) {
            self.0.lock().unwrap().current.pop();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_request_and_each_try_is_a_span_with_gen_ai_attributes() {
    let recorder = traced::Recorder::default();
    let _default = tracing::subscriber::set_default(recorder.clone());
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let m = manager(&[(&a, config("a"))], retrying(1));
    m.query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    let log = recorder.0.lock().unwrap();
    let request = log
        .spans
        .iter()
        .position(|span| span.name == "fazztv.request")
        .expect("a request span");
    assert!(
        log.spans[request]
            .fields
            .contains(&"gen_ai.operation.name=\"chat\"".to_owned()),
        "{:?}",
        log.spans[request]
    );
    let attempts: Vec<(usize, &traced::Span)> = log
        .spans
        .iter()
        .enumerate()
        .filter(|(_, span)| span.name == "fazztv.attempt")
        .collect();
    assert_eq!(attempts.len(), 2, "one span per try: {:?}", log.spans);
    for (retry, (_, span)) in attempts.iter().enumerate() {
        assert_eq!(span.parent, Some(request as u64 + 1), "{span:?}");
        for field in [
            "gen_ai.system=\"scripted\"".to_owned(),
            "fazztv.provider=\"a\"".to_owned(),
            format!("fazztv.retries={retry}"),
        ] {
            assert!(span.fields.contains(&field), "{field} in {span:?}");
        }
    }
    // Each try's attempt event happens inside that try's span.
    let attempt_events: Vec<Option<u64>> = log
        .events
        .iter()
        .filter(|(fields, _)| fields.starts_with("message=attempt"))
        .map(|(_, within)| *within)
        .collect();
    let spans: Vec<Option<u64>> = attempts
        .iter()
        .map(|(index, _)| Some(*index as u64 + 1))
        .collect();
    assert_eq!(attempt_events, spans);
}

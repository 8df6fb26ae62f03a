//! Where configuration reads environment variables from: the process, or a fixed map (tests,
//! embedding applications), so that nothing has to mutate the process environment.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A source of environment variables.
#[derive(Clone, Default)]
pub struct Environment {
    /// `None` reads the process environment.
    fixed: Option<Arc<BTreeMap<String, String>>>,
}

impl Environment {
    /// The process environment.
    pub fn process() -> Self {
        Self::default()
    }

    /// Only the given variables.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            fixed: Some(Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            )),
        }
    }

    /// The value of `name`; an empty value counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        let value = match &self.fixed {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|value| !value.trim().is_empty())
    }
}

impl fmt::Debug for Environment {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fixed {
            None => f.write_str("Environment(process)"),
            Some(vars) => f
                .debug_tuple("Environment")
                .field(&vars.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

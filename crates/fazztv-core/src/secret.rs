//! Keeping secrets out of text: masking a key wherever it is quoted, also across the chunks
//! of a stream, and telling a variable name from a key pasted in its place.

use std::borrow::Cow;

/// Secrets shorter than this are placeholders (`"x"`, `"ollama"` for keyless local servers),
/// not keys; masking them would mangle ordinary words.
pub const MIN_SECRET_LEN: usize = 8;

/// What a masked secret is shown as.
pub const REDACTED: &str = "[REDACTED]";

/// `text` with every occurrence of each secret (of at least [`MIN_SECRET_LEN`] bytes)
/// replaced by [`REDACTED`]; borrowed when there is nothing to mask.
pub fn mask<'a, S: AsRef<str>>(text: &'a str, secrets: &[S]) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.len() >= MIN_SECRET_LEN && text.contains(secret) {
            text = Cow::Owned(text.replace(secret, REDACTED));
        }
    }
    text
}

/// [`mask`] in place.
pub fn mask_in_place(text: &mut String, secret: &str) {
    if let Cow::Owned(masked) = mask(text, &[secret]) {
        *text = masked;
    }
}

/// Masks secrets in text that arrives in pieces (streamed tokens), where a key may be split
/// across two pieces: the tail of each piece that could be the start of a secret is held back
/// until the next piece (or [`finish`](Self::finish)) shows whether it is.
#[derive(Debug, Clone, Default)]
pub struct StreamMasker {
    secrets: Vec<String>,
    held: String,
}

impl StreamMasker {
    /// A masker for `secrets` (those shorter than [`MIN_SECRET_LEN`] are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Self {
            secrets: secrets
                .into_iter()
                .filter(|secret| secret.len() >= MIN_SECRET_LEN)
                .collect(),
            held: String::new(),
        }
    }

    /// Takes the next piece; returns what can be shown now, masked.
    pub fn push(&mut self, piece: &str) -> String {
        if self.secrets.is_empty() {
            return piece.to_owned();
        }
        self.held.push_str(piece);
        let masked = mask(&self.held, &self.secrets).into_owned();
        let keep = self.partial_secret_suffix(&masked);
        let shown = masked[..masked.len() - keep].to_owned();
        self.held = masked[masked.len() - keep..].to_owned();
        shown
    }

    /// The end of the input: whatever was held back (it was not a secret).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The length of the longest suffix of `text` that is a proper prefix of a secret.
    fn partial_secret_suffix(&self, text: &str) -> usize {
        let longest = self.secrets.iter().map(String::len).max().unwrap_or(0);
        (1..longest.min(text.len() + 1))
            .rev()
            .filter(|&length| text.is_char_boundary(text.len() - length))
            .find(|&length| {
                let suffix = &text[text.len() - length..];
                self.secrets
                    .iter()
                    .any(|secret| secret.len() > length && secret.starts_with(suffix))
            })
            .unwrap_or(0)
    }
}

/// Whether `name` can be an environment variable's name rather than a key pasted into
/// `api_key_env` by mistake: letters, digits and `_`, not starting with a digit, and not the
/// shape of a key (a known key prefix, or a long run that mixes lower case and digits, which
/// variable names by convention never do).
pub fn is_env_var_name(name: &str) -> bool {
    let well_formed = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let key_prefix = ["sk_", "hf_", "gsk_", "xai_", "pk_", "rk_"]
        .iter()
        .any(|prefix| name.starts_with(prefix));
    let key_shaped = name.len() >= 20
        && name.chars().any(|c| c.is_ascii_lowercase())
        && name.chars().any(|c| c.is_ascii_digit());
    well_formed && !key_prefix && !key_shaped && name.len() <= 128
}

/// A serde error's message without the values it quotes (`invalid type: string "sk-…"`,
/// `unknown variant `sk-…``): serde renders them right after these words, so each is replaced
/// by its length.
pub fn serde_error_without_values(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let message = replace_quoted(&message, "string \"", '"');
    replace_quoted(&message, "unknown variant `", '`')
}

/// `text` with what follows each `opening` up to `close` replaced by its length.
fn replace_quoted(text: &str, opening: &str, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(opening) {
        let after = &rest[start + opening.len()..];
        let Some(end) = after.find(close) else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&format!(
            "{}of {} characters",
            &opening[..opening.len() - 1],
            after[..end].chars().count()
        ));
        rest = &after[end + close.len_utf8()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-SENTINEL-0123456789";

    #[test]
    fn mask_replaces_every_secret_and_ignores_placeholders() {
        assert_eq!(
            mask(&format!("a {KEY} b {KEY}"), &[KEY]),
            "a [REDACTED] b [REDACTED]"
        );
        assert_eq!(mask("an ollama key", &["ollama"]), "an ollama key");
    }

    #[test]
    fn a_key_split_across_streamed_pieces_is_still_masked() {
        let text = format!("before {KEY} after");
        // Every split point, including inside the key and at its edges.
        for split in 0..=text.len() {
            let mut masker = StreamMasker::new([KEY.to_owned()]);
            let mut shown = masker.push(&text[..split]);
            shown.push_str(&masker.push(&text[split..]));
            shown.push_str(&masker.finish());
            assert_eq!(shown, "before [REDACTED] after", "split at {split}");
        }
        // One character at a time.
        let mut masker = StreamMasker::new([KEY.to_owned()]);
        let mut shown = String::new();
        for c in text.chars() {
            let piece = masker.push(&c.to_string());
            assert!(!piece.contains("SENTINEL"), "{piece}");
            shown.push_str(&piece);
        }
        shown.push_str(&masker.finish());
        assert_eq!(shown, "before [REDACTED] after");
    }

    #[test]
    fn text_that_only_starts_like_a_key_is_released_in_the_end() {
        let mut masker = StreamMasker::new([KEY.to_owned()]);
        assert_eq!(masker.push("Grüße sk-SENT"), "Grüße ");
        assert_eq!(masker.push("IMENTAL"), "sk-SENTIMENTAL");
        assert_eq!(masker.push(" sk"), " ");
        assert_eq!(masker.finish(), "sk");
    }

    #[test]
    fn keys_pasted_as_variable_names_are_told_apart() {
        for name in [
            "OPENAI_API_KEY",
            "OPENROUTER_API_KEY",
            "my_key",
            "_X1",
            "HF_TOKEN",
        ] {
            assert!(is_env_var_name(name), "{name}");
        }
        for key in [
            KEY,
            "sk-proj-abc",
            "hf_abcdefghijklmnopqrstuvwxyz0123",
            "a1b2c3d4e5f6g7h8i9j0k1l2",
            "1ABC",
            "",
            "with space",
        ] {
            assert!(!is_env_var_name(key), "{key}");
        }
    }
}

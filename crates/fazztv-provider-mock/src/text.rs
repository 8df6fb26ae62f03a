//! Text helpers: the reply template, stream chunking, word counts and blocklist matching.

/// The values a reply template can refer to.
#[derive(Debug)]
pub(crate) struct TemplateVars<'a> {
    /// `{prompt}`: the last user message.
    pub(crate) prompt: &'a str,
    /// `{model}`: the model answering.
    pub(crate) model: &'a str,
    /// `{provider}`: the instance name.
    pub(crate) provider: &'a str,
    /// `{call}`: the 1-based call number.
    pub(crate) call: u64,
    /// `{tool_result}`: the content of the last tool result (empty when there is none).
    pub(crate) tool_result: &'a str,
    /// `{images}`: what the last user message's images are (`1 image: image/png, 4 bytes`).
    pub(crate) images: &'a str,
}

/// Substitutes `{prompt}`, `{model}`, `{provider}`, `{call}`, `{tool_result}` and `{images}` in
/// one left-to-right pass, so
/// placeholders inside substituted text (a prompt containing `{model}`) stay as they are. Any
/// other `{…}` is kept verbatim, so replies may contain JSON.
pub(crate) fn render(template: &str, vars: &TemplateVars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + vars.prompt.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let substitution = [
            ("prompt}", vars.prompt),
            ("model}", vars.model),
            ("provider}", vars.provider),
            ("tool_result}", vars.tool_result),
            ("images}", vars.images),
        ]
        .into_iter()
        .find(|(name, _)| after.starts_with(name));
        if let Some((name, value)) = substitution {
            out.push_str(value);
            rest = &after[name.len()..];
        } else if let Some(tail) = after.strip_prefix("call}") {
            out.push_str(&vars.call.to_string());
            rest = tail;
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Splits `text` into pieces of `chars` characters (the last may be shorter); never splits a
/// character. Empty text has no pieces.
pub(crate) fn chunks(text: &str, chars: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for character in text.chars() {
        current.push(character);
        count += 1;
        if count == chars {
            pieces.push(std::mem::take(&mut current));
            count = 0;
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Whitespace-separated words: the mock's token count.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Whether `term` occurs in `text` as a whole word or phrase, ignoring case: not preceded or
/// followed by a letter or digit (`attack` matches "Attack!" but not "counterattacks").
pub(crate) fn contains_term(text: &str, term: &str) -> bool {
    let term = term.trim().to_lowercase();
    if term.is_empty() {
        return false;
    }
    let text = text.to_lowercase();
    text.match_indices(&term).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + term.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: TemplateVars<'static> = TemplateVars {
        prompt: "say {model}",
        model: "mock-1",
        provider: "demo",
        call: 7,
        tool_result: "{\"temp\": 21}",
        images: "1 image: image/png, 4 bytes",
    };

    #[test]
    fn renders_every_placeholder_once() {
        assert_eq!(
            render("{provider}/{model} #{call}: {prompt}", &VARS),
            "demo/mock-1 #7: say {model}"
        );
        assert_eq!(render("{prompt}{prompt}", &VARS), "say {model}say {model}");
        assert_eq!(
            render("{tool_result} / {images}", &VARS),
            "{\"temp\": 21} / 1 image: image/png, 4 bytes"
        );
    }

    #[test]
    fn keeps_unknown_placeholders_and_stray_braces() {
        assert_eq!(
            render("{\"a\": 1} {unknown} {prompt", &VARS),
            "{\"a\": 1} {unknown} {prompt"
        );
        assert_eq!(render("{{call}}", &VARS), "{7}");
        assert_eq!(render("", &VARS), "");
    }

    #[test]
    fn chunks_by_characters_not_bytes() {
        assert_eq!(chunks("héllo wörld", 4), ["héll", "o wö", "rld"]);
        assert_eq!(chunks("日本語の", 2), ["日本", "語の"]);
        assert_eq!(chunks("🦀", 1), ["🦀"]);
        assert!(chunks("", 3).is_empty());
    }

    #[test]
    fn counts_words() {
        assert_eq!(words("  one two\nthree\t"), 3);
        assert_eq!(words(""), 0);
    }

    #[test]
    fn matches_whole_terms_only() {
        assert!(contains_term("Plan the ATTACK now", "attack"));
        assert!(contains_term("attack!", "Attack"));
        assert!(contains_term("they will kill you", "kill you"));
        assert!(!contains_term("counterattacks happen", "attack"));
        assert!(!contains_term("attacker", "attack"));
        assert!(!contains_term("anything", "  "));
    }
}

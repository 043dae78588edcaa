//! Text about an answer, for error messages: its quoted beginning, without the secrets the
//! caller knows, and the JSON path of a value that did not decode.

/// Characters of a body quoted in an error.
pub const SNIPPET_CHARS: usize = 300;

/// The beginning of a body, for error messages: lossy UTF-8, whitespace collapsed, at most
/// [`SNIPPET_CHARS`] characters and `…` when cut.
///
/// ```
/// use fxk3_kernel::text::snippet;
/// assert_eq!(snippet(b"<html>\n  <body>502</body>"), "<html> <body>502</body>");
/// ```
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_CHARS * 4)]);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > SNIPPET_CHARS {
        out = out.chars().take(SNIPPET_CHARS).collect::<String>() + "…";
    }
    out
}

/// Replaces every occurrence of a secret (4 characters or more) with `[redacted]`.
///
/// ```
/// use fxk3_kernel::text::scrub;
/// assert_eq!(scrub("token abcd1234 refused".into(), &["abcd1234"]), "token [redacted] refused");
/// ```
pub fn scrub(mut text: String, secrets: &[&str]) -> String {
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if text.contains(s) {
            text = text.replace(s, "[redacted]");
        }
    }
    text
}

/// `at` followed by the segments, written as serde_path_to_error writes a path
/// (`Result` + `Rows`, `[0]` → `Result.Rows[0]`); the root alone is `.`.
pub fn join_path<'a>(
    at: &str,
    segments: impl IntoIterator<Item = &'a serde_path_to_error::Segment>,
) -> String {
    use serde_path_to_error::Segment;
    let mut out = at.to_owned();
    for segment in segments {
        if !out.is_empty() && !matches!(segment, Segment::Seq { .. }) {
            out.push('.');
        }
        out.push_str(&segment.to_string());
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut_on_a_character() {
        let body = "中".repeat(400);
        let s = snippet(body.as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(snippet(b""), "");
    }

    #[test]
    fn short_secrets_are_not_scrubbed_and_every_occurrence_of_a_long_one_is() {
        assert_eq!(scrub("a abc abc".into(), &["abc"]), "a abc abc");
        assert_eq!(
            scrub("xsecretx secret".into(), &["secret"]),
            "x[redacted]x [redacted]"
        );
    }

    #[test]
    fn paths_are_joined_like_serde_path_to_error() {
        use serde_path_to_error::Segment;
        let segments = [
            Segment::Map { key: "Rows".into() },
            Segment::Seq { index: 0 },
            Segment::Map { key: "FQty".into() },
        ];
        assert_eq!(join_path("Result", &segments), "Result.Rows[0].FQty");
        assert_eq!(join_path("", &segments[1..]), "[0].FQty");
        assert_eq!(join_path("", []), ".");
    }
}

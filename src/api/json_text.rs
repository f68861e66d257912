//! A request's JSON text to a value. Janus hands the plugin any JSON it accepted, nested as
//! deep as Jansson allows (thousands of levels), while serde_json stops at 128 with a parse
//! error: a 300-deep array where `id` should be a string would then be "invalid JSON" (481)
//! instead of the error its content deserves (484). No request nests deeper than three
//! levels, so containers below `MAX_DEPTH` are cut to `null` before parsing: every field keeps
//! its type, and so its validation, and parsing never recurses deeply.

use serde_json::Value;
use std::borrow::Cow;

/// Deeper containers are replaced by `null` (nothing a request reads is that deep).
const MAX_DEPTH: usize = 32;

/// Parses `text`; containers nested deeper than `MAX_DEPTH` come out as `null`.
pub fn parse(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str(&flatten_deep(text))
}

/// `text` with every container that starts deeper than `MAX_DEPTH` replaced by `null`. Text
/// that is not JSON is passed through (serde_json then says what is wrong with it).
fn flatten_deep(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut cut_from: Option<(usize, usize)> = None; // (byte where the cut starts, its depth)
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already in `out`
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH && cut_from.is_none() {
                    cut_from = Some((i, depth));
                }
            }
            b']' | b'}' => {
                if let Some((start, at)) = cut_from {
                    if depth == at {
                        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                        out.push_str(&text[copied..start]);
                        out.push_str("null");
                        copied = i + 1;
                        cut_from = None;
                    }
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize, inner: &str) -> String {
        "[".repeat(depth) + inner + &"]".repeat(depth)
    }

    #[test]
    fn shallow_text_is_parsed_as_it_is() {
        let text = r#"{"request":"join","id":"a [b] {c}","rtp":{"ip":"1.2.3.4"}}"#;
        assert!(matches!(flatten_deep(text), Cow::Borrowed(_)));
        assert_eq!(parse(text).unwrap()["rtp"]["ip"], "1.2.3.4");
    }

    #[test]
    fn a_value_as_deep_as_janus_accepts_keeps_its_type() {
        let text = format!(r#"{{"request":"exists","id":{}}}"#, nested(300, "1"));
        let value = parse(&text).unwrap();
        assert!(
            value["id"].is_array(),
            "still an array, so `id` is a wrong type (484)"
        );
        assert_eq!(value["request"], "exists");
        // Cut below the limit, and only there.
        let mut inner = &value["id"];
        for _ in 1..MAX_DEPTH - 1 {
            inner = &inner[0];
        }
        assert_eq!(inner, &json!([null]));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(
            r#"{{"display":"{}","x":{}}}"#,
            "[{".repeat(100),
            nested(40, "2")
        );
        let value = parse(&text).unwrap();
        assert_eq!(value["display"], "[{".repeat(100));
        let escaped = r#"{"display":"a\"[[[[","n":1}"#;
        assert_eq!(parse(escaped).unwrap()["n"], 1);
    }

    #[test]
    fn not_json_is_still_an_error() {
        assert!(parse("{").is_err());
        assert!(parse(&nested(500, "")).is_ok(), "deep but well formed");
        assert!(parse(&("[".repeat(500) + "1")).is_err(), "unclosed");
    }
}

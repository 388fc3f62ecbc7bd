//! Splicing a template's inline partials into the places that call them, before compiling.
//!
//! The built-in templates name their parts with inline partials (`{{#*inline "head"~}}…
//! {{~/inline}}`, called as `{{> head}}`) so they read well and can be copied and edited.
//! Handlebars renders every partial call on a *copy* of the current context (its
//! `merge_json` clones the whole value even when the call has no arguments): with a dozen
//! calls per message, copying the context was most of the rendering time. A partial called
//! without arguments renders exactly like its body written in its place, so the built-ins are
//! compiled from the spliced text. The equivalence is tested on every built-in template
//! against every sample (`spliced_templates_render_exactly_like_the_originals`).
//!
//! Only the shape the built-ins use is spliced: definitions written
//! `{{#*inline "name"~}}body{{~/inline}}`, not nested, and calls written `{{> name}}`. Any
//! other use of a defined name (arguments, whitespace control on the call, a block partial)
//! leaves the whole template as it is, rendered by Handlebars' partial mechanism.

use std::collections::BTreeMap;

const OPEN: &str = "{{#*inline \"";
const OPEN_END: &str = "\"~}}";
const CLOSE: &str = "{{~/inline}}";

/// Calls may nest (a part calling another part) at most this deep.
const MAX_DEPTH: usize = 8;

/// `text` with every inline partial spliced into its calls, or `None` when the template
/// uses inline partials in a way this does not splice (then compile it as it is).
pub fn splice(text: &str) -> Option<String> {
    let (rest, parts) = definitions(text)?;
    if parts.is_empty() {
        return None;
    }
    let spliced = expand(&rest, &parts, 0)?;
    // A name still called in some other form (`{{~> head}}`, `{{> head x}}`, `{{#> head}}`)
    // would now be undefined.
    let other_calls = parts.keys().any(|name| {
        spliced.contains(&format!("> {name}")) || spliced.contains(&format!(">{name}"))
    });
    if other_calls {
        return None;
    }
    Some(spliced)
}

/// The template without its definitions, and the definitions' bodies by name. `None` when a
/// definition is not of the spliced shape.
fn definitions(text: &str) -> Option<(String, BTreeMap<String, String>)> {
    let mut rest = String::with_capacity(text.len());
    let mut parts = BTreeMap::new();
    let mut tail = text;
    while let Some(start) = tail.find("#*inline") {
        let open = start
            .checked_sub(2)
            .filter(|&i| tail[i..].starts_with(OPEN))?;
        let after_open = &tail[open + OPEN.len()..];
        let name_end = after_open.find('"')?;
        let name = &after_open[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let body_and_rest = after_open[name_end..].strip_prefix(OPEN_END)?;
        let body_end = body_and_rest.find(CLOSE)?;
        let body = &body_and_rest[..body_end];
        if body.contains("#*inline") || body.contains("/inline") {
            return None;
        }
        if parts.insert(name.to_owned(), neutral_edges(body)).is_some() {
            return None;
        }
        rest.push_str(&tail[..open]);
        tail = &body_and_rest[body_end + CLOSE.len()..];
    }
    if tail.contains("/inline") {
        return None;
    }
    rest.push_str(tail);
    Some((rest, parts))
}

/// A body as it renders on its own: the `~` of the definition's tags trim its outer
/// whitespace, and a `~` on its first or last tag (which trimmed nothing inside the body) is
/// dropped so that, spliced, it cannot trim the text around the call.
fn neutral_edges(body: &str) -> String {
    let mut body = body.trim().to_owned();
    if body.starts_with("{{~") {
        body.replace_range(2..3, "");
    }
    if body.ends_with("~}}") {
        let at = body.len() - 3;
        body.replace_range(at..at + 1, "");
    }
    body
}

fn expand(text: &str, parts: &BTreeMap<String, String>, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut tail = text;
    while let Some(at) = tail.find("{{> ") {
        let call = &tail[at + 4..];
        let end = call.find("}}")?;
        let name = &call[..end];
        out.push_str(&tail[..at]);
        match parts.get(name) {
            Some(body) => out.push_str(&expand(body, parts, depth + 1)?),
            // Not an inline partial of this template (a registered partial): keep the call.
            None => out.push_str(&tail[at..at + 4 + end + 2]),
        }
        tail = &call[end + 2..];
    }
    out.push_str(tail);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_replaced_by_the_bodies_and_definitions_removed() {
        let t = "{{#*inline \"a\"~}}\n  {{~#if x}}A{{/if~}}\n{{~/inline}}\n\
                 {{#*inline \"b\"~}}[{{> a}}]{{~/inline}}\n\"{{> b}} and {{> a}}\"";
        let spliced = splice(t).unwrap();
        assert_eq!(spliced, "\n\n\"[{{#if x}}A{{/if}}] and {{#if x}}A{{/if}}\"");
    }

    #[test]
    fn unknown_calls_are_kept_and_other_shapes_are_not_spliced() {
        let t = "{{#*inline \"a\"~}}A{{~/inline}}{{> a}}{{> _footer}}";
        assert_eq!(splice(t).unwrap(), "A{{> _footer}}");
        // no inline partials: nothing to do
        assert_eq!(splice("{{> _footer}}"), None);
        // a call with an argument, or with whitespace control
        assert_eq!(splice("{{#*inline \"a\"~}}A{{~/inline}}{{> a x}}"), None);
        assert_eq!(splice("{{#*inline \"a\"~}}A{{~/inline}}{{~> a}}"), None);
        // definitions without `~`, nested, unterminated or repeated
        assert_eq!(splice("{{#*inline \"a\"}}A{{/inline}}{{> a}}"), None);
        assert_eq!(
            splice("{{#*inline \"a\"~}}{{#*inline \"b\"~}}B{{~/inline}}{{~/inline}}"),
            None
        );
        assert_eq!(splice("{{#*inline \"a\"~}}A"), None);
        assert_eq!(
            splice("{{#*inline \"a\"~}}A{{~/inline}}{{#*inline \"a\"~}}B{{~/inline}}"),
            None
        );
        // a part that calls itself
        assert_eq!(
            splice("{{#*inline \"a\"~}}{{> a}}{{~/inline}}{{> a}}"),
            None
        );
    }
}

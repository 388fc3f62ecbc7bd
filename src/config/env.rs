//! `${VAR}` expansion for config string values. It runs on parsed values, never on the raw
//! YAML text, so an environment value containing `: ` or a newline cannot change the
//! structure of the file.

/// Expands `${VAR}`, `${VAR:-default}` and the escape `$$` (a literal `$`) in `input`,
/// looking variables up with `lookup`. An unset variable without a default is an error
/// naming it. A `$` not followed by `{` or `$` is kept as is.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| ExpandError::Unterminated(truncate_for_error(&rest[pos..])))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ExpandError::BadName(name.to_owned()));
            }
            match lookup(name) {
                Some(value) if !(value.is_empty() && default.is_some()) => out.push_str(&value),
                _ => match default {
                    Some(default) => out.push_str(default),
                    None => return Err(ExpandError::Unset(name.to_owned())),
                },
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn truncate_for_error(s: &str) -> String {
    s.chars().take(24).collect()
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExpandError {
    #[error("environment variable {0} is not set (use ${{{0}:-default}} to give a default)")]
    Unset(String),
    #[error("`{0}` is missing its closing `}}`")]
    Unterminated(String),
    #[error("`{0}` is not a valid environment variable name")]
    BadName(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("a: b\n- c".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(expand("x=${TOKEN}&y", &env).unwrap(), "x=abc&y");
        assert_eq!(expand("${MISSING:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${TOKEN:-dflt}", &env).unwrap(), "abc");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("${TRICKY}", &env).unwrap(), "a: b\n- c");
        assert_eq!(expand("plain", &env).unwrap(), "plain");
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        assert_eq!(expand("$${TOKEN}", &env).unwrap(), "${TOKEN}");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(expand("end$", &env).unwrap(), "end$");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = expand("${NOPE}", &env).unwrap_err();
        assert_eq!(err, ExpandError::Unset("NOPE".into()));
        assert!(err.to_string().contains("NOPE"));
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(
            expand("${TOKEN", &env),
            Err(ExpandError::Unterminated(_))
        ));
        assert!(matches!(expand("${}", &env), Err(ExpandError::BadName(_))));
        assert!(matches!(
            expand("${A B}", &env),
            Err(ExpandError::BadName(_))
        ));
    }
}

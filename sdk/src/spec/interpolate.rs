//! Variables in Compose values, as `docker compose` substitutes them:
//! `$VAR` and `${VAR}`; `${VAR:-default}` (unset or empty) and
//! `${VAR-default}` (unset); `${VAR:?message}` and `${VAR?message}`
//! (an error with the message); `${VAR:+alt}` and `${VAR+alt}` (`alt` when
//! set and not empty, or set); defaults and alternatives may hold further
//! substitutions; `$$` is a `$`. A variable that is unset and has no
//! default is an empty string, and named so the caller can warn. Pure: the
//! caller says where values come from.

/// A value with its variables substituted, and the variables it used that
/// were not set (each once, in order of appearance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    pub value: String,
    pub unset: Vec<String>,
}

/// Why a value could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing.
    #[error("required variable {name} is missing a value: {message}")]
    Required { name: String, message: String },
    /// A `$` that starts nothing Compose knows (`$5`, `${}`, `${A`).
    #[error("invalid interpolation format in {value:?}: {why}; write $$ for a literal $")]
    Invalid { value: String, why: String },
}

/// Substitutes the variables of `value`, looking each up with `lookup`.
pub fn substitute(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolationError> {
    let mut out = Substituted {
        value: String::with_capacity(value.len()),
        unset: Vec::new(),
    };
    expand(value, value, lookup, &mut out)?;
    Ok(out)
}

/// Expands `text` (all of `whole`, or a default inside it) into `out`.
fn expand(
    text: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut Substituted,
) -> Result<(), InterpolationError> {
    let invalid = |why: &str| InterpolationError::Invalid {
        value: whole.to_string(),
        why: why.to_string(),
    };
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.value.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.value.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).ok_or_else(|| invalid("a ${ without its }"))?;
            braced(&inner[..end], whole, lookup, out)?;
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(invalid("a $ not followed by a variable name"));
            }
            let name = &after[..len];
            match lookup(name) {
                Some(v) => out.value.push_str(&v),
                None => note_unset(out, name),
            }
            rest = &after[len..];
        }
    }
    out.value.push_str(rest);
    Ok(())
}

/// What is between `${` and its `}`.
fn braced(
    inner: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut Substituted,
) -> Result<(), InterpolationError> {
    let len = name_len(inner);
    if len == 0 {
        return Err(InterpolationError::Invalid {
            value: whole.to_string(),
            why: format!("${{{inner}}} names no variable"),
        });
    }
    let (name, op) = inner.split_at(len);
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (kind, arg) = match op {
        "" => ("", ""),
        // The two-character forms first: `:-` is not `:` then `-`.
        _ => [":-", ":?", ":+", "-", "?", "+"]
            .into_iter()
            .find_map(|k| op.strip_prefix(k).map(|arg| (k, arg)))
            .ok_or_else(|| InterpolationError::Invalid {
                value: whole.to_string(),
                why: format!("${{{inner}}}: expected :-, -, :?, ?, :+ or + after {name}"),
            })?,
    };
    let use_arg = match kind {
        "" => {
            match value {
                Some(v) => out.value.push_str(&v),
                None => note_unset(out, name),
            }
            return Ok(());
        }
        ":-" => !non_empty,
        "-" => !set,
        ":+" => non_empty,
        "+" => set,
        // `:?` and `?`
        _ => {
            let missing = if kind == ":?" { !non_empty } else { !set };
            if missing {
                let mut message = Substituted {
                    value: String::new(),
                    unset: Vec::new(),
                };
                expand(arg, whole, lookup, &mut message)?;
                return Err(InterpolationError::Required {
                    name: name.to_string(),
                    message: message.value,
                });
            }
            false
        }
    };
    if use_arg {
        return expand(arg, whole, lookup, out);
    }
    // `:+`/`+` not taken: nothing; otherwise the variable's own value.
    if !kind.ends_with('+')
        && let Some(v) = value
    {
        out.value.push_str(&v);
    }
    Ok(())
}

fn note_unset(out: &mut Substituted, name: &str) {
    if !out.unset.iter().any(|n| n == name) {
        out.unset.push(name.to_string());
    }
}

/// Length of the variable name `text` starts with (`[_A-Za-z][_A-Za-z0-9]*`).
fn name_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => bytes
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .unwrap_or(bytes.len()),
        _ => 0,
    }
}

/// The `}` closing a `${` whose inside starts `text` (nested `${…}` in a
/// default count; `$$` does not open one).
fn closing_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn with(vars: &[(&str, &str)], text: &str) -> Result<Substituted, InterpolationError> {
        let map: BTreeMap<String, String> = (vars.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        substitute(text, &|name| map.get(name).cloned())
    }

    fn value(vars: &[(&str, &str)], text: &str) -> String {
        with(vars, text).expect("substitutes").value
    }

    #[test]
    fn plain_and_braced_names() {
        let vars = [("TAG", "1.2"), ("HOST", "db"), ("_X1", "y")];
        assert_eq!(value(&vars, "web:$TAG"), "web:1.2");
        assert_eq!(value(&vars, "web:${TAG}-slim"), "web:1.2-slim");
        assert_eq!(value(&vars, "$HOST:5432/$_X1"), "db:5432/y");
        assert_eq!(value(&vars, "${HOST}${TAG}"), "db1.2");
        assert_eq!(value(&vars, "no variables"), "no variables");
        assert_eq!(value(&vars, "$TAGX"), "", "the longest name is taken");
    }

    #[test]
    fn dollar_dollar_is_a_dollar() {
        assert_eq!(value(&[("A", "x")], "echo $$A $${A}"), "echo $A ${A}");
        assert_eq!(value(&[], "cost: 5$$"), "cost: 5$");
    }

    #[test]
    fn defaults_with_and_without_colon() {
        let vars = [("EMPTY", ""), ("SET", "v")];
        assert_eq!(value(&vars, "${NOPE:-d}"), "d");
        assert_eq!(value(&vars, "${EMPTY:-d}"), "d");
        assert_eq!(value(&vars, "${SET:-d}"), "v");
        assert_eq!(value(&vars, "${NOPE-d}"), "d");
        assert_eq!(value(&vars, "${EMPTY-d}"), "");
        assert_eq!(value(&vars, "${SET-d}"), "v");
        assert_eq!(value(&vars, "${NOPE:-}"), "");
        assert_eq!(value(&vars, "${NOPE:-a b:c/d}"), "a b:c/d");
    }

    #[test]
    fn alternatives() {
        let vars = [("EMPTY", ""), ("SET", "v")];
        assert_eq!(value(&vars, "${SET:+alt}"), "alt");
        assert_eq!(value(&vars, "${EMPTY:+alt}"), "");
        assert_eq!(value(&vars, "${NOPE:+alt}"), "");
        assert_eq!(value(&vars, "${SET+alt}"), "alt");
        assert_eq!(value(&vars, "${EMPTY+alt}"), "alt");
        assert_eq!(value(&vars, "${NOPE+alt}"), "");
        assert!(with(&vars, "${NOPE:+alt}").expect("ok").unset.is_empty());
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let vars = [("EMPTY", ""), ("WHO", "ops")];
        let err = with(&vars, "${PW:?set PW in .env}").expect_err("required");
        assert_eq!(
            err.to_string(),
            "required variable PW is missing a value: set PW in .env"
        );
        assert!(with(&vars, "${EMPTY:?no}").is_err());
        assert_eq!(value(&vars, "${EMPTY?no}"), "");
        assert!(
            with(&vars, "${NOPE?ask ${WHO}}").is_err_and(|e| e.to_string().ends_with("ask ops"))
        );
        assert_eq!(value(&vars, "${WHO:?no}"), "ops");
    }

    #[test]
    fn defaults_nest() {
        let vars = [("B", "b")];
        assert_eq!(value(&vars, "${A:-${B}}"), "b");
        assert_eq!(value(&vars, "${A:-${C:-${B}-x}}"), "b-x");
        assert_eq!(value(&vars, "${A:-x}${B:-y}"), "xb");
        assert_eq!(value(&vars, "${A:-$$}"), "$");
        assert_eq!(value(&vars, "${B:+[${B}]}"), "[b]");
    }

    #[test]
    fn unset_variables_are_empty_and_named_once() {
        let got = with(&[], "$A-${B}-$A-${C:-c}").expect("ok");
        assert_eq!(got.value, "---c");
        assert_eq!(got.unset, ["A", "B"]);
    }

    #[test]
    fn malformed_templates_say_what_is_wrong() {
        for (text, said) in [
            ("$5", "not followed by a variable name"),
            ("price $", "not followed by a variable name"),
            ("${}", "names no variable"),
            ("${A", "without its }"),
            ("${A:-x", "without its }"),
            ("${A!x}", "expected :-, -, :?, ?, :+ or +"),
            ("${1A}", "names no variable"),
        ] {
            let err = with(&[], text).expect_err(text).to_string();
            assert!(err.contains(said), "{text}: {err}");
            assert!(err.contains("$$"), "{text}: {err}");
        }
    }
}

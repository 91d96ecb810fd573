//! `.env` files (and `--env-file`): `KEY=value` lines as `docker compose`
//! reads them. Blank lines and `#` comments are skipped; `export KEY=…`
//! is allowed; a value in single quotes is taken as it is, one in double
//! quotes understands `\n`, `\t`, `\"` and `\\`; an unquoted value ends
//! at ` #` and is trimmed. Unquoted and double-quoted values substitute
//! `${VAR}` from the lines above, then from `outer` (the environment).

use std::collections::BTreeMap;

use super::interpolate::substitute;

/// A line that is not `KEY=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    pub line: usize,
    pub message: String,
}

/// The variables of an env file, in the order given (a later line wins).
pub fn parse_dotenv(
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, DotenvError> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| DotenvError { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export ")
            .map_or(trimmed, str::trim_start);
        let Some((key, value)) = body.split_once('=') else {
            return Err(err(format!("expected KEY=value, found {trimmed:?}")));
        };
        let key = key.trim_end();
        let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(err(format!("{key:?} is not a variable name")));
        }
        let value = value.trim_start();
        let lookup = |name: &str| vars.get(name).cloned().or_else(|| outer(name));
        let expand = |v: &str| {
            substitute(v, &lookup)
                .map(|s| s.value)
                .map_err(|e| err(format!("{key}: {e}")))
        };
        let parsed = if let Some(rest) = value.strip_prefix('\'') {
            let end = rest
                .find('\'')
                .ok_or_else(|| err(format!("{key}: no closing '")))?;
            rest[..end].to_string()
        } else if let Some(rest) = value.strip_prefix('"') {
            expand(&double_quoted(rest).ok_or_else(|| err(format!("{key}: no closing \"")))?)?
        } else {
            let unquoted = match value.find(" #") {
                Some(at) => &value[..at],
                None => value,
            };
            expand(unquoted.trim_end())?
        };
        vars.insert(key.to_string(), parsed);
    }
    Ok(vars)
}

/// The inside of a double-quoted value (after its `"`), escapes applied;
/// `None` without a closing quote.
fn double_quoted(rest: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> BTreeMap<String, String> {
        parse_dotenv(text, &|name| (name == "HOME").then(|| "/root".to_string())).expect("valid")
    }

    #[test]
    fn the_forms_compose_reads() {
        let vars = read(
            "# settings\n\nTAG=1.2\nexport PORT=8080\nNAME = shop \nQUOTED='a $TAG # b'\nDQ=\"line\\nnext ${TAG}\"\nCOMMENT=x # note\nEMPTY=\nURL=http://h/?a=b#frag\n",
        );
        assert_eq!(vars["TAG"], "1.2");
        assert_eq!(vars["PORT"], "8080");
        assert_eq!(vars["NAME"], "shop");
        assert_eq!(vars["QUOTED"], "a $TAG # b");
        assert_eq!(vars["DQ"], "line\nnext 1.2");
        assert_eq!(vars["COMMENT"], "x");
        assert_eq!(vars["EMPTY"], "");
        assert_eq!(vars["URL"], "http://h/?a=b#frag");
    }

    #[test]
    fn values_use_earlier_lines_then_the_environment() {
        let vars = read("A=1\nB=${A}-${HOME}-${C:-c}\nA=2\n");
        assert_eq!(vars["B"], "1-/root-c");
        assert_eq!(vars["A"], "2", "a later line wins");
    }

    #[test]
    fn bad_lines_are_named() {
        let none = |_: &str| None;
        for (text, line, said) in [
            ("A=1\nJUST_A_WORD\n", 2, "expected KEY=value"),
            ("1A=x\n", 1, "is not a variable name"),
            ("A='open\n", 1, "no closing '"),
            ("A=\"open\n", 1, "no closing \""),
            ("A=${B:?needed}\n", 1, "B is missing a value: needed"),
        ] {
            let e = parse_dotenv(text, &none).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(said), "{text}: {e}");
        }
    }
}

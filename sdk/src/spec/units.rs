//! Pure parsers for the value syntaxes of a Compose file: names, durations,
//! byte sizes, CPU counts and port numbers.
//!
//! They work on text and return a [`UnitError`] that names the text; the
//! converters attach the path and line. Arithmetic is exact (integers, not floats) so `1.5G` is
//! exactly 1610612736 bytes, and every overflow is an error, never a wrap or
//! a panic.

/// Why a value's text does not parse. Each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum UnitError {
    #[error(
        "invalid duration \"{0}\": expected a number and a unit (ms, s, m, h), such as 30s or 1m30s"
    )]
    Duration(String),
    #[error("duration \"{0}\" is too large")]
    DurationTooLarge(String),
    /// `min` is the shortest duration allowed, in words.
    #[error("duration \"{text}\" is too short: the minimum is {min}")]
    DurationTooShort { text: String, min: &'static str },
    #[error("invalid size \"{0}\": expected a number of bytes or a size such as 512k, 64M or 1.5G")]
    Size(String),
    #[error("size \"{0}\" is too large")]
    SizeTooLarge(String),
    #[error("invalid CPU count \"{0}\": expected a number such as 0.5 or 2")]
    Cpus(String),
    #[error("CPU count \"{0}\" is too large")]
    CpusTooLarge(String),
    /// `quote` is `single` or `double`.
    #[error("unterminated {quote} quote in \"{text}\": close it, or write the command as a list")]
    Unterminated { text: String, quote: &'static str },
    #[error("\"{0}\" ends with a lone backslash: write \\\\ for a backslash")]
    LoneBackslash(String),
    #[error("\"{0}\" is not a port number (1-65535)")]
    Port(String),
}

/// `^[a-z0-9][a-z0-9_-]*$`: app names become NATS subjects and bucket names.
pub fn is_app_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`: like Compose, minus the dot, because a
/// service name is one token of a NATS key.
pub(super) fn is_service_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A non-negative decimal `12`, `1.5`, `.5`: integer part, fraction digits
/// and their count. Digits beyond 18 in the fraction are dropped (they are
/// below any unit we scale to) so the arithmetic below cannot overflow.
struct Decimal {
    int: u128,
    frac: u128,
    frac_digits: u32,
}

impl Decimal {
    fn parse(s: &str) -> Option<Decimal> {
        let (int_s, frac_s) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if (int_s.is_empty() && frac_s.is_empty()) || !digits(int_s) || !digits(frac_s) {
            return None;
        }
        // 30 digits still fit a u128 after scaling by any unit below.
        if int_s.len() > 30 {
            return None;
        }
        let frac_s = &frac_s[..frac_s.len().min(18)];
        Some(Decimal {
            int: int_s.parse().unwrap_or(0),
            frac: frac_s.parse().unwrap_or(0),
            frac_digits: frac_s.len() as u32,
        })
    }

    /// `self × unit`, truncated.
    fn scale(&self, unit: u128) -> Option<u128> {
        let whole = self.int.checked_mul(unit)?;
        let part = self.frac.checked_mul(unit)? / 10u128.pow(self.frac_digits);
        whole.checked_add(part)
    }
}

/// A Compose duration (`30s`, `1m30s`, `1.5s`, `500ms`) in milliseconds.
/// The syntax is Go's `time.ParseDuration`, which Compose uses, without sign.
pub(super) fn parse_duration_ms(s: &str) -> Result<u64, UnitError> {
    duration_ms(s, false)
}

/// As [`parse_duration_ms`], but zero (`0`, `0s`) is allowed: a stop grace
/// period or a restart delay of zero means "at once".
pub(super) fn parse_duration_ms_or_zero(s: &str) -> Result<u64, UnitError> {
    duration_ms(s, true)
}

fn duration_ms(s: &str, zero_ok: bool) -> Result<u64, UnitError> {
    // Go accepts a bare "0", and only that, without a unit.
    if zero_ok && s.trim() == "0" {
        return Ok(0);
    }
    let bad = || UnitError::Duration(s.to_string());
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let part = Decimal::parse(num)
            .and_then(|d| d.scale(ns))
            .ok_or_else(bad)?;
        total_ns = total_ns.checked_add(part).ok_or_else(bad)?;
        rest = tail;
    }
    let ms = u64::try_from(total_ns / 1_000_000)
        .map_err(|_| UnitError::DurationTooLarge(s.to_string()))?;
    if ms == 0 && !(zero_ok && total_ns == 0) {
        let min = if zero_ok { "1ms (or 0)" } else { "1ms" };
        let text = s.to_string();
        return Err(UnitError::DurationTooShort { text, min });
    }
    Ok(ms)
}

/// A Compose byte size (`64M`, `64m`, `1g`, `512k`, `100b`, `1.5G`, `1GiB`,
/// `100`) in bytes. Units are powers of 1024, as in Compose (go-units).
pub(super) fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Size(s.to_string());
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    // go-units accepts one space between the number and the unit.
    let suffix = suffix
        .strip_prefix(' ')
        .unwrap_or(suffix)
        .to_ascii_lowercase();
    let mut chars = suffix.chars();
    let shift = match chars.next() {
        None | Some('b') => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        Some(_) => return Err(bad()),
    };
    let tail = chars.as_str();
    let tail_ok = if shift == 0 {
        tail.is_empty()
    } else {
        matches!(tail, "" | "b" | "i" | "ib")
    };
    if !tail_ok || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let bytes = Decimal::parse(num)
        .and_then(|d| d.scale(1u128 << shift))
        .ok_or_else(bad)?;
    u64::try_from(bytes).map_err(|_| UnitError::SizeTooLarge(s.to_string()))
}

/// A CPU count (`0.5`, `2`, `1.25`) in thousandths, rounded to the nearest.
pub(super) fn parse_cpus_milli(s: &str) -> Result<u32, UnitError> {
    let bad = || UnitError::Cpus(s.to_string());
    let d = Decimal::parse(s.trim()).ok_or_else(bad)?;
    // Round half up: scale to ten-thousandths, then to the nearest thousandth.
    let tenth_milli = d.scale(10_000).ok_or_else(bad)?;
    let milli = tenth_milli.saturating_add(5) / 10;
    u32::try_from(milli).map_err(|_| UnitError::CpusTooLarge(s.to_string()))
}

/// Splits a command line into words the way a POSIX shell does, without
/// any expansion: blanks (space, tab, newline) separate words, single
/// quotes keep everything up to the next single quote, double quotes keep
/// everything up to the next unescaped double quote (where a backslash
/// escapes only `"`, `\`, `$`, `` ` `` and a newline), and outside quotes a
/// backslash makes the next character literal (a backslash-newline joins
/// lines). `$`, `*`, `~` and `#` are ordinary characters. `''` is an empty
/// word.
pub(super) fn split_words(s: &str) -> Result<Vec<String>, UnitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word has started, even if empty so far (`''`).
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(unterminated(s, "single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unterminated(s, "double")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(unterminated(s, "double")),
                    }
                }
            }
            '\\' => match chars.next() {
                // A line continuation: nothing, not even a word break.
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(UnitError::LoneBackslash(s.to_string())),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unterminated(s: &str, quote: &'static str) -> UnitError {
    let text = s.to_string();
    UnitError::Unterminated { text, quote }
}

/// A port number, 1 to 65535, written in decimal.
pub(super) fn parse_port(s: &str) -> Result<u16, UnitError> {
    let t = s.trim();
    match t.parse::<u16>() {
        Ok(p) if p > 0 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(UnitError::Port(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "shop", "my-app_2", "0day"] {
            assert!(is_app_name(ok), "{ok}");
        }
        for bad in ["", "Shop", "-a", "_a", "a.b", "a b", "é"] {
            assert!(!is_app_name(bad), "{bad}");
        }
        for ok in ["web", "Web", "api-v2", "db_1", "9"] {
            assert!(is_service_name(ok), "{ok}");
        }
        for bad in ["", "web.1", "-web", "we b", "web/1"] {
            assert!(!is_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("2500us"), Ok(2));
        for bad in ["", "30", "s", "1x", "-1s", "1.2.3s", "abc", "1s 2s"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        let short = parse_duration_ms("0s").unwrap_err();
        assert_eq!(
            short.to_string(),
            "duration \"0s\" is too short: the minimum is 1ms"
        );
        assert_eq!(
            parse_duration_ms("1x").unwrap_err().to_string(),
            "invalid duration \"1x\": expected a number and a unit (ms, s, m, h), such as 30s or 1m30s"
        );
        assert!(parse_duration_ms("999999999999999999999h").is_err());
    }

    #[test]
    fn durations_that_may_be_zero() {
        for zero in ["0", " 0 ", "0s", "0ms", "0.0s", "0h0m"] {
            assert_eq!(parse_duration_ms_or_zero(zero), Ok(0), "{zero}");
            assert!(parse_duration_ms(zero).is_err(), "{zero}");
        }
        assert_eq!(parse_duration_ms_or_zero("10s"), Ok(10_000));
        let e = parse_duration_ms_or_zero("500us").unwrap_err().to_string();
        assert!(e.contains("too short: the minimum is 1ms (or 0)"), "{e}");
        for bad in ["", "00", "-0s", "0x"] {
            assert!(parse_duration_ms_or_zero(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("512k"), Ok(512 << 10));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("1.5G"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("64MB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1gb"), Ok(1 << 30));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1t"), Ok(1 << 40));
        assert_eq!(parse_bytes("1 GB"), Ok(1 << 30));
        for bad in ["", "M", "abc", "1x", "-1M", "1.5.5G", "64MBB", ".5G", "1bb"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_bytes("99999999p").unwrap_err().to_string(),
            "size \"99999999p\" is too large"
        );
        assert_eq!(
            parse_bytes("1x").unwrap_err().to_string(),
            "invalid size \"1x\": expected a number of bytes or a size such as 512k, 64M or 1.5G"
        );
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus_milli("0.5"), Ok(500));
        assert_eq!(parse_cpus_milli("2"), Ok(2000));
        assert_eq!(parse_cpus_milli("1.25"), Ok(1250));
        assert_eq!(parse_cpus_milli(".25"), Ok(250));
        assert_eq!(parse_cpus_milli("0.0015"), Ok(2));
        assert_eq!(parse_cpus_milli("0.0014"), Ok(1));
        assert_eq!(parse_cpus_milli("0"), Ok(0));
        for bad in ["", "x", "-1", "50%", "1,5"] {
            assert!(parse_cpus_milli(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_cpus_milli("5000000").unwrap_err(),
            UnitError::CpusTooLarge("5000000".into())
        );
        assert_eq!(
            parse_cpus_milli("x").unwrap_err().to_string(),
            "invalid CPU count \"x\": expected a number such as 0.5 or 2"
        );
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("80"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["0", "65536", "", "+80", "8o", "-1"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_port("8o").unwrap_err().to_string(),
            "\"8o\" is not a port number (1-65535)"
        );
    }
}

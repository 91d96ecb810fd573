//! Wall-clock times as people write them: RFC 3339 in UTC for output
//! (`atoll logs --timestamps`, as `docker logs -t`), and the forms
//! `--since` accepts (as `docker logs --since`): a duration back from now
//! (`10m`, `1h30m`), a time (`2026-12-07T21:00:00Z`, an offset, or a date
//! alone for its midnight UTC), or Unix seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `2026-12-07T21:08:42.123Z` for Unix milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return format!("@{ms}ms");
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Unix milliseconds of a `--since` value, `now_ms` being now.
pub fn parse_since(text: &str, now_ms: u64) -> Result<u64, String> {
    let text = text.trim();
    let wrong = || {
        format!(
            "expected a duration (10m, 1h30m), a time (2026-12-07T21:00:00Z, 2026-12-07) or Unix seconds, got {text:?}"
        )
    };
    if text.is_empty() {
        return Err(wrong());
    }
    // Unix seconds, with a fraction or not.
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let secs: f64 = text.parse().map_err(|_| wrong())?;
        return Ok((secs * 1000.0) as u64);
    }
    if let Ok(d) = crate::spec::parse_duration(text) {
        return Ok(now_ms.saturating_sub(d.as_millis() as u64));
    }
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    let t = OffsetDateTime::parse(&full, &Rfc3339).map_err(|_| wrong())?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| wrong())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_796_677_722_123), "2026-12-07T21:08:42.123Z");
    }

    #[test]
    fn since_takes_durations_times_dates_and_unix_seconds() {
        let now = 1_796_677_722_123;
        assert_eq!(parse_since("10m", now), Ok(now - 600_000));
        assert_eq!(parse_since("1h30m", now), Ok(now - 5_400_000));
        assert_eq!(
            parse_since("2026-12-07T21:08:42.123Z", now),
            Ok(1_796_677_722_123)
        );
        assert_eq!(
            parse_since("2026-12-07T22:08:42+01:00", now),
            Ok(1_796_677_722_000)
        );
        assert_eq!(parse_since("2026-12-07", now), Ok(1_796_601_600_000));
        assert_eq!(parse_since("1796677722", now), Ok(1_796_677_722_000));
        assert_eq!(parse_since("1796677722.5", now), Ok(1_796_677_722_500));
        for bad in ["", "yesterday", "10 parsecs", "2026-13-01", "1.2.3"] {
            let err = parse_since(bad, now).expect_err(bad);
            assert!(err.contains("expected a duration"), "{err}");
        }
    }
}

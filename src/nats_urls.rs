//! `--nats` (and `ATOLL_NATS`): one NATS URL or several, comma-separated,
//! checked when the command line is read so that a malformed one is named
//! before anything starts.

/// The list as given, once every entry parses.
pub fn parse(text: &str) -> Result<String, String> {
    atoll_sdk::nats::parse_urls(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

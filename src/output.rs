//! Output for people (aligned tables) and for scripts (`-o json`).

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    /// The table with more columns (where a listing has more to show)
    Wide,
    Json,
    Yaml,
}

impl Format {
    /// Whether this is a format for scripts (JSON or YAML) rather than a table.
    pub fn structured(self) -> bool {
        matches!(self, Format::Json | Format::Yaml)
    }
}

/// Prints `value` as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints `value` as YAML.
pub fn yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    print!(
        "{}",
        atoll_sdk::spec::to_yaml(&serde_json::to_value(value)?)
    );
    Ok(())
}

/// Prints `value` in `format` (a table format prints JSON).
pub fn structured<T: serde::Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    match format {
        Format::Yaml => yaml(value),
        _ => json(value),
    }
}

/// [`table`] of `items` (`rows` are theirs, in order); with `-o wide`,
/// each row also gets the `more` columns `extra` gives for its item.
pub fn table_or_wide<T>(
    format: Format,
    header: &[&str],
    rows: Vec<Vec<String>>,
    items: &[T],
    (more, extra): (&[&str], impl Fn(&T) -> Vec<String>),
) {
    if format != Format::Wide {
        return table(header, &rows);
    }
    let header: Vec<&str> = header.iter().chain(more).copied().collect();
    let rows: Vec<Vec<String>> = (rows.into_iter().zip(items))
        .map(|(mut row, item)| {
            row.extend(extra(item));
            row
        })
        .collect();
    table(&header, &rows);
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table_text(header, rows));
}

/// [`table`]'s text, each line ending in a newline.
pub fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `3s`, `5m`, `2h`, `4d` since a Unix-millisecond timestamp.
pub fn age(since_ms: u64) -> String {
    if since_ms == 0 {
        return "-".into();
    }
    span(atoll_sdk::protocol::now_ms().saturating_sub(since_ms))
}

/// `3s`, `5m`, `2h`, `4d`: a span of milliseconds.
pub fn span(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// Which API to talk to and how: `--server`, `--token`, `--ca` (or
/// `ATOLL_SERVER`, `ATOLL_TOKEN`, `ATOLL_CA`, or the CLI context).
#[derive(clap::Args, Clone)]
pub struct ServerArg {
    /// atoll server API address (default: the CLI context's, written by
    /// `atoll up` and `atoll cluster init`, else http://127.0.0.1:7420)
    #[arg(long, env = "ATOLL_SERVER", global = true)]
    pub server: Option<String>,
    /// API token (default: the context's)
    #[arg(long, env = "ATOLL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The cluster CA to trust, PEM (default: the context's)
    #[arg(long, env = "ATOLL_CA", global = true)]
    pub ca: Option<std::path::PathBuf>,
}

impl ServerArg {
    pub fn client(&self) -> anyhow::Result<atoll_sdk::client::Client> {
        use anyhow::Context as _;
        let context = crate::context::load();
        // The context speaks for its own server only.
        let context = context.filter(|c| self.server.as_ref().is_none_or(|s| *s == c.server));
        let server = (self.server.clone())
            .or_else(|| context.as_ref().map(|c| c.server.clone()))
            .unwrap_or_else(|| "http://127.0.0.1:7420".to_string());
        let ca = (self.ca.clone()).or_else(|| context.as_ref().map(|c| c.ca.clone()));
        let token = match (&self.token, &context) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(c)) => Some(
                std::fs::read_to_string(&c.token_file)
                    .with_context(|| {
                        format!("cannot read the context's token {}", c.token_file.display())
                    })?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let ca_pem = match &ca {
            Some(p) => Some(
                std::fs::read(p).with_context(|| format!("cannot read the CA {}", p.display()))?,
            ),
            None => None,
        };
        let base = if server.contains("://") {
            server
        } else if ca_pem.is_some() || token.is_some() {
            format!("https://{server}")
        } else {
            format!("http://{server}")
        };
        if token.is_some() && base.starts_with("http://") && !loopback(&base) {
            anyhow::bail!(
                "refusing to send a token over plain HTTP to {base}: use https:// (with --ca)"
            );
        }
        let credentials = atoll_sdk::client::Credentials { token, ca_pem };
        Ok(atoll_sdk::client::Client::with(&base, credentials)?)
    }
}

/// Whether `url` names this machine (a token sent there in the clear
/// crosses no network).
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `3.1/12.0 MB`: bytes done of a total, for progress columns.
pub fn progress(done: u64, total: u64) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    format!("{:.1}/{:.1} MB", mb(done), mb(total))
}

#[cfg(test)]
mod tests {
    use super::loopback;

    #[test]
    fn loopback_urls() {
        for yes in [
            "http://127.0.0.1:7420",
            "http://localhost:7420/v1",
            "http://[::1]:7420",
            "http://127.3.2.1",
        ] {
            assert!(loopback(yes), "{yes}");
        }
        for no in [
            "http://10.0.0.1:7420",
            "http://api.example:7420",
            "http://[2001:db8::1]:7420",
        ] {
            assert!(!loopback(no), "{no}");
        }
    }
}

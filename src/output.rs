//! Output for people (aligned tables) and for scripts (`-o json`).

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Prints `value` as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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
    let secs = atoll_sdk::protocol::now_ms().saturating_sub(since_ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// The server address from `--server` or `ATOLL_SERVER`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArg {
    /// atoll server API address
    #[arg(
        long,
        env = "ATOLL_SERVER",
        default_value = "http://127.0.0.1:7420",
        global = true
    )]
    pub server: String,
}

impl ServerArg {
    pub fn client(&self) -> anyhow::Result<atoll_sdk::client::Client> {
        let base = if self.server.contains("://") {
            self.server.clone()
        } else {
            format!("http://{}", self.server)
        };
        Ok(atoll_sdk::client::Client::new(&base)?)
    }
}

/// `3.1/12.0 MB`: bytes done of a total, for progress columns.
pub fn progress(done: u64, total: u64) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    format!("{:.1}/{:.1} MB", mb(done), mb(total))
}

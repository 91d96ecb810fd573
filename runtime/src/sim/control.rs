//! The simulator's control lines (on its standard input):
//!
//! - `kill N`: the last N hosts stop at once, as if their machines died
//!   (no goodbye: their beats just stop);
//! - `fail APP[/SERVICE]`: instances of it that start from now on fail;
//! - `heal APP[/SERVICE]`: they run again.

use std::sync::Arc;

use atoll_sdk::protocol::now_ms;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use super::instances::Behaviour;
use super::report::{Line, Tally};

/// A control line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Kill(usize),
    Fail(String),
    Heal(String),
}

/// Reads a control line; the error says what is accepted.
pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["kill", n] => n
            .parse()
            .map(Command::Kill)
            .map_err(|_| format!("kill wants a number of hosts, not {n:?}")),
        ["fail", what] => Ok(Command::Fail(what.to_string())),
        ["heal", what] => Ok(Command::Heal(what.to_string())),
        _ => Err(format!(
            "unknown control line {line:?}: try `kill N`, `fail APP[/SERVICE]` or `heal APP[/SERVICE]`"
        )),
    }
}

/// Does what the control lines say, holding the hosts' tasks (they end
/// when this does).
pub(crate) async fn run(
    mut control: UnboundedReceiver<String>,
    mut hosts: Vec<JoinHandle<()>>,
    behaviour: Arc<Behaviour>,
    tally: Arc<Tally>,
    lines: UnboundedSender<Line>,
) {
    struct AbortAll(Vec<JoinHandle<()>>);
    impl Drop for AbortAll {
        fn drop(&mut self) {
            self.0.iter().for_each(JoinHandle::abort);
        }
    }
    while let Some(line) = control.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let result = match parse(&line) {
            Ok(Command::Kill(n)) => {
                let keep = hosts.len().saturating_sub(n);
                drop(AbortAll(hosts.split_off(keep)));
                let gone = tally.remove_last(n);
                format!("{gone} hosts killed, {} left", hosts.len())
            }
            Ok(Command::Fail(what)) => {
                behaviour.lock_failing().insert(what.clone());
                format!("instances of {what} starting from now fail")
            }
            Ok(Command::Heal(what)) => match behaviour.lock_failing().remove(&what) {
                true => format!("instances of {what} run again"),
                false => format!("{what} was not failing"),
            },
            Err(e) => e,
        };
        let command = line.trim().to_string();
        let _ = lines.send(Line::Control {
            at_ms: now_ms(),
            command,
            result,
        });
    }
    // No more control lines (stdin closed): the hosts run on.
    let _hosts = AbortAll(hosts);
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_are_read_or_refused_with_what_is_accepted() {
        assert_eq!(parse("kill 100"), Ok(Command::Kill(100)));
        assert_eq!(
            parse(" fail shop/web "),
            Ok(Command::Fail("shop/web".into()))
        );
        assert_eq!(parse("heal shop"), Ok(Command::Heal("shop".into())));
        let e = parse("kill some").expect_err("not a number");
        assert!(e.contains("number"), "{e}");
        let e = parse("reboot").expect_err("unknown");
        assert!(e.contains("kill N"), "{e}");
    }
}

//! `atoll completion bash|zsh|fish|elvish|powershell`: the shell's
//! completion script on standard output, generated from the command
//! definitions (so it always matches this binary), e.g.
//! `atoll completion bash > /etc/bash_completion.d/atoll`.

use clap::CommandFactory;

#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for
    shell: clap_complete::Shell,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "atoll", &mut std::io::stdout());
    Ok(())
}

//! Compose `secrets:` and `configs:` on the server: their values kept
//! sealed with the cluster's key ([`vault`]), and handed to the hosts that
//! run a service mounting them ([`answer`]).

pub mod answer;
pub mod cipher;
pub mod vault;

pub use vault::{Declared, Sent, Vault, VaultError};

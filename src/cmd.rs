//! One module per verb.

pub mod cluster;
pub mod compose_files;
pub mod compose_variables;
pub mod config;
pub mod deploy;
pub mod events;
pub mod exec;
pub mod export;
pub mod history;
pub mod host;
pub mod hosts;
pub mod image;
pub mod import;
pub mod logs;
pub mod ls;
pub mod promote;
pub mod ps;
pub mod push;
pub mod rm;
pub mod rollback;
pub mod server;
pub mod servers;
pub mod token;
pub mod top;
pub mod up;

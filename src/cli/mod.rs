//! What only the command line needs: a client of the server's HTTP API and the table `status`
//! prints. Part of the binary, not the library: nothing in the library knows the CLI.

pub mod client;
pub mod table;
pub mod watch;

//! Integration tests: the real relay on port 0, fake robots on loopback that check requests
//! the way the platforms do. One test binary keeps link time down.

mod bad_input;
mod cli;
mod delivery;
mod fixtures;
mod guarantees;
mod hardening;
mod helpers;
mod ingress;
mod process;
mod replay;

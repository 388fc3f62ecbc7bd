//! Integration tests: the real relay on port 0, fake robots on loopback that check requests
//! the way the platforms do. One test binary keeps link time down.

mod admin;
mod bad_input;
mod cli;
mod cluster;
mod delivery;
mod fixtures;
mod guarantees;
mod hardening;
mod helpers;
mod ingress;
mod messages;
mod process;
mod replay;

//! Integration tests: real HTTP requests against each fake robot.
#![allow(dead_code)]

mod common;
mod dingtalk;
mod faults;
mod feishu;
mod server;
mod slack;
mod wecom;

//! Run one unthrottled fake robot for manual testing or load generation.
//!
//! `cargo run -p fake-robot --release --example serve -- feishu TOKEN [SECONDS]`
//! prints the robot URL, serves for SECONDS (default 30), then prints counts.

use fake_robot::{FakeRobot, Platform, RobotOptions};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let platform = match args.next().as_deref() {
        Some("dingtalk") => Platform::Dingtalk,
        Some("wecom") => Platform::Wecom,
        Some("slack") => Platform::Slack,
        _ => Platform::Feishu,
    };
    let token = args.next().unwrap_or_else(|| "token".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    let robot = FakeRobot::start(platform, RobotOptions::new(&token).unthrottled()).await;
    println!("{}", robot.url());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    println!(
        "requests={} accepted={} rejected={}",
        robot.requests(),
        robot.accepted_count(),
        robot.rejected_count()
    );
}

//! The command line: `check`, `render` and `--help` on every command.

use std::path::Path;
use std::process::{Command, Output};

fn relay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitee-relay"));
    cmd.args(args).env_remove("GITEE_RELAY_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_works_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["check", "--help"],
        vec!["render", "--help"],
    ] {
        let o = relay(&args, &[]);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage"), "{args:?}");
    }
}

#[test]
fn check_passes_on_the_shipped_config_with_a_one_line_summary() {
    let o = relay(
        &[
            "check",
            "--config",
            root().join("config.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("ok") && out.contains("4 channel(s)"), "{out}");
}

#[test]
fn check_reports_config_problems_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "sources:\n  gitee:\n    secret: x\n    max_skw: 1h\n",
    )
    .unwrap();
    let o = relay(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("config.yaml:4: sources.gitee.max_skw"), "{t}");
}

#[test]
fn check_reports_a_broken_template_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tpl/slack")).unwrap();
    std::fs::write(
        dir.path().join("tpl/slack/push.hbs"),
        "{ \"text\": \"{{repo.nme}}\" }",
    )
    .unwrap();
    let yaml = std::fs::read_to_string(root().join("config.yaml")).unwrap() + "\ntemplates: tpl\n";
    std::fs::write(dir.path().join("config.yaml"), yaml).unwrap();
    let o = relay(
        &[
            "check",
            "--config",
            dir.path().join("config.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("slack/push.hbs"), "{t}");
    assert!(t.contains("nme"), "{t}");
}

#[test]
fn render_prints_the_exact_body_for_each_platform() {
    let sample = root().join("samples/push.json");
    for platform in ["dingtalk", "wecom", "feishu", "lark", "slack"] {
        let o = relay(
            &["render", "--platform", platform, sample.to_str().unwrap()],
            &[],
        );
        assert!(o.status.success(), "{platform}: {}", text(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        let body: serde_json::Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{platform}: {e}: {out}"));
        assert!(body.is_object());
        assert!(out.contains("acme/app"), "{platform}: {out}");
    }
}

#[test]
fn render_refuses_unknown_platforms_and_events() {
    let sample = root().join("samples/push.json");
    let o = relay(
        &["render", "--platform", "telegram", sample.to_str().unwrap()],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("telegram"));
    let o = relay(
        &[
            "render",
            "--platform",
            "slack",
            "--event",
            "pipeline",
            sample.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("pipeline"));
}

/// The shipped config with `extra` appended (later keys win) in a fresh folder.
fn config_with(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(root().join("config.yaml"))
        .unwrap()
        .replace("timezone: \"+08:00\"", "")
        .replace("people: {}", "");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml + extra).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

fn render_for(config: &str, channel: &str, payload: &Path) -> Output {
    let payload = payload.to_str().unwrap();
    relay(
        &["render", "--config", config, "--channel", channel, payload],
        &[],
    )
}

#[test]
fn render_for_a_channel_uses_its_platform_templates_timezone_and_people() {
    let issue = root().join("samples/issue_assign.json");
    // The config's people: the assignee is pinged the way each channel's platform pings.
    let (_dir, config) =
        config_with("people:\n  bob-wang: { slack: U0BOB, dingtalk: \"13800000002\" }\n");
    let o = render_for(&config, "team-slack", &issue);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("<@U0BOB>"), "{out}");
    let o = relay(
        &["render", "--platform", "slack", issue.to_str().unwrap()],
        &[],
    );
    let plain = String::from_utf8(o.stdout).unwrap();
    assert!(!plain.contains("<@U0BOB>"), "{plain}");
    let o = render_for(&config, "team-dingtalk", &issue);
    let ding: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        ding["at"]["atMobiles"],
        serde_json::json!(["13800000002"]),
        "{ding}"
    );

    // The channel's own template folder and the config's timezone.
    let (dir, config) = config_with("timezone: \"-05:00\"\n");
    std::fs::create_dir_all(dir.path().join("tpl/slack")).unwrap();
    std::fs::write(
        dir.path().join("tpl/slack/push.hbs"),
        "{ \"text\": \"at {{time 1700000000000}} in {{repo.full_name}}\" }",
    )
    .unwrap();
    let config_text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("platform: slack\n", "platform: slack\n    templates: tpl\n");
    std::fs::write(&config, config_text).unwrap();
    let o = render_for(&config, "team-slack", &root().join("samples/push.json"));
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.trim(), r#"{"text":"at 2023-11-14 17:13 in acme/app"}"#);
}

#[test]
fn render_refuses_an_unknown_channel_and_platform_beside_channel() {
    let push = root().join("samples/push.json");
    let config = root().join("config.yaml");
    let config = config.to_str().unwrap();
    let o = render_for(config, "team-irc", &push);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("no channel named `team-irc`") && t.contains("team-slack"),
        "{t}"
    );
    let o = relay(
        &[
            "render",
            "--config",
            config,
            "--channel",
            "team-slack",
            "--platform",
            "slack",
            push.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = relay(&["render", push.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--platform"), "{}", text(&o));
}

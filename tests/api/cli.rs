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

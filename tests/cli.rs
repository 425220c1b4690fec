//! The binary as an operator runs it.

use std::process::Command;

fn switchboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .expect("binary runs")
}

#[test]
fn schemas_lists_every_subject_with_its_id() {
    let out = switchboard(&["schemas"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("switchboard.conversations-switchboard.conversation.MessagePosted"),
        "{text}"
    );
    assert_eq!(
        text.lines().count(),
        1 + switchboard_events::registry::registry().versions().len()
    );
}

#[test]
fn schema_prints_a_schema_standard_tooling_parses() {
    let out = switchboard(&["schema", "2"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["name"], "switchboard.conversation.MessagePosted");
}

#[test]
fn bad_input_gets_a_clear_error_and_a_failing_status() {
    let out = switchboard(&["schema", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no schema has id 999"));
    let out = switchboard(&["schema", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a number"));
    let out = switchboard(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
    let out = switchboard(&["run", "--roles", "edge,teleport"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("teleport") && stderr.contains("projector"),
        "{stderr}"
    );
}

#[test]
fn help_works_on_every_command_and_names_the_roles() {
    let out = switchboard(&["help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in [
        "serve", "run", "config", "token", "schemas", "schema", "version",
    ] {
        assert!(text.contains(command), "help lists {command}: {text}");
    }
    for command in ["serve", "run", "config", "token", "schema"] {
        let out = switchboard(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help exits 0");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example"),
            "{command} --help shows an example: {text}"
        );
    }
    let text = String::from_utf8(switchboard(&["run", "--help"]).stdout).unwrap();
    assert!(
        text.contains("edge, ingest, router, projector, archiver, query"),
        "{text}"
    );
}

#[test]
fn config_prints_the_effective_configuration_with_secrets_masked() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "config",
            "--set",
            "log.backend=kafka",
            "--set",
            "listen.admin=0.0.0.0:9999",
        ])
        .env("SWITCHBOARD_LOG__KAFKA__SASL_PASSWORD", "hunter2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("backend = \"kafka\""), "{text}");
    assert!(text.contains("admin = \"0.0.0.0:9999\""), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

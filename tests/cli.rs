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
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("usage: switchboard"));
}

//! The binary as an operator runs it, and the operator's and auditor's commands end to end on
//! a data directory `serve` wrote and against a running `serve`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Server, get_bytes, request};

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
    assert_eq!(out.status.code(), Some(1), "a usage error exits 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
    let out = switchboard(&["run", "--roles", "edge,teleport"]);
    assert_eq!(out.status.code(), Some(1));
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
        "serve", "run", "config", "token", "schemas", "schema", "version", "replay", "verify",
        "export", "rebuild", "archive",
    ] {
        assert!(text.contains(command), "help lists {command}: {text}");
    }
    for command in [
        "serve", "run", "config", "token", "schema", "replay", "verify", "export", "rebuild",
        "archive",
    ] {
        let out = switchboard(&[command, "--help"]);
        assert!(out.status.success(), "{command} --help exits 0");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example"),
            "{command} --help shows an example: {text}"
        );
    }
    for command in ["replay", "verify", "export", "rebuild", "archive"] {
        let text = String::from_utf8(switchboard(&[command, "--help"]).stdout).unwrap();
        for code in [
            "Exit codes",
            "0  done",
            "1  usage",
            "2  a check failed",
            "3  I/O",
            "4  the",
        ] {
            assert!(
                text.contains(code),
                "{command} --help documents {code:?}: {text}"
            );
        }
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

const TENANT_REPLAY: &str = "/v1/replay?from=0&to=9223372036854775807";

/// Runs the binary (without the test run's `SWITCHBOARD_*` variables).
fn cli(args: &[&str]) -> std::process::Output {
    support::switchboard().args(args).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Two customers' conversations with a few messages each; their ids.
fn write_traffic(server: &Server, data: &Path) -> Vec<String> {
    let mut conversations = Vec::new();
    for customer in ["cust-1", "cust-2"] {
        let token = support::token(data, "customer", customer);
        let (status, opened) = request(
            &server.http,
            "POST",
            "/v1/conversations",
            Some(&token),
            &format!(r#"{{"customer_id":"{customer}","channel":"web"}}"#),
        );
        assert_eq!(status, 201, "{opened}");
        let id = opened["conversation_id"].as_str().unwrap().to_owned();
        for n in 0..3 {
            let (status, ack) = request(
                &server.http,
                "POST",
                &format!("/v1/conversations/{id}/commands"),
                Some(&token),
                &format!(
                    r#"{{"type":"post_message","client_msg_id":"m{n}","body":"message {n} of {customer}"}}"#
                ),
            );
            assert_eq!(status, 200, "{ack}");
        }
        conversations.push(id);
    }
    conversations
}

/// The tenant replay once projection has settled: every message there, and the same twice in
/// a row (the router may still append an event of its own).
fn settled_replay(server: &Server, auditor: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Vec::new();
    loop {
        let (status, body) = get_bytes(&server.query, TENANT_REPLAY, auditor);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let messages = String::from_utf8_lossy(&body)
            .matches("MessagePosted")
            .count();
        if messages >= 6 && body == last {
            return body;
        }
        assert!(Instant::now() < deadline, "projection settles");
        last = body;
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Rewrites the value of the record holding `seq` of `conversation` in the log's segment files
/// (one byte near its end), recomputing the record's checksum as a tamperer who knows the
/// format would: the log serves it, only the hash chain can tell.
fn tamper(data: &Path, conversation: &str, seq: u64) {
    let topic = data.join("log/topics/switchboard.conversations");
    for partition in std::fs::read_dir(&topic).unwrap() {
        let partition = partition.unwrap().path();
        if !partition.is_dir() {
            continue;
        }
        for segment in std::fs::read_dir(&partition).unwrap() {
            let path = segment.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("log") {
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            let mut at = 8;
            while at + 8 <= bytes.len() {
                let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                let body = at + 8..at + 8 + len;
                let key_len =
                    u32::from_le_bytes(bytes[body.start + 16..body.start + 20].try_into().unwrap())
                        as usize;
                let key = body.start + 20..body.start + 20 + key_len;
                let value_len =
                    u32::from_le_bytes(bytes[key.end..key.end + 4].try_into().unwrap()) as usize;
                let value = key.end + 4..key.end + 4 + value_len;
                let head = switchboard_events::chain::read_head(&bytes[value.clone()]);
                if &bytes[key] == conversation.as_bytes() && head.unwrap().seq.0 == seq {
                    bytes[value.end - 1] ^= 0x01;
                    let crc = crc32c::crc32c(&bytes[body.clone()]);
                    bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
                    std::fs::write(&path, &bytes).unwrap();
                    return;
                }
                at = body.end;
            }
        }
    }
    panic!("no record of {conversation} seq {seq} in the log");
}

#[test]
fn replay_verify_export_and_rebuild_work_offline_and_online_with_the_same_bytes() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let auditor = support::token(data.path(), "auditor", "audit-1");
    let mut server = Server::start(data.path(), &[]);
    let conversations = write_traffic(&server, data.path());
    let first = &conversations[0];

    // What the query API answers while it runs, once the read models hold every event (a
    // replay reads the log for what they lack, in other chunks).
    let tenant_replay = settled_replay(&server, &auditor);
    std::thread::sleep(Duration::from_millis(500));
    let conversation_replay = get_bytes(
        &server.query,
        &format!("/v1/conversations/{first}/replay"),
        &auditor,
    )
    .1;
    let avro_export = get_bytes(
        &server.query,
        "/v1/export?from=0&to=9223372036854775807&format=avro",
        &auditor,
    )
    .1;
    assert!(
        avro_export.starts_with(b"Obj\x01"),
        "an Avro container file"
    );

    // Online, the CLI writes what the API answers.
    let url = format!("http://{}", server.query);
    let online = cli(&["replay", "--url", &url, "--token", &auditor]);
    assert!(online.status.success(), "{}", stderr(&online));
    assert_eq!(online.stdout, tenant_replay, "online replay = the API's");
    assert!(
        stderr(&online).contains("of 2 conversations"),
        "{}",
        stderr(&online)
    );
    let online_avro = cli(&[
        "export", "--url", &url, "--token", &auditor, "--format", "avro",
    ]);
    assert!(online_avro.status.success(), "{}", stderr(&online_avro));
    assert_eq!(online_avro.stdout, avro_export, "online export = the API's");
    let online_verify = cli(&["verify", "--url", &url, "--token", &auditor]);
    assert_eq!(
        online_verify.status.code(),
        Some(0),
        "{}",
        stderr(&online_verify)
    );
    let refused = cli(&["verify", "--url", &url, "--token", "nonsense"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));

    // Offline commands refuse a data directory a running serve holds.
    let busy = cli(&["replay", "--data-dir", dir, "--tenant", "acme"]);
    assert_eq!(busy.status.code(), Some(4), "{}", stderr(&busy));
    assert!(
        stderr(&busy).contains("in use by a running `switchboard serve`"),
        "{}",
        stderr(&busy)
    );
    // Killed rather than stopped: the log acknowledged every append durably, and the store's
    // batches are in the operating system's hands once applied.
    assert_eq!(
        settled_replay(&server, &auditor),
        tenant_replay,
        "nothing moved meanwhile"
    );
    server.kill();

    let offline = cli(&["replay", "--data-dir", dir, "--tenant", "acme"]);
    assert!(offline.status.success(), "{}", stderr(&offline));
    assert_eq!(offline.stdout, tenant_replay, "offline replay = the API's");
    let replay_one = cli(&[
        "replay",
        "--data-dir",
        dir,
        "--tenant",
        "acme",
        "--conversation",
        first,
    ]);
    assert_eq!(replay_one.stdout, conversation_replay);
    let exported = data.path().join("acme.avro");
    let offline_avro = cli(&[
        "export",
        "--data-dir",
        dir,
        "--tenant",
        "acme",
        "--format",
        "avro",
        "-o",
        exported.to_str().unwrap(),
    ]);
    assert!(offline_avro.status.success(), "{}", stderr(&offline_avro));
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        avro_export,
        "offline export = the API's"
    );
    let summary = stderr(&offline_avro);
    assert!(summary.contains("events of 2 conversations"), "{summary}");

    let verified = cli(&["verify", "--data-dir", dir, "--tenant", "acme"]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert_eq!(
        verified.stdout, online_verify.stdout,
        "offline verdicts = online"
    );
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout)
            .matches("intact")
            .count(),
        2
    );

    // The projector's rebuild, into a fresh directory, gives the live read models' digest.
    let rebuilt = data.path().join("rebuilt");
    let rebuild = cli(&[
        "rebuild",
        "--data-dir",
        dir,
        "--into",
        rebuilt.to_str().unwrap(),
    ]);
    assert_eq!(rebuild.status.code(), Some(0), "{}", stderr(&rebuild));
    let digest = String::from_utf8_lossy(&rebuild.stdout).trim().to_owned();
    assert_eq!(digest.len(), 64, "{digest}");
    assert!(
        stderr(&rebuild).contains(&format!(
            "data directory's read models have digest {digest}: equal"
        )),
        "{}",
        stderr(&rebuild)
    );
    let again = cli(&[
        "rebuild",
        "--data-dir",
        dir,
        "--into",
        rebuilt.to_str().unwrap(),
    ]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a used directory needs --force"
    );
    let in_place = cli(&["rebuild", "--data-dir", dir, "--force"]);
    assert_eq!(in_place.status.code(), Some(0), "{}", stderr(&in_place));
    assert_eq!(String::from_utf8(in_place.stdout).unwrap().trim(), digest);
    let archived = cli(&["archive", "--data-dir", dir]);
    assert_eq!(archived.status.code(), Some(0), "{}", stderr(&archived));
    assert!(
        stderr(&archived).contains("archived 0 conversations"),
        "{}",
        stderr(&archived)
    );

    // One altered frame in the log: verify names it.
    tamper(data.path(), first, 2);
    let broken = cli(&["verify", "--data-dir", dir, "--tenant", "acme"]);
    assert_eq!(broken.status.code(), Some(2), "{}", stderr(&broken));
    let said = stderr(&broken);
    assert!(
        said.contains(&format!(
            "chain broken: tenant acme, conversation {first}, seq 2"
        )),
        "{said}"
    );
    let lines = String::from_utf8(broken.stdout).unwrap();
    assert!(
        lines.contains(r#""copy":"log""#) && lines.contains(r#""verdict":"broken""#),
        "{lines}"
    );
}

#[test]
fn online_commands_wait_out_the_read_rate() {
    let data = tempfile::tempdir().unwrap();
    let auditor = support::token(data.path(), "auditor", "audit-1");
    let server = Server::start(
        data.path(),
        &[
            "--set",
            "query.read_limits.staff.per_second=2.0",
            "--set",
            "query.read_limits.staff.burst=1.0",
        ],
    );
    write_traffic(&server, data.path());
    std::thread::sleep(Duration::from_secs(1));
    // A replay and two verifications: more reads than the bucket holds.
    let url = format!("http://{}", server.query);
    let verified = cli(&["verify", "--url", &url, "--token", &auditor]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    let lines = String::from_utf8(verified.stdout).unwrap();
    assert_eq!(lines.matches(r#""verdict":"intact""#).count(), 2, "{lines}");
}

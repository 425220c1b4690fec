//! `switchboard tenant create|show|set|list`: the platform operator's (and a tenant admin's)
//! commands against a running ingest instance's admin API (`/v1/tenants`). Each prints the
//! answer as JSON.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{Map, Value, json};

use super::online::Online;
use super::{Exit, Failure};

/// What to do with tenants.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (platform operator): its settings are the defaults, the flags and
    /// `--settings`; its widget key is made. Prints the tenant's record.
    Create {
        /// The tenant id.
        tenant: String,
        /// The business's name.
        #[arg(long)]
        name: String,
        /// An origin the widget may run on (https://shop.example); repeat for more.
        #[arg(long = "origin", value_name = "ORIGIN")]
        origins: Vec<String>,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        server: Server,
    },
    /// Print a tenant's record: settings, widget key, who changed them last and when.
    Show {
        tenant: String,
        /// Also print the secret the business's backend signs user ids with.
        #[arg(long)]
        identity_secret: bool,
        #[command(flatten)]
        server: Server,
    },
    /// Change settings: each `--set key=value` (value as JSON, else a string) and the
    /// `--settings` document are merged into the current settings (RFC 7396: null removes).
    Set {
        tenant: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        server: Server,
    },
    /// List the tenants the token may administer.
    List {
        #[command(flatten)]
        server: Server,
    },
}

/// Settings given on the command line.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// A setting, `key=value`: the value is read as JSON when it parses, else as a string
    /// (`--set csat=false`, `--set offline_message="We are closed"`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A JSON document of settings (docs/protocol.md, "Tenant settings"), or @FILE.
    #[arg(long, value_name = "JSON|@FILE")]
    settings: Option<String>,
}

/// The ingest instance to ask.
#[derive(Debug, Args)]
pub struct Server {
    /// The ingest HTTP listener, e.g. http://127.0.0.1:7102.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7102")]
    url: String,
    /// The bearer token: the operator's service token (or a tenant admin's token).
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    token: Option<String>,
    /// Read the bearer token from this file.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

impl Server {
    fn online(&self) -> Result<Online, Failure> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| Failure::usage(anyhow::anyhow!("reading {}: {e}", file.display())))?
                .trim()
                .to_owned(),
            (None, None) => {
                return Err(Failure::usage(anyhow::anyhow!(
                    "give --token or --token-file: a service token for the tenant (`switchboard \
                     token --tenant T --role service --subject operator`) or a tenant admin's"
                )));
            }
        };
        Online::at(&self.url, token, "the ingest HTTP listener")
    }
}

impl SettingsArgs {
    /// The settings as one JSON object.
    fn patch(&self) -> Result<Map<String, Value>, Failure> {
        let mut patch = match &self.settings {
            None => Map::new(),
            Some(text) => {
                let text = match text.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(file)
                        .map_err(|e| Failure::usage(anyhow::anyhow!("reading {file}: {e}")))?,
                    None => text.clone(),
                };
                match serde_json::from_str(&text) {
                    Ok(Value::Object(map)) => map,
                    Ok(_) => {
                        return Err(Failure::usage(anyhow::anyhow!(
                            "--settings must be a JSON object"
                        )));
                    }
                    Err(e) => {
                        return Err(Failure::usage(anyhow::anyhow!(
                            "--settings is not JSON: {e}"
                        )));
                    }
                }
            }
        };
        for pair in &self.set {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Failure::usage(anyhow::anyhow!("--set {pair:?} is not key=value"))
            })?;
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            patch.insert(key.to_owned(), value);
        }
        Ok(patch)
    }
}

pub async fn run(command: TenantCommand) -> Result<Exit, Failure> {
    let answer = match command {
        TenantCommand::Create {
            tenant,
            name,
            origins,
            settings,
            server,
        } => {
            let mut patch = settings.patch()?;
            patch.insert("name".to_owned(), Value::String(name));
            if !origins.is_empty() {
                patch.insert("allowed_origins".to_owned(), json!(origins));
            }
            let body = json!({ "settings": patch });
            call(
                &server,
                Method::POST,
                &format!("/v1/tenants/{tenant}"),
                Some(&body),
            )
            .await?
        }
        TenantCommand::Show {
            tenant,
            identity_secret,
            server,
        } => {
            let mut record =
                call(&server, Method::GET, &format!("/v1/tenants/{tenant}"), None).await?;
            if identity_secret {
                let path = format!("/v1/tenants/{tenant}/identity-secret");
                record["identity_secret"] = call(&server, Method::GET, &path, None).await?;
            }
            record
        }
        TenantCommand::Set {
            tenant,
            settings,
            server,
        } => {
            let patch = Value::Object(settings.patch()?);
            let path = format!("/v1/tenants/{tenant}/settings");
            call(&server, Method::PATCH, &path, Some(&patch)).await?
        }
        TenantCommand::List { server } => call(&server, Method::GET, "/v1/tenants", None).await?,
    };
    let text = serde_json::to_string_pretty(&answer).unwrap_or_default();
    writeln!(std::io::stdout().lock(), "{text}").map_err(Failure::io)?;
    Ok(Exit::Ok)
}

/// One request to the admin API: its JSON answer, or the refusal (a usage failure for a 4xx,
/// I/O otherwise) with the service's code and message.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, Failure> {
    let response = server.online()?.send(method.clone(), path, body).await?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| Failure::io(anyhow::anyhow!("reading the answer to {path}: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({"code": "unreadable", "message": String::from_utf8_lossy(&bytes)}),
    );
    if status.is_success() {
        return Ok(value);
    }
    let error = anyhow::anyhow!(
        "{method} {path} answered {status}: {} ({})",
        value["message"].as_str().unwrap_or_default(),
        value["code"].as_str().unwrap_or_default()
    );
    Err(if status.is_client_error() {
        Failure::usage(error)
    } else {
        Failure::io(error)
    })
}

//! The commands against a running query service: its HTTP API's replay, export and verify
//! endpoints, whose bodies are written as they arrive. The tenant is the token's.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use switchboard_events::chain;
use switchboard_query::Scope;
use switchboard_query::export::Format;

use super::progress::{Progress, Summary};
use super::{Exit, Failure, Job, ScopeArgs, Target, Verdicts};

/// Times a read refused for the rate is tried again.
const RATE_RETRIES: u32 = 5;

/// A query service and the token to ask it with.
#[derive(Debug)]
pub struct Online {
    /// `host:port`.
    authority: String,
    token: String,
}

impl Online {
    pub fn new(target: &Target) -> Result<Self, Failure> {
        let token = match (&target.token, &target.token_file) {
            (Some(token), _) => token.clone(),
            (None, Some(file)) => read_token(file)?,
            (None, None) => {
                return Err(Failure::usage(anyhow::anyhow!(
                    "--url needs --token or --token-file (an auditor's token, `switchboard token \
                     --role auditor` signs one)"
                )));
            }
        };
        Self::at(
            target.url.as_deref().unwrap_or_default(),
            token,
            "the query service's HTTP listener",
        )
    }

    /// A service at `url` (`http://host:port`, `listener` says which), asked with `token`.
    pub fn at(url: &str, token: String, listener: &str) -> Result<Self, Failure> {
        let authority = url
            .strip_prefix("http://")
            .ok_or_else(|| {
                Failure::usage(anyhow::anyhow!(
                    "--url {url:?} must be http://host:port ({listener})"
                ))
            })?
            .trim_end_matches('/')
            .to_owned();
        Ok(Self { authority, token })
    }

    /// Sends a GET and answers the response once its status is a success; a refusal becomes
    /// a usage failure carrying the service's error message. A read rate refusal (429) waits
    /// as long as `retry-after` says and tries again, a few times.
    async fn get(&self, path: &str) -> Result<Response<Incoming>, Failure> {
        let mut tries = 0;
        loop {
            match self.get_once(path).await? {
                Ok(response) => return Ok(response),
                Err(wait) if tries < RATE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(_) => {
                    return Err(Failure::io(anyhow::anyhow!(
                        "the query service kept refusing {path} for the read rate (429)"
                    )));
                }
            }
        }
    }

    /// One GET: the response, or how long the service asks to wait (429).
    async fn get_once(&self, path: &str) -> Result<Result<Response<Incoming>, Duration>, Failure> {
        let response = self.send(Method::GET, path, None).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(response));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            return Ok(Err(Duration::from_secs(seconds)));
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        let error = anyhow::anyhow!("the query service answered {status} to {path}: {message}");
        Err(if status.is_client_error() {
            Failure::usage(error)
        } else {
            Failure::io(error)
        })
    }

    /// Sends one request (with a JSON body, when given) and answers the response, whatever its
    /// status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<&Value>,
    ) -> Result<Response<Incoming>, Failure> {
        let unreachable = |e: &dyn std::fmt::Display| {
            Failure::io(anyhow::anyhow!(
                "cannot reach http://{}: {e}",
                self.authority
            ))
        };
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(connection);
        let body = json.map(Value::to_string).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            );
        if json.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::usage(anyhow::anyhow!("building the request: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))
    }

    /// Hands each piece of a response body to `each`, failing when the body ends early (the
    /// service aborts a replay that fails half-way).
    async fn body(
        response: Response<Incoming>,
        mut each: impl FnMut(&Bytes) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Failure::io(anyhow::anyhow!(
                    "the query service's answer ended early: {e}"
                ))
            })?;
            if let Ok(data) = frame.into_data() {
                each(&data)?;
            }
        }
        Ok(())
    }

    pub async fn stream(
        &self,
        scope: &ScopeArgs,
        job: Job,
        out: &mut dyn Write,
    ) -> Result<Summary, Failure> {
        let path = match job {
            Job::Replay => path(&scope.scope(), "replay", None),
            Job::Export(format) => path(&scope.scope(), "export", Some(format)),
        };
        let response = self.get(&path).await?;
        let progress = Progress::spinner(match job {
            Job::Replay => "replaying",
            Job::Export(_) => "exporting",
        });
        let mut lines =
            (job == Job::Replay || job == Job::Export(Format::Ndjson)).then(LineHeads::default);
        let mut progress = match lines {
            Some(_) => progress,
            None => progress.uncounted(),
        };
        Self::body(response, |data| {
            out.write_all(data)
                .map_err(|e| Failure::io(anyhow::anyhow!("writing the output: {e}")))?;
            progress.add(None, 0, data.len() as u64);
            if let Some(lines) = &mut lines {
                lines.feed(data, |_, conversation| {
                    progress.add(Some(conversation), 1, 0);
                });
            }
            Ok(())
        })
        .await?;
        Ok(progress.finish())
    }

    /// The tenant and conversations of the scope, in replay order, from the replay's lines.
    async fn conversations(&self, scope: &ScopeArgs) -> Result<Vec<(String, String)>, Failure> {
        let response = self.get(&path(&scope.scope(), "replay", None)).await?;
        let mut lines = LineHeads::default();
        let mut found: Vec<(String, String)> = Vec::new();
        Self::body(response, |data| {
            lines.feed(data, |tenant, conversation| {
                if found.last().is_none_or(|(_, c)| c != conversation) {
                    found.push((tenant.to_owned(), conversation.to_owned()));
                }
            });
            Ok(())
        })
        .await?;
        Ok(found)
    }

    pub async fn verify(&self, scope: &ScopeArgs) -> Result<Exit, Failure> {
        let conversations = self.conversations(scope).await?;
        let mut progress = Progress::spinner("verifying");
        let mut verdicts = Verdicts::default();
        for (tenant, conversation) in &conversations {
            let response = self
                .get(&format!("/v1/conversations/{conversation}/verify"))
                .await?;
            let mut body = Vec::new();
            Self::body(response, |data| {
                body.extend_from_slice(data);
                Ok(())
            })
            .await?;
            let verdict: Value = serde_json::from_slice(&body)
                .map_err(|e| Failure::io(anyhow::anyhow!("the verdict of {conversation}: {e}")))?;
            let events = verdict["events"].as_u64().unwrap_or(0);
            verdicts.push(tenant, conversation, verdict, None)?;
            progress.add(Some(conversation), events, 0);
        }
        Ok(verdicts.finish(progress.finish()))
    }
}

fn read_token(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map(|t| t.trim().to_owned())
        .map_err(|e| Failure::io(anyhow::anyhow!("reading {}: {e}", file.display())))
}

/// The API path of a replay or export of `scope`.
fn path(scope: &Scope, what: &str, format: Option<Format>) -> String {
    let format = match format {
        None => String::new(),
        Some(Format::Ndjson) => "format=ndjson".to_owned(),
        Some(Format::Avro) => "format=avro".to_owned(),
    };
    match scope {
        Scope::Conversation(id) if format.is_empty() => format!("/v1/conversations/{id}/{what}"),
        Scope::Conversation(id) => format!("/v1/conversations/{id}/{what}?{format}"),
        Scope::Tenant { from, to } => {
            let and = if format.is_empty() { "" } else { "&" };
            format!(
                "/v1/{what}?from={}&to={}{and}{format}",
                from.as_micros(),
                to.as_micros()
            )
        }
        Scope::Settings => format!("/v1/settings/{what}"),
    }
}

/// Reads the tenant and conversation of each NDJSON audit line from its frame's head, across
/// the pieces a body arrives in.
#[derive(Debug, Default)]
struct LineHeads {
    partial: Vec<u8>,
}

impl LineHeads {
    fn feed(&mut self, data: &[u8], mut each: impl FnMut(&str, &str)) {
        self.partial.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + end];
            if let Some(head) = frame_head(line) {
                each(head.tenant_id.as_str(), &head.stream_id);
            }
            start += end + 1;
        }
        self.partial.drain(..start);
    }
}

fn frame_head(line: &[u8]) -> Option<switchboard_events::envelope::EnvelopeHead> {
    let line = std::str::from_utf8(line).ok()?;
    let hex = line.rsplit_once("\"frame\":\"")?.1.strip_suffix("\"}")?;
    chain::read_head(&switchboard_events::hex::decode(hex)?).ok()
}

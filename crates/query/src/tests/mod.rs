//! A populated store behind the real service: two tenants with the sample conversation each,
//! sealed under the store's own data keys, projected by the real projector; tokens for every
//! role of either tenant.

mod archive;
mod audit;
mod cache;
mod grpc;
mod http;
mod tokens;

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use switchboard_events::conversation::ConversationPayload;
use switchboard_events::id::{ConversationId, PrincipalId, TenantId};
use switchboard_events::personal::{DataKey, Sealed};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{
    IssuerKeys, Tenants, TokenConfig, TokenIssuer, TokenVerifier, now_seconds,
};
use switchboard_events::{ChainHash, ConversationEvent, Topic, fixtures};
use switchboard_log::Record;
use switchboard_projector::PartitionProjector;
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::LogPartition;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use tower::ServiceExt;

use crate::{CacheConfig, QueryService};

const ISSUER: &str = "switchboard-tests";
/// Acme's own identity provider, trusted for acme only.
pub(crate) const ACME_IDP: &str = "https://id.acme.test";
const AUDIENCE: &str = "switchboard";

static OWN_KEYS: LazyLock<IssuerKeys> =
    LazyLock::new(|| IssuerKeys::generate(now_seconds()).unwrap());
static ACME_KEYS: LazyLock<IssuerKeys> =
    LazyLock::new(|| IssuerKeys::generate(now_seconds()).unwrap());

pub(crate) fn issuer() -> TokenIssuer {
    TokenIssuer::new(&OWN_KEYS, ISSUER, AUDIENCE)
}

/// Trusts the instance's issuer for every tenant and acme's provider for acme.
pub(crate) fn verifier() -> TokenVerifier {
    let verifier = TokenVerifier::new(&TokenConfig {
        audience: AUDIENCE.to_owned(),
        ..TokenConfig::default()
    });
    verifier
        .trust(ISSUER, Tenants::All, &OWN_KEYS.jwks())
        .unwrap();
    let acme = Tenants::only([TenantId::new("acme").unwrap()]);
    verifier.trust(ACME_IDP, acme, &ACME_KEYS.jwks()).unwrap();
    verifier
}

/// A token from acme's provider, whatever tenant it claims.
pub(crate) fn acme_idp_token(tenant: &str, role: Role, subject: &str) -> String {
    let principal = Principal::new(
        TenantId::new(tenant).unwrap(),
        role,
        PrincipalId::new(subject).unwrap(),
    );
    TokenIssuer::new(&ACME_KEYS, ACME_IDP, AUDIENCE)
        .issue(&principal, now_seconds() + 600)
        .unwrap()
}

pub(crate) fn token(tenant: &str, role: Role, subject: &str) -> String {
    let principal = Principal::new(
        TenantId::new(tenant).unwrap(),
        role,
        PrincipalId::new(subject).unwrap(),
    );
    issuer().issue(&principal, now_seconds() + 600).unwrap()
}

fn reseal(sealed: &mut Sealed, key: &DataKey, tenant: &TenantId) {
    let text = sealed
        .open(&fixtures::data_key(), &fixtures::tenant())
        .unwrap();
    *sealed = Sealed::seal(key, tenant, &sealed.key_id, &text).unwrap();
}

/// The sample conversation under `tenant` and `id`, sealed with `key`, chained afresh.
pub(crate) fn history(tenant: &str, id: &str, key: &DataKey) -> Vec<(ConversationEvent, Vec<u8>)> {
    let tenant = TenantId::new(tenant).unwrap();
    let id = ConversationId::new(id).unwrap();
    let mut prev = ChainHash::GENESIS;
    fixtures::conversation_history()
        .into_iter()
        .map(|(mut event, _)| {
            event.envelope.tenant_id = tenant.clone();
            event.envelope.conversation_id = id.clone();
            match &mut event.payload {
                ConversationPayload::Opened(p) => {
                    for s in [&mut p.customer_name, &mut p.customer_email]
                        .into_iter()
                        .flatten()
                    {
                        reseal(s, key, &tenant);
                    }
                }
                ConversationPayload::MessagePosted(p) => reseal(&mut p.body, key, &tenant),
                ConversationPayload::MessageEdited(p) => reseal(&mut p.body, key, &tenant),
                ConversationPayload::Rated(p) => {
                    if let Some(s) = &mut p.comment {
                        reseal(s, key, &tenant);
                    }
                }
                _ => {}
            }
            let frame = event.encode_chained(prev).unwrap();
            prev = event.envelope.hash;
            (event, frame)
        })
        .collect()
}

pub(crate) fn records(frames: &[(ConversationEvent, Vec<u8>)]) -> Vec<Record> {
    frames
        .iter()
        .enumerate()
        .map(|(i, (event, frame))| Record {
            partition: 0,
            offset: i as u64,
            key: event.envelope.conversation_id.as_str().as_bytes().to_vec(),
            value: frame.clone(),
            headers: vec![],
            timestamp_ms: event.envelope.occurred_at.as_micros() / 1000,
        })
        .collect()
}

pub(crate) async fn project(store: &Arc<dyn ReadModels>, records: &[Record]) {
    let source = LogPartition::new(Topic::Conversations, 0);
    let mut projector = PartitionProjector::open(store.clone(), "tests", source)
        .await
        .unwrap();
    let projected = projector.project(records).await.unwrap();
    store.apply(&projected.batch).await.unwrap();
}

/// Two tenants: `acme` with conversations `conv-a` and `conv-a2`, `globex` with `conv-b`,
/// all of customer `cust-1`.
pub(crate) struct World {
    pub _dir: tempfile::TempDir,
    pub store: Arc<dyn ReadModels>,
    pub service: Arc<QueryService>,
    pub router: Router,
    /// The service's verifier: clones share their issuers, so trusting or rotating here
    /// reaches the service.
    pub verifier: TokenVerifier,
}

impl World {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ReadModels> =
            Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap());
        let mut all = Vec::new();
        for (tenant, conversation) in [
            ("acme", "conv-a"),
            ("acme", "conv-a2"),
            ("globex", "conv-b"),
        ] {
            let tenant_id = TenantId::new(tenant).unwrap();
            let key = store
                .create_data_key(&tenant_id, &fixtures::customer())
                .await
                .unwrap();
            all.extend(history(tenant, conversation, &key));
        }
        project(&store, &records(&all)).await;
        Self::over(dir, store)
    }

    pub fn over(dir: tempfile::TempDir, store: Arc<dyn ReadModels>) -> Self {
        let verifier = verifier();
        let service = Arc::new(QueryService::new(
            store.clone(),
            verifier.clone(),
            &CacheConfig::default(),
        ));
        let router = crate::http::router(service.clone());
        Self {
            _dir: dir,
            store,
            service,
            router,
            verifier,
        }
    }

    /// The same store behind a service reading at `limits`.
    pub fn with_read_limits(mut self, limits: crate::access::ReadLimits) -> Self {
        let service = QueryService::new(self.store.clone(), verifier(), &CacheConfig::default())
            .with_read_limits(limits);
        self.service = Arc::new(service);
        self.router = crate::http::router(self.service.clone());
        self
    }

    /// GET `uri` with `token`, the status and the body.
    pub async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, Vec<u8>) {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body.to_vec())
    }

    pub async fn json(&self, uri: &str, token: &str) -> Value {
        let (status, body) = self.get(uri, Some(token)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap()
    }
}

/// One GET over a kept-alive HTTP/1.1 connection: the status and the body.
pub(crate) async fn raw_get(
    stream: &mut tokio::net::TcpStream,
    path: &str,
    token: Option<&str>,
) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nhost: query\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-response");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-body");
        buffer.extend_from_slice(&chunk[..n]);
    }
    (status, buffer[header_end..header_end + length].to_vec())
}

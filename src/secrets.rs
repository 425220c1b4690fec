//! The instance's own secrets under the data directory: its signing keys and the optional
//! shared HS256 secret; the one verifier every role uses; development tokens signed with them
//! (`crates/events/src/token.md` is the design).

use std::path::Path;

use anyhow::Context;
use switchboard_events::token::{
    IssuerKeys, Tenants, TokenIssuer, TokenVerifier, now_seconds, parse_jwks,
};
use switchboard_ingest::api::KeyDir;

use crate::config::Config;

/// The instance's signing keys: loaded from `auth.keys_dir` (`data_dir/keys`), the first made
/// on first start, keys retired longer than any token lives dropped.
pub fn instance_keys(config: &Config) -> anyhow::Result<IssuerKeys> {
    let dir = config
        .auth
        .keys_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("keys"));
    let keep_for = config.auth.token_config().keep_retired_keys_for();
    KeyDir::new(&dir)
        .load_or_create(now_seconds(), keep_for)
        .with_context(|| format!("loading the signing keys in {}", dir.display()))
}

/// The verifier of every role: the instance's issuer for every tenant with its keys (and the
/// shared secret, when one is configured), and each `auth.trusted` issuer for its tenants with
/// the keys of its JWKS file.
pub fn verifier(config: &Config) -> anyhow::Result<TokenVerifier> {
    let auth = &config.auth;
    let verifier = TokenVerifier::new(&auth.token_config());
    verifier.trust(&auth.issuer, Tenants::All, &instance_keys(config)?.jwks())?;
    if auth.jwt_secret_file.is_some() {
        verifier.accept_secret(&auth.issuer, &jwt_secret(config)?)?;
    }
    for trusted in &auth.trusted {
        let path = &trusted.jwks_file;
        let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let jwks = parse_jwks(&json).with_context(|| format!("reading {}", path.display()))?;
        let tenants = Tenants::only(trusted.tenants.iter().cloned());
        verifier
            .trust(&trusted.issuer, tenants, &jwks)
            .with_context(|| format!("trusting issuer {:?}", trusted.issuer))?;
    }
    Ok(verifier)
}

/// The shared HS256 secret of `auth.jwt_secret_file`: read from its file, or made on first
/// start.
fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    let path = config
        .auth
        .jwt_secret_file
        .clone()
        .context("auth.jwt_secret_file is not set")?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().as_bytes().to_vec());
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the token secret: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("creating {}", path.display()))
}

/// A development token for `principal`, signed with the shared secret when one is
/// configured, else with the instance's active key.
pub fn issue_token(
    config: &Config,
    principal: &switchboard_events::principal::Principal,
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    let auth = &config.auth;
    let issuer = if auth.jwt_secret_file.is_some() {
        TokenIssuer::hs256(&jwt_secret(config)?, &auth.issuer, &auth.audience)
    } else {
        TokenIssuer::new(&instance_keys(config)?, &auth.issuer, &auth.audience)
    };
    Ok(issuer.issue(principal, now_seconds() + ttl_seconds)?)
}

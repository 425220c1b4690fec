//! The instance's own secrets under the data directory, and development tokens signed with
//! them.

use std::path::Path;

use anyhow::Context;
use switchboard_events::token::TokenIssuer;

use crate::config::Config;

/// The HS256 secret of end-user tokens: read from its file, or made on first start.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    let path = config
        .auth
        .jwt_secret_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("secrets").join("jwt-hs256.key"));
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

/// A development token for `principal`, signed with the instance's secret.
pub fn issue_token(
    config: &Config,
    principal: &switchboard_events::principal::Principal,
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    let issuer = TokenIssuer::hs256(
        &jwt_secret(config)?,
        &config.auth.issuer,
        &config.auth.audience,
    );
    Ok(issuer.issue(
        principal,
        switchboard_events::token::now_seconds() + ttl_seconds,
    )?)
}

//! The instance's own secrets under the data directory: its signing keys, the optional shared
//! HS256 secret, the session secret of visitor sessions and the store's key-encryption keys, each read from its file (made on first
//! start when it may be) or given in the configuration; the one verifier every role uses;
//! development tokens signed with them (`crates/events/src/token.md` is the design). Secret
//! files are 0600, their directories and the data directory 0700.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use switchboard_events::token::{
    IssuerKeys, Tenants, TokenIssuer, TokenVerifier, now_seconds, parse_jwks,
};
use switchboard_events::visitor::SessionSecret;
use switchboard_ingest::api::KeyDir;
use switchboard_store::keywrap::{KeyWrap, LocalKek};

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
    Ok(read_or_create(&path)?.into_bytes())
}

/// The KEK ring of the store: the current KEK (from `store.kek.key`, or its file, made on
/// first start) and every previous one (which must exist).
pub fn kek(config: &Config) -> anyhow::Result<Arc<dyn KeyWrap>> {
    let settings = &config.store.kek;
    let default_file = |id: &str| config.data_dir.join("secrets").join(format!("{id}.kek"));
    let current = match &settings.key {
        Some(hex) => hex.clone(),
        None => read_or_create(
            &settings
                .file
                .clone()
                .unwrap_or_else(|| default_file(&settings.id)),
        )?,
    };
    let material = |id: &str, hex: &str| {
        LocalKek::parse_hex(hex).with_context(|| format!("key-encryption key {id:?}"))
    };
    let mut ring = LocalKek::new(&settings.id, material(&settings.id, &current)?)?;
    for previous in &settings.previous {
        let hex = match (&previous.key, &previous.file) {
            (Some(hex), _) => hex.clone(),
            (None, file) => {
                let path: PathBuf = file.clone().unwrap_or_else(|| default_file(&previous.id));
                std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "reading the previous key-encryption key {:?} from {}",
                        previous.id,
                        path.display()
                    )
                })?
            }
        };
        ring = ring.with_previous(&previous.id, material(&previous.id, &hex)?)?;
    }
    Ok(Arc::new(ring))
}

/// The secret in `path` (trimmed), or 32 random bytes in hex written there, mode 0600, in a
/// private directory.
pub fn read_or_create(path: &Path) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        private_dir(dir)?;
    }
    write_private(path, &secret)?;
    Ok(secret)
}

/// Creates `dir` (and its parents) if missing and makes it readable by its owner only: the
/// data directory holds secrets and customers' data.
#[cfg(unix)]
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))
}

#[cfg(not(unix))]
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
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
    file.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("creating {}", path.display()))
}

/// The session secret visitor sessions and identity verification derive from
/// (`switchboard_events::visitor`): `auth.session_secret_file` (`data_dir/secrets/session.secret`
/// by default), made on first start. Instances that serve the same tenants share the file.
pub fn session_secret(config: &Config) -> anyhow::Result<SessionSecret> {
    let path = config
        .auth
        .session_secret_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("secrets").join("session.secret"));
    let text = read_or_create(&path)?;
    SessionSecret::new(text.into_bytes())
        .with_context(|| format!("reading the session secret in {}", path.display()))
}

/// The issuer that signs the instance's own tokens: with the shared secret when one is
/// configured, else with the active key of the instance's keys.
pub fn token_issuer(config: &Config) -> anyhow::Result<TokenIssuer> {
    let auth = &config.auth;
    Ok(if auth.jwt_secret_file.is_some() {
        TokenIssuer::hs256(&jwt_secret(config)?, &auth.issuer, &auth.audience)
    } else {
        TokenIssuer::new(&instance_keys(config)?, &auth.issuer, &auth.audience)
    })
}

/// The service token an edge or router sends commands to other ingest instances with:
/// `ingest.service_token`, or the contents of `ingest.service_token_file`.
pub fn ingest_service_token(config: &Config) -> anyhow::Result<Option<String>> {
    match (
        &config.ingest.service_token,
        &config.ingest.service_token_file,
    ) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set ingest.service_token or ingest.service_token_file, not both")
        }
        (Some(token), None) => Ok(Some(token.clone())),
        (None, Some(file)) => Ok(Some(read_or_create(file)?)),
        (None, None) => Ok(None),
    }
}

/// A development token for `principal`, signed with the shared secret when one is
/// configured, else with the instance's active key. The instance's other secrets, the KEK and
/// the ingest service token, are made too when they are missing files: so the one-off `token`
/// run of a deployment (ops/compose's `secret` service) makes every secret its roles share.
pub fn issue_token(
    config: &Config,
    principal: &switchboard_events::principal::Principal,
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    kek(config)?;
    ingest_service_token(config)?;
    session_secret(config)?;
    Ok(token_issuer(config)?.issue(principal, now_seconds() + ttl_seconds)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PreviousKek;

    fn config(dir: &Path) -> Config {
        Config {
            data_dir: dir.join("data"),
            ..Config::default()
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_kek_file_is_made_private_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let first = kek(&config).unwrap();
        let file = config.data_dir.join("secrets").join("kek-1.kek");
        #[cfg(unix)]
        {
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(&config.data_dir.join("secrets")), 0o700);
        }
        let wrapped = first.wrap(
            &switchboard_events::personal::DataKey::generate().unwrap(),
            b"c",
        );
        let again = kek(&config).unwrap();
        assert!(again.unwrap(&wrapped.unwrap(), b"c").is_ok(), "same key");
    }

    #[test]
    fn a_kek_from_the_configuration_wins_and_previous_ones_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.store.kek.key = Some("11".repeat(32));
        let ring = kek(&config).unwrap();
        assert_eq!(ring.current_id(), "kek-1");
        assert!(!config.data_dir.join("secrets").exists(), "no file made");

        config.store.kek.previous.push(PreviousKek {
            id: "kek-0".to_owned(),
            file: None,
            key: None,
        });
        let error = format!("{:#}", kek(&config).unwrap_err());
        assert!(error.contains("kek-0"), "{error}");
        config.store.kek.previous[0].key = Some("not hex".to_owned());
        let error = format!("{:#}", kek(&config).unwrap_err());
        assert!(error.contains("64 hex digits"), "{error}");
        config.store.kek.previous[0].key = Some("22".repeat(32));
        assert!(kek(&config).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("data");
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
    }
}

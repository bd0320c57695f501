//! Identity-provider keys: a parsed JWKS ([`KeySet`]) and where it comes
//! from ([`JwksSource`]: a file, or a fetch function for a URL), cached and
//! refreshed when a token names a `kid` the cache does not hold.
//!
//! Each key carries the algorithms it may verify, decided here from the
//! key's own type, curve and `alg` and the configured list — never from a
//! token's header. A token header only picks among those.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::IdentityError;

/// Largest JWKS document read, bytes (real ones are a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys kept from one JWKS.
pub const MAX_KEYS: usize = 64;
/// Longest `kid`, bytes.
pub const MAX_KID_BYTES: usize = 256;
/// Default least time between two JWKS fetches: a flood of tokens naming
/// made-up `kid`s costs the IdP one request per interval, not one each.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);

/// One verification key.
pub struct PublicKey {
    /// `kid`, when the JWKS gives one.
    pub kid: Option<String>,
    /// Algorithms this key may verify: configured ∩ what the key is.
    pub algorithms: Vec<Algorithm>,
    pub(super) key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<PublicKey>,
}

impl KeySet {
    /// Parse a JWKS document, keeping the keys usable for signatures with one
    /// of `allowed`. Keys of unknown types or curves, encryption keys,
    /// symmetric (`oct`) keys and keys too weak or malformed are skipped, so
    /// one odd key does not take its neighbours down; a document that is not
    /// a JWKS at all is an error.
    pub fn parse(json: &[u8], allowed: &[Algorithm]) -> Result<KeySet, IdentityError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(IdentityError::Jwks(format!(
                "the JWKS is {} bytes; at most {MAX_JWKS_BYTES} are read",
                json.len()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(json)
            .map_err(|e| IdentityError::Jwks(format!("not a JWKS (`{{\"keys\": [...]}}`): {e}")))?;
        let keys: Vec<PublicKey> = doc
            .keys
            .into_iter()
            .filter_map(|v| usable_key(v, allowed))
            .take(MAX_KEYS)
            .collect();
        Ok(KeySet { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token names; without a `kid`, the only key there is.
    pub fn find(&self, kid: Option<&str>) -> Option<&PublicKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

fn usable_key(v: serde_json::Value, allowed: &[Algorithm]) -> Option<PublicKey> {
    let declared = match v.get("alg") {
        None => None,
        Some(a) => Some(Algorithm::from_str(a.as_str()?).ok()?),
    };
    let jwk: Jwk = serde_json::from_value(v).ok()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    if jwk
        .common
        .key_id
        .as_ref()
        .is_some_and(|k| k.len() > MAX_KID_BYTES)
    {
        return None;
    }
    // What the key can be, by its own parameters. `oct` never: HMAC with a
    // key published in a JWKS is forgeable by anyone who reads it.
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => return None,
    };
    let algorithms: Vec<Algorithm> = allowed
        .iter()
        .copied()
        .filter(|a| family.contains(a) && declared.is_none_or(|d| d == *a))
        .collect();
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    // Sizes checked here because the backend trusts them: a short Ed25519 `x`
    // would panic inside the verifier (it slices [..32]); RSA below 2048 bits
    // is forgeable in practice, above 4096 the backend refuses anyway.
    let sane = match (key.kind(), &jwk.algorithm) {
        (DecodingKeyKind::RsaModulusExponent { n, e }, _) => {
            let n = strip_zeros(n);
            (256..=512).contains(&n.len()) && !e.is_empty() && e.len() <= 8
        }
        (DecodingKeyKind::SecretOrDer(b), AlgorithmParameters::EllipticCurve(p)) => {
            let coord = if p.curve == EllipticCurve::P256 {
                32
            } else {
                48
            };
            b.len() == 1 + 2 * coord
        }
        (DecodingKeyKind::SecretOrDer(b), AlgorithmParameters::OctetKeyPair(_)) => b.len() == 32,
        _ => false,
    };
    if !sane {
        return None;
    }
    Some(PublicKey {
        kid: jwk.common.key_id,
        algorithms,
        key,
    })
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Fetches the current JWKS document. Called synchronously, at most once per
/// refresh interval, from whichever request met the unknown `kid`; a URL
/// fetcher must bound its own time and size.
pub type JwksFetch = Box<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>;

/// A JWKS that may change: cached, refreshed when a token names a key the
/// cache lacks, at most once per `min_refresh`.
pub struct JwksSource {
    allowed: Vec<Algorithm>,
    fetch: JwksFetch,
    min_refresh: Duration,
    current: RwLock<Arc<KeySet>>,
    /// Last fetch attempt (successful or not); the lock also makes
    /// concurrent refreshes wait for one another instead of all fetching.
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("allowed", &self.allowed)
            .field("min_refresh", &self.min_refresh)
            .finish_non_exhaustive()
    }
}

impl JwksSource {
    /// A source with nothing cached: the first token fetches.
    pub fn new(fetch: JwksFetch, allowed: Vec<Algorithm>, min_refresh: Duration) -> JwksSource {
        JwksSource {
            allowed,
            fetch,
            min_refresh,
            current: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: Mutex::new(None),
        }
    }

    /// A JWKS file: read now (an unreadable file or one without a usable
    /// key is a start-up error), re-read when a token names an unknown `kid`
    /// so a rotated file is picked up without a restart.
    pub fn from_file(path: PathBuf, allowed: Vec<Algorithm>) -> Result<JwksSource, IdentityError> {
        let shown = path.display().to_string();
        let fetch: JwksFetch = Box::new(move || read_bounded(&path));
        let source = JwksSource::new(fetch, allowed, MIN_REFRESH);
        source.refresh(Instant::now())?;
        if source.keys().is_empty() {
            return Err(IdentityError::Jwks(format!(
                "{shown}: no key usable with the configured algorithms"
            )));
        }
        Ok(source)
    }

    /// The keys cached now.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fetch and replace the cached keys, unless a fetch was attempted less
    /// than `min_refresh` before `now`. Ok(false) when rate-limited. A failed
    /// fetch keeps the old keys and still counts against the interval.
    pub fn refresh(&self, now: Instant) -> Result<bool, IdentityError> {
        let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.saturating_duration_since(t) < self.min_refresh) {
            return Ok(false);
        }
        *last = Some(now);
        let doc = (self.fetch)().map_err(IdentityError::Jwks)?;
        let set = KeySet::parse(&doc, &self.allowed)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(true)
    }

    /// The key set holding the key a token names, refreshing once (within
    /// the rate limit) when the cache lacks it.
    pub fn resolve(&self, kid: Option<&str>, now: Instant) -> Result<Arc<KeySet>, IdentityError> {
        let keys = self.keys();
        if keys.find(kid).is_some() {
            return Ok(keys);
        }
        // Another request may have refreshed while this one looked: a
        // rate-limited refresh still re-reads the cache below.
        self.refresh(now)?;
        let keys = self.keys();
        if keys.find(kid).is_some() {
            return Ok(keys);
        }
        Err(match kid {
            Some(kid) => IdentityError::UnknownKey {
                kid: crate::text::terminal_safe(truncate(kid, 64)).into_owned(),
            },
            None => IdentityError::NoKid { keys: keys.len() },
        })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(buf)
}

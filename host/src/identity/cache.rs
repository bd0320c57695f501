//! Verified tokens, remembered until they expire: a signature check costs
//! far more than issue 13's 20 µs per request (RustCrypto, release build,
//! on a busy 2-core machine: RS256-2048 180–240 µs, ES256 590–810 µs,
//! EdDSA 90–150 µs, measured with a 1.7–1.9 KB token), while a client sends the
//! same bearer token on every request until it expires. A hit costs one
//! sha256 of the token and a lookup: 3–5 µs for a 2 KB token, measured.
//!
//! Keyed by sha256 of the whole token, so a hit is the very token that was
//! verified. An entry lives until the token's `exp`, and at most
//! [`MAX_AGE_S`]: a key the IdP withdraws from its JWKS stops vouching for
//! cached tokens within that bound.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

use super::Identity;

/// Longest an entry is served, seconds.
pub const MAX_AGE_S: u64 = 300;
/// Entries kept; when full, expired ones go, and if none has expired the
/// cache starts over (worst case: tokens are verified again).
pub const CAPACITY: usize = 4096;

/// sha256(token) → the identity it proved, until a deadline.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], (Identity, u64)>>,
}

impl VerifiedTokens {
    /// The digest a token is cached under.
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The identity `key` proved, if its deadline is after `now` (unix s).
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Identity> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((id, until)) if now < *until => Some(id.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember `id` for the token with digest `key`, expiring at `exp`.
    pub fn put(&self, key: [u8; 32], id: Identity, exp: u64, now: u64) {
        let until = exp.min(now.saturating_add(MAX_AGE_S));
        if until <= now {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.retain(|_, (_, u)| now < *u);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (id, until));
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

//! Token signatures checked with `ring` instead of RustCrypto.
//!
//! Why: with jsonwebtoken's RustCrypto backend, checking an RS256
//! signature cost about 70 µs here (the `rsa` crate rebuilds its big-number
//! context for every call), ES256 about 270 µs; ring, already in the build
//! for rustls, does the same checks several times faster (figures in
//! docs/performance.md §9; Ed25519 was no faster, so it stays on
//! ed25519-dalek). Everything else about a token — parsing,
//! `exp`/`nbf`/`iss`/`aud`, which algorithms a key may verify — stays with
//! jsonwebtoken; only the signature primitive changes. Signing (only
//! `jitgate dev-idp` and tests sign) and HMAC stay on RustCrypto.
//!
//! The provider is installed process-wide, once, when the first identity
//! provider is built. If an embedder installed its own provider first, that
//! one is kept: verification stays correct, only the speed differs.

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, rust_crypto};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::signature as rs;

/// RustCrypto's provider with ring's signature checks.
static PROVIDER: std::sync::LazyLock<CryptoProvider> =
    std::sync::LazyLock::new(|| CryptoProvider {
        signer_factory: rust_crypto::DEFAULT_PROVIDER.signer_factory,
        verifier_factory: new_verifier,
        key_utils: rust_crypto::DEFAULT_PROVIDER.key_utils.clone(),
    });

/// Install this module's provider as jsonwebtoken's default (once; a provider
/// installed earlier by the embedder is left in place).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::sync::LazyLock::force(&PROVIDER)
            .install_default()
            .is_err()
        {
            tracing::debug!("a JWT crypto provider was already installed; keeping it");
        }
    });
}

enum Key {
    /// RSA from a JWK's `n` and `e`.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        params: &'static rs::RsaParameters,
    },
    /// A DER RSA key, an uncompressed EC point or an Ed25519 key.
    Raw(rs::UnparsedPublicKey<Vec<u8>>),
}

struct RingVerifier {
    algorithm: Algorithm,
    key: Key,
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let checked = match &self.key {
            Key::Rsa { n, e, params } => {
                rs::RsaPublicKeyComponents { n, e }.verify(params, msg, sig)
            }
            Key::Raw(key) => key.verify(msg, sig),
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn rsa_params(alg: Algorithm) -> Option<&'static rs::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &rs::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &rs::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &rs::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &rs::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &rs::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &rs::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let algorithm = *alg;
    // The key's family must be the algorithm's: a token header naming an
    // HMAC or RSA algorithm never gets an EC or Ed key used another way.
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let key = match algorithm.family() {
        AlgorithmFamily::Rsa => {
            let params = rsa_params(algorithm).ok_or(ErrorKind::InvalidAlgorithm)?;
            match key.kind() {
                DecodingKeyKind::RsaModulusExponent { n, e } => Key::Rsa {
                    n: n.clone(),
                    e: e.clone(),
                    params,
                },
                DecodingKeyKind::SecretOrDer(der) => {
                    Key::Raw(rs::UnparsedPublicKey::new(params, der.clone()))
                }
            }
        }
        AlgorithmFamily::Ec => {
            let params: &'static dyn rs::VerificationAlgorithm = match algorithm {
                Algorithm::ES256 => &rs::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &rs::ECDSA_P384_SHA384_FIXED,
                _ => return Err(ErrorKind::InvalidAlgorithm.into()),
            };
            Key::Raw(rs::UnparsedPublicKey::new(
                params,
                key.try_get_as_bytes()?.to_vec(),
            ))
        }
        // Ed25519 stays on ed25519-dalek: measured no faster on ring.
        AlgorithmFamily::Ed => {
            return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key);
        }
        // HMAC is never accepted from an identity provider (jwks.rs keeps
        // no symmetric key); left to RustCrypto for completeness.
        AlgorithmFamily::Hmac => {
            return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key);
        }
    };
    Ok(Box::new(RingVerifier { algorithm, key }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;

    /// ES256 signed with RustCrypto, checked with ring: the good signature
    /// passes, one flipped bit and a signature of other bytes fail, and a
    /// key is never used for another family's algorithm.
    #[test]
    fn ring_accepts_what_rustcrypto_signs_and_refuses_a_flipped_bit() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("p256");
        let enc = EncodingKey::from_ec_der(
            p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&sk)
                .expect("der")
                .as_bytes(),
        );
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::ES256).expect("jwk");
        let dec = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let msg = b"header.payload";
        let sig = (rust_crypto::DEFAULT_PROVIDER.signer_factory)(&Algorithm::ES256, &enc)
            .expect("signer")
            .try_sign(msg)
            .expect("sign");
        let v = new_verifier(&Algorithm::ES256, &dec).expect("verifier");
        assert!(v.verify(msg, &sig).is_ok());
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert!(v.verify(msg, &bad).is_err());
        assert!(v.verify(b"header.other", &sig).is_err());
        assert!(new_verifier(&Algorithm::RS256, &dec).is_err());
        assert!(new_verifier(&Algorithm::EdDSA, &dec).is_err());
    }
}

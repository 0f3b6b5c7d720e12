//! A JWKS document → the set of public keys one issuer may sign with.
//!
//! Only asymmetric keys (RSA, EC, OKP) are accepted from a JWKS: a symmetric
//! (`oct`) key there would let anyone who can read the JWKS mint tokens.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// Key ids starting with this prefix belong to keys whose private half is public.
pub const DEMO_KID_PREFIX: &str = "demo-only";

/// One usable verification key.
pub struct Key {
    pub kid: Option<String>,
    /// The algorithm the JWK pins, if it names one.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

/// The keys of one issuer, indexed by key id.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    all: Vec<Arc<Key>>,
}

/// Why a JWKS document was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("not a JWKS document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("key `{0}` is a demo-only key; only an issuer with `demo_only: true` may use it")]
    DemoKey(String),
    #[error("no usable signing key (RSA, EC or OKP) in the key set")]
    Empty,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document; `allow_demo` admits `demo-only` key ids.
    /// Keys this verifier cannot use are skipped and named in `skipped`.
    pub fn from_jwks(
        json: &[u8],
        allow_demo: bool,
        skipped: &mut Vec<String>,
    ) -> Result<Self, KeysError> {
        let raw: RawSet = serde_json::from_slice(json)?;
        let mut set = KeySet::default();
        for (i, value) in raw.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(j) => j,
                Err(e) => {
                    skipped.push(format!("keys[{i}]: {e}"));
                    continue;
                }
            };
            let kid = jwk.common.key_id.clone();
            let label = kid.clone().unwrap_or_else(|| format!("keys[{i}]"));
            if kid
                .as_deref()
                .is_some_and(|k| k.starts_with(DEMO_KID_PREFIX))
                && !allow_demo
            {
                return Err(KeysError::DemoKey(label));
            }
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                skipped.push(format!("{label}: encryption key"));
                continue;
            }
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                skipped.push(format!("{label}: symmetric key in a public key set"));
                continue;
            }
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(ka) => match signing_alg(ka) {
                    Some(a) => Some(a),
                    None => {
                        skipped.push(format!("{label}: not a signing algorithm"));
                        continue;
                    }
                },
            };
            match DecodingKey::from_jwk(&jwk) {
                Ok(key) => set.insert(Key { kid, alg, key }),
                Err(e) => skipped.push(format!("{label}: {e}")),
            }
        }
        if set.all.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(set)
    }

    fn insert(&mut self, key: Key) {
        let key = Arc::new(key);
        if let Some(kid) = &key.kid {
            self.by_kid.insert(kid.clone(), key.clone());
        }
        self.all.push(key);
    }

    /// The key a token names by `kid`; with no `kid`, the only key, if there is one.
    pub fn find(&self, kid: Option<&str>) -> Lookup<'_> {
        match kid {
            Some(k) => self.by_kid.get(k).map_or(Lookup::UnknownKid, Lookup::Found),
            None if self.all.len() == 1 => {
                self.all.first().map_or(Lookup::UnknownKid, Lookup::Found)
            }
            None => Lookup::Ambiguous,
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// Result of looking a key up.
pub enum Lookup<'a> {
    Found(&'a Arc<Key>),
    UnknownKid,
    Ambiguous,
}

fn signing_alg(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DEMO: &[u8] = include_bytes!("../../examples/quickstart/demo-only/jwks.json");

    #[test]
    fn demo_key_is_refused_unless_issuer_is_demo_only() {
        let err = KeySet::from_jwks(DEMO, false, &mut vec![]).err().unwrap();
        assert!(err.to_string().contains("demo-only-2026"), "{err}");
        assert_eq!(KeySet::from_jwks(DEMO, true, &mut vec![]).unwrap().len(), 1);
    }

    #[test]
    fn symmetric_key_in_jwks_is_skipped() {
        let json = br#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#;
        let mut skipped = vec![];
        assert!(matches!(
            KeySet::from_jwks(json, false, &mut skipped),
            Err(KeysError::Empty)
        ));
        assert!(skipped[0].contains("symmetric"), "{skipped:?}");
    }

    #[test]
    fn token_without_kid_needs_a_single_key() {
        let set = KeySet::from_jwks(DEMO, true, &mut vec![]).unwrap();
        assert!(matches!(set.find(None), Lookup::Found(_)));
        assert!(matches!(set.find(Some("other")), Lookup::UnknownKid));
    }
}

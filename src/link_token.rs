//! Signed links to the web pages: the `token` query parameter of a link warroom posts is an
//! HMAC of the link's path, so a link opens its page and no other. The web pages check tokens;
//! the messages (kickoff, resolution communications) sign the links they contain.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Signs and checks link tokens with the server's key. Cheap to clone.
#[derive(Clone)]
pub struct LinkSigner {
    key: Arc<Vec<u8>>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> Self {
        LinkSigner { key: Arc::new(key) }
    }

    /// The `token` for a link to `path` (the first 128 bits of its HMAC-SHA256, in hex).
    pub fn token(&self, path: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(path.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `token` is the token of `path` (compared in constant time).
    pub fn verify(&self, path: &str, token: &str) -> bool {
        self.token(path).as_bytes().ct_eq(token.as_bytes()).into()
    }

    /// `path` with its token, under `base` (the server's public URL).
    pub fn link(&self, base: &str, path: &str) -> String {
        format!(
            "{}{path}?token={}",
            base.trim_end_matches('/'),
            self.token(path)
        )
    }
}

/// Whether two secrets are equal, compared in constant time.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_path_only() {
        let signer = LinkSigner::new(b"key".to_vec());
        let token = signer.token("/incidents/1");
        assert_eq!(token.len(), 32);
        assert!(signer.verify("/incidents/1", &token));
        assert!(!signer.verify("/incidents/2", &token));
        assert!(!signer.verify("/incidents/1", &token[..31]));
        assert!(!LinkSigner::new(b"other".to_vec()).verify("/incidents/1", &token));
    }

    #[test]
    fn links_carry_their_token() {
        let signer = LinkSigner::new(b"key".to_vec());
        assert_eq!(
            signer.link("https://w.example/", "/incidents/1"),
            format!(
                "https://w.example/incidents/1?token={}",
                signer.token("/incidents/1")
            )
        );
    }
}

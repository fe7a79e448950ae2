//! The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, checked against
//! stored keys rather than a password.
//!
//! `pgwire`'s own SCRAM needs the *salted password*, which is as good as the password for logging
//! in; this one needs only `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and `ServerKey =
//! HMAC(SaltedPassword, "Server Key")`, which cannot be turned back into a token. A user may hold
//! several tokens: they share the user's salt, so one exchange checks the client's proof against
//! each of them and the one that matches says which token (and role) logged in.
//!
//! Channel binding (`SCRAM-SHA-256-PLUS`) is not offered; a client that asks for it (`p=`) is
//! refused, one that could but was not offered it (`y`) is accepted as RFC 5802 says.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};

/// PostgreSQL's default iteration count (what clients expect; a token has 256 bits of entropy, so
/// the count adds nothing to its strength).
pub const ITERATIONS: u32 = 4096;

/// The stored keys of one password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
        .as_ref()
        .to_vec()
}

impl Keys {
    /// The keys of `password` (ASCII: tokens need no SASLprep) with `salt` and `iterations`.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Keys {
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        Keys {
            stored_key: digest::digest(&digest::SHA256, &client_key)
                .as_ref()
                .to_vec(),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }
}

/// A malformed or refused SCRAM message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// The message does not follow the grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding, which is not offered.
    #[error("channel binding (SCRAM-SHA-256-PLUS) is not offered by this server")]
    ChannelBinding,
    /// The nonce or channel binding of the final message does not match the exchange.
    #[error("the SCRAM exchange does not match")]
    Mismatch,
}

/// The exchange after the server's first message, waiting for the client's proof.
#[derive(Debug, Clone)]
pub struct Exchange {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Exchange {
    /// Reads the client's first message and answers it with `salt`, `iterations` and a server
    /// nonce appended to the client's (`server_nonce`, printable, no comma). Returns the exchange
    /// and the server's first message.
    pub fn start(
        client_first: &[u8],
        salt: &[u8],
        iterations: u32,
        server_nonce: &str,
    ) -> Result<(Exchange, String), ScramError> {
        let text =
            std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header = cbind-flag "," [authzid] ","
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
        let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad channel binding flag")),
        }
        let gs2_header = format!("{flag},{authzid},");
        // bare = [reserved-mext ","] username "," nonce ["," extensions]
        let nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("no client nonce"))?;
        let nonce = format!("{nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
        Ok((
            Exchange {
                gs2_header,
                client_first_bare: bare.to_string(),
                server_first: server_first.clone(),
                nonce,
            },
            server_first,
        ))
    }

    /// Reads the client's final message and checks its proof against each of `candidates` (the
    /// keys of the user's usable tokens). Returns the index of the candidate that matched and the
    /// server's final message, `None` when none did (a wrong password).
    pub fn finish(
        &self,
        client_final: &[u8],
        candidates: &[Keys],
    ) -> Result<Option<(usize, String)>, ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no channel binding"))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if binding != STANDARD.encode(&self.gs2_header) || nonce != self.nonce {
            return Err(ScramError::Mismatch);
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        for (i, keys) in candidates.iter().enumerate() {
            let signature = hmac_sha256(&keys.stored_key, auth_message.as_bytes());
            if proof.len() != signature.len() {
                continue;
            }
            let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
            let stored = digest::digest(&digest::SHA256, &client_key);
            if ring_eq(stored.as_ref(), &keys.stored_key) {
                let verifier = hmac_sha256(&keys.server_key, auth_message.as_bytes());
                return Ok(Some((i, format!("v={}", STANDARD.encode(verifier)))));
            }
        }
        Ok(None)
    }
}

/// Constant-time comparison (the proof is a secret-derived value).
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client side, as RFC 5802 computes it, for the tests.
    fn client_final(
        password: &str,
        salt: &[u8],
        server_first: &str,
        bare: &str,
        gs2: &str,
    ) -> String {
        let nonce = server_first
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(ITERATIONS).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(gs2));
        let auth = format!("{bare},{server_first},{without_proof}");
        let sig = hmac_sha256(stored.as_ref(), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    #[test]
    fn rfc7677_example_keys() {
        // RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let (ex, first) = Exchange::start(
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            &salt,
            4096,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let keys = Keys::derive("pencil", &salt, 4096);
        let (i, server_final) = ex
            .finish(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                &[Keys::derive("wrong", &salt, 4096), keys],
            )
            .unwrap()
            .unwrap();
        assert_eq!(i, 1);
        assert_eq!(
            server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn a_wrong_password_matches_no_candidate() {
        let salt = b"0123456789abcdef";
        let keys = Keys::derive("slu_right", salt, ITERATIONS);
        let bare = "n=,r=abc";
        let (ex, first) =
            Exchange::start(format!("n,,{bare}").as_bytes(), salt, ITERATIONS, "xyz").unwrap();
        let wrong = client_final("slu_wrong", salt, &first, bare, "n,,");
        assert_eq!(
            ex.finish(wrong.as_bytes(), std::slice::from_ref(&keys))
                .unwrap(),
            None
        );
        let right = client_final("slu_right", salt, &first, bare, "n,,");
        assert!(ex.finish(right.as_bytes(), &[keys]).unwrap().is_some());
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        let salt = b"s";
        assert_eq!(
            Exchange::start(b"p=tls-server-end-point,,n=,r=a", salt, 1, "b").unwrap_err(),
            ScramError::ChannelBinding
        );
        let bad_firsts: [&[u8]; 6] = [b"", b"n", b"n,,", b"n,,n=u", b"x,,n=,r=a", &[0xff, 0xfe]];
        for bad in bad_firsts {
            assert!(Exchange::start(bad, salt, 1, "b").is_err(), "{bad:?}");
        }
        let (ex, _) = Exchange::start(b"y,,n=,r=a", salt, 1, "b").unwrap();
        let bad_finals: [&[u8]; 4] = [
            b"",
            b"c=biws,r=ab,p=!!",
            b"c=biws,r=zz,p=AAAA",
            b"r=ab,p=AAAA",
        ];
        for bad in bad_finals {
            assert!(ex.finish(bad, &[]).is_err(), "{bad:?}");
        }
    }
}

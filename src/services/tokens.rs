//! JWT HS256 tokens with `sub`, `jti`, `iat`, `exp` (API.md §3). Only HS256 is accepted,
//! and only a token this server could have issued: short, no `crit` extension, valid now.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Secret;
use crate::error::AppError;

/// The claims of a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The token id, for revocation.
    pub jti: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// A verified token: who it names and which token it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The user id (`sub`).
    pub user_id: Uuid,
    /// The token id (`jti`).
    pub jti: Uuid,
    /// Expiry (unix seconds).
    pub exp: i64,
}

/// Longest token accepted; a longer one is refused before it is decoded. Ours are ~250 bytes.
const MAX_TOKEN_BYTES: usize = 4096;
/// How far in the future `iat` may be: the clock skew allowed between nodes.
const IAT_SKEW_SECS: i64 = 60;

/// Issues and verifies tokens with one secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl TokenKeys {
    /// Keys for `secret`; tokens live `lifetime`.
    #[must_use]
    pub fn new(secret: &Secret, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
            lifetime,
        }
    }

    /// How long a new token lives.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new token for `user_id`.
    ///
    /// # Errors
    /// Signing failed (an internal fault).
    pub fn issue(&self, user_id: Uuid) -> Result<(String, Claims), AppError> {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            jti: Uuid::new_v4().to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(format!("cannot sign a token: {e}")))?;
        Ok((token, claims))
    }

    /// Checks size, header, signature, algorithm and the times (`exp`, `nbf`, `iat`); does
    /// not look at revocations or users.
    ///
    /// # Errors
    /// `TOKEN_EXPIRED` for a genuine token past `exp`; `INVALID_TOKEN` for anything else.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, AppError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AppError::InvalidToken);
        }
        // A critical extension this server does not understand must not be ignored (RFC 7515
        // §4.1.11), and it understands none.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::InvalidToken)?;
        if header.crit.is_some() {
            return Err(AppError::InvalidToken);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AppError::TokenExpired,
                _ => AppError::InvalidToken,
            })?;
        let claims = data.claims;
        if claims.iat > chrono::Utc::now().timestamp() + IAT_SKEW_SECS {
            return Err(AppError::InvalidToken);
        }
        let user_id = Uuid::try_parse(&claims.sub).map_err(|_| AppError::InvalidToken)?;
        let jti = Uuid::try_parse(&claims.jti).map_err(|_| AppError::InvalidToken)?;
        Ok(VerifiedToken {
            user_id,
            jti,
            exp: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys() -> TokenKeys {
        let secret = crate::config::Config::from_map(
            &[("JWT_SECRET".to_owned(), "k".repeat(32))]
                .into_iter()
                .collect(),
        )
        .unwrap()
        .jwt_secret;
        TokenKeys::new(&secret, Duration::from_secs(3600))
    }

    /// A token signed with the right key, with this header and these claims.
    fn signed(header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            header,
            claims,
            &EncodingKey::from_secret("k".repeat(32).as_bytes()),
        )
        .unwrap()
    }

    fn claims(extra: &serde_json::Value) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        let mut c = json!({
            "sub": Uuid::now_v7().to_string(),
            "jti": Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + 600,
        });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn a_token_of_ours_passes_and_one_we_would_never_issue_does_not() {
        let keys = keys();
        let hs256 = Header::new(Algorithm::HS256);
        let now = chrono::Utc::now().timestamp();
        assert!(keys.verify(&signed(&hs256, &claims(&json!({})))).is_ok());
        assert!(
            keys.verify(&signed(&hs256, &claims(&json!({"nbf": now - 5}))))
                .is_ok()
        );
        assert!(
            keys.verify(&signed(&hs256, &claims(&json!({"iat": now + 30}))))
                .is_ok(),
            "within the skew"
        );

        let refused = |token: String, why: &str| {
            assert!(
                matches!(keys.verify(&token), Err(AppError::InvalidToken)),
                "{why}"
            );
        };
        refused(
            signed(&hs256, &claims(&json!({"nbf": now + 600}))),
            "nbf in the future",
        );
        refused(
            signed(&hs256, &claims(&json!({"iat": now + 600}))),
            "iat in the future",
        );
        let mut crit = Header::new(Algorithm::HS256);
        crit.crit = Some(vec!["exp".to_owned()]);
        refused(signed(&crit, &claims(&json!({}))), "a crit header");
        let padding = "x".repeat(5000);
        refused(
            signed(&hs256, &claims(&json!({"pad": padding}))),
            "over 4 KiB",
        );
        refused("not.a.token".to_owned(), "garbage");
    }
}

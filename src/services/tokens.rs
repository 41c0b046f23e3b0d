//! JWT HS256 tokens with `sub`, `jti`, `iat`, `exp` (API.md §3). Only HS256 is accepted.

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

    /// Checks signature, algorithm and expiry; does not look at revocations or users.
    ///
    /// # Errors
    /// `TOKEN_EXPIRED` for a genuine token past `exp`; `INVALID_TOKEN` for anything else.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AppError::TokenExpired,
                _ => AppError::InvalidToken,
            })?;
        let claims = data.claims;
        let user_id = Uuid::try_parse(&claims.sub).map_err(|_| AppError::InvalidToken)?;
        let jti = Uuid::try_parse(&claims.jti).map_err(|_| AppError::InvalidToken)?;
        Ok(VerifiedToken {
            user_id,
            jti,
            exp: claims.exp,
        })
    }
}

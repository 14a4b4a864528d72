//! JWT bearer tokens: signature (HS256, RS256 or ES256), issuer, audience and expiry checked.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::AuthError;
use crate::config::{ConfigError, JwtConfig};

#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    client_id: Option<String>,
}

/// Three base64url segments: worth trying as a JWT before the token table.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, ConfigError> {
        let material = config.key_material()?;
        let bad_key = |e: jsonwebtoken::errors::Error| {
            ConfigError::from_message(format!("auth.jwt: unusable key: {e}"))
        };
        let (algorithm, key) = match config.algorithm.as_str() {
            "HS256" => (Algorithm::HS256, DecodingKey::from_secret(&material)),
            "RS256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(&material).map_err(bad_key)?,
            ),
            _ => (
                Algorithm::ES256,
                DecodingKey::from_ec_pem(&material).map_err(bad_key)?,
            ),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = config.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Ok(JwtVerifier { key, validation })
    }

    /// Returns the subject (or client id) of a valid token.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::InvalidJwt(e.to_string()))?;
        Ok(data
            .claims
            .sub
            .or(data.claims.client_id)
            .unwrap_or_else(|| "unknown".into()))
    }
}

//! Registry credentials over the API: `POST /auth` (`docker login`) checks them with
//! the registry, as dockerd does — the client keeps them, not the service — and a
//! pull's `X-Registry-Auth` header carries them for that one request.

use crate::http::{self, ApiError, ApiResult};
use crate::router::Req;
use crate::server::{blocking, State};
use base64::Engine as _;
use hyper::StatusCode;
use oxcart_image::auth::{registry_host, Credentials};
use serde_json::json;
use std::sync::Arc;

/// docker's `registry.AuthConfig`, as clients send it (lower-case keys).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthConfig {
    username: String,
    password: String,
    /// `base64(user:password)`, the form config.json keeps (docker's CLI may send it
    /// instead of the two fields).
    auth: String,
    serveraddress: String,
    identitytoken: String,
}

impl AuthConfig {
    fn credentials(&self) -> ApiResult<Option<Credentials>> {
        if !self.identitytoken.is_empty() {
            return Err(ApiError::not_implemented(
                "identitytoken: OAuth identity tokens are not supported; log in with a password",
            ));
        }
        let (user, pass) = if self.username.is_empty() && !self.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .map_err(|e| ApiError::bad(format!("auth: not base64: {e}")))?;
            let s = String::from_utf8(raw).map_err(|_| ApiError::bad("auth: not UTF-8"))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| ApiError::bad("auth: expected user:password"))?;
            (u.to_string(), p.to_string())
        } else {
            (self.username.clone(), self.password.clone())
        };
        Ok((!user.is_empty()).then_some(Credentials {
            username: user,
            password: pass,
        }))
    }
}

/// `POST /auth`: 200 `Login Succeeded` once the registry accepted the credentials.
pub async fn login(st: Arc<State>, r: Req) -> ApiResult {
    let b = http::read_body(r.req.into_body(), http::MAX_JSON_BODY).await?;
    let a: AuthConfig = crate::containers::parse_docker_json(&b)?;
    let creds = a
        .credentials()?
        .ok_or_else(|| ApiError::bad("username: a user name is required"))?;
    let host = registry_host(&a.serveraddress);
    blocking(move || {
        let client =
            oxcart_image::registry::Client::for_login(&host, &st.opts.pull.insecure, creds)
                .map_err(|e| ApiError::bad(e.to_string()))?;
        client.ping().map_err(|e| {
            // dockerd answers a refused login 401 (errdefs.Unauthenticated); an
            // unreachable registry is its 500.
            let status = match &e {
                oxcart_image::registry::RegistryError::Status {
                    status: 401 | 403, ..
                }
                | oxcart_image::registry::RegistryError::Auth { .. } => StatusCode::UNAUTHORIZED,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError::new(status, format!("login to {host} failed: {e}"))
        })
    })
    .await?;
    Ok(http::json(
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// The credentials of a pull's `X-Registry-Auth` header (base64url of an
/// `AuthConfig`; docker's CLI sends `{}` or nothing when it has none), for `host`.
pub fn from_header(r: &Req, host: &str) -> ApiResult<Option<(String, Credentials)>> {
    let Some(v) = r.req.headers().get("x-registry-auth") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad("X-Registry-Auth: not ASCII"))?
        .trim();
    if v.is_empty() {
        return Ok(None);
    }
    // docker encodes with URL-safe base64; accept the standard alphabet and missing
    // padding too.
    let cleaned: String = v
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .filter(|c| *c != '=')
        .collect();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cleaned)
        .map_err(|e| ApiError::bad(format!("X-Registry-Auth: not base64: {e}")))?;
    let a: AuthConfig = crate::containers::parse_docker_json(&raw)?;
    Ok(a.credentials()?.map(|c| (host.to_string(), c)))
}

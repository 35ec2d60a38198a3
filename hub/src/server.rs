//! The hub's HTTPS server: batch uploads (API) and the web interface for the technical operator.

use std::net::TcpListener;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;

use crate::service::{now, Hub, UploadError};
use crate::web;

/// Name of the session cookie.
const SESSION_COOKIE: &str = "synchro_session";
/// Session lifetime: a working day.
const SESSION_SECONDS: i64 = 8 * 3600;

/// Builds the router (also used in-process by tests).
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/api/v1/batches", post(upload))
        .route("/health", get(|| async { "ok" }))
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(hub)
}

/// The TLS configuration from PEM files, with the ring provider (no OpenSSL, no C toolchain).
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    use anyhow::Context;
    let certs: Vec<_> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert)
            .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?,
    ))
    .collect::<Result<_, _>>()
    .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
    let key_der = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key)
            .with_context(|| format!("cannot read the TLS private key {}", key.display()))?,
    ))
    .with_context(|| format!("{}: not a PEM private key", key.display()))?
    .with_context(|| format!("{}: no private key in this file", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(config),
    ))
}

/// Serves until `handle` is told to shut down. TLS unless `tls` is `None` (reverse proxy).
pub async fn run_with_listener(
    hub: Arc<Hub>,
    listener: TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    handle: axum_server::Handle,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let app = router(hub).into_make_service();
    match tls {
        Some(tls) => {
            axum_server::from_tcp_rustls(listener, tls)
                .handle(handle)
                .serve(app)
                .await
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(app)
                .await
        }
    }
}

fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

async fn upload(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Body) -> Response {
    let limit = (hub.cfg.config.limits.max_batch_mib * 1024 * 1024) as usize;
    // One byte over the limit is enough to know it is too large; the refusal is audited.
    let bytes = axum::body::to_bytes(body, limit + 1)
        .await
        .unwrap_or_else(|_| vec![0u8; limit + 1].into());
    let signature = headers
        .get("synchro-signature")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| "not base64".into())
        });
    match hub
        .accept_upload(&bytes, signature.as_deref(), "operator-upload")
        .await
    {
        Ok(accepted) => {
            // The batch is committed; a linkage run that covers it ends before the reply, so
            // that the operator's next look at the dashboard includes it (batches accepted
            // during a run share the next one). A failure is logged, never undoes the batch.
            if accepted.status == "accepted" {
                if let Some(Err(e)) = hub.process_after_ingest("after-upload").await {
                    tracing::error!(error = %e, "linkage after upload failed; run `synchro-hub process`");
                }
            }
            json_reply(
                StatusCode::OK,
                serde_json::to_value(accepted).unwrap_or_default(),
            )
        }
        Err(UploadError::Refused(r)) => {
            tracing::warn!(code = r.code(), "batch refused");
            json_reply(
                StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                serde_json::json!({"status": "refused", "code": r.code(), "message": r.to_string()}),
            )
        }
        Err(UploadError::Hub(e)) => {
            tracing::error!(error = %e, "hub error while ingesting");
            json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "error", "code": "hub_error", "message": "the hub could not store the batch; nothing was stored, try again later"}),
            )
        }
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Query parameters of pages.
#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    /// `fr` (default) or `en`.
    lang: Option<String>,
}

fn lang(q: &PageQuery) -> web::Lang {
    match q.lang.as_deref() {
        Some("en") => web::Lang::En,
        _ => web::Lang::Fr,
    }
}

async fn dashboard(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let user = match session_token(&headers) {
        Some(t) => hub
            .store
            .session_user(&token_hash(&t), now())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let Some(user) = user else {
        return Redirect::to(&format!("/login?lang={}", lang(&q).code())).into_response();
    };
    match (hub.store.submissions().await, hub.store.operators().await) {
        (Ok(subs), Ok(ops)) => Html(web::dashboard(
            lang(&q),
            &user,
            &hub.cfg.config.territory,
            &ops,
            &subs,
        ))
        .into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

async fn login_page(Query(q): Query<PageQuery>) -> Html<String> {
    Html(web::login(lang(&q), None))
}

/// The login form.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    State(hub): State<Arc<Hub>>,
    Query(q): Query<PageQuery>,
    Form(form): Form<LoginForm>,
) -> Response {
    let hash = hub.store.admin_hash(&form.username).await.ok().flatten();
    let ok = hash.is_some_and(|h| crate::accounts::verify_password(&form.password, &h));
    let details = serde_json::json!({"account": form.username, "success": ok});
    let _ = hub.store.audit("web", "login", details, now()).await;
    let _ = hub.checkpoint().await;
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Html(web::login(lang(&q), Some(()))),
        )
            .into_response();
    }
    let token = crate::accounts::random_token();
    if hub
        .store
        .create_session(&token_hash(&token), &form.username, now() + SESSION_SECONDS)
        .await
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    }
    let secure = if hub.cfg.config.server.plain_http_behind_proxy {
        ""
    } else {
        "; Secure"
    };
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, format!("/?lang={}", lang(&q).code()))
        .header(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}{secure}"),
        )
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

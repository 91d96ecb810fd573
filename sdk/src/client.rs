//! A typed client of the server's HTTP API. Every call is bounded by a
//! timeout and fails with an error that says which server it could not
//! reach or what the server answered.

use crate::api::{AppView, DeployRequest, DeployResponse, ErrorBody, HostView, InstanceView};
use crate::protocol::Event;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the atoll server at {url}: {message} (is `atoll server` or `atoll up` running? set --server or ATOLL_SERVER)"
    )]
    Unreachable { url: String, message: String },
    #[error("{}", render_api_error(.body))]
    Api { status: u16, body: ErrorBody },
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
}

fn render_api_error(body: &ErrorBody) -> String {
    let mut s = body.error.clone();
    for d in &body.details {
        s.push_str("\n  ");
        s.push_str(d);
    }
    s
}

/// How `atoll exec -i/-t` runs its command.
#[derive(Debug, Clone, Copy)]
pub struct ExecSessionOptions {
    /// Give it a terminal of `rows` × `cols`.
    pub tty: bool,
    /// Pass our input to it.
    pub stdin: bool,
    pub rows: u16,
    pub cols: u16,
}

/// The error a server's answer other than success says.
async fn api_error(resp: reqwest::Response) -> ClientError {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or(ErrorBody {
        error: format!("server answered {status}: {}", text.trim()),
        details: vec![],
    });
    ClientError::Api { status, body }
}

/// What `atoll logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Lines from the end of each instance's log (all when `None`).
    pub tail: Option<usize>,
    /// Keep streaming new lines.
    pub follow: bool,
    /// Only lines written since (Unix ms).
    pub since_ms: Option<u64>,
    /// Each line with the time it was written.
    pub timestamps: bool,
}

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// An error and its causes, `a: b: c`: reqwest says "error sending
/// request" and keeps why (a refused connection, an unknown issuer) in
/// its sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// How the client proves who it is and whom it trusts.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Sent as `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// The cluster CA (PEM): the only issuer an HTTPS server is trusted
    /// by.
    pub ca_pem: Option<Vec<u8>>,
}

/// TLS settings trusting `ca_pem` only (none: no HTTPS server is trusted).
fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the CA file is not PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA file holds no usable certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the CA file holds no certificate".into());
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Client {
    pub fn new(base: &str) -> Result<Client, ClientError> {
        Client::with(base, Credentials::default())
    }

    /// A client sending `credentials.token` and trusting the cluster CA.
    pub fn with(base: &str, credentials: Credentials) -> Result<Client, ClientError> {
        let fail = |message: String| ClientError::Unreachable {
            url: base.to_string(),
            message,
        };
        let tls = tls_config(credentials.ca_pem.as_deref()).map_err(fail)?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &credentials.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| fail("the token holds characters a header cannot".into()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_within(req.timeout(Duration::from_secs(120)), url)
            .await
    }

    /// [`send`](Self::send) without its overall timeout, for streams that
    /// may last as long as the user wants.
    async fn send_within(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            message: with_causes(&e),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(api_error(resp).await)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self.send(self.http.get(&url), &url).await?;
        decode(resp, url).await
    }

    /// POSTs `body` as JSON (none when `None`) and decodes the answer.
    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&(impl serde::Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let mut req = self.http.post(&url);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = self.send(req, &url).await?;
        decode(resp, url).await
    }

    /// Runs `argv` in container instance `id` (or a unique prefix of it),
    /// for at most `timeout` (`atoll exec`).
    pub async fn exec(
        &self,
        id: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<crate::protocol::ExecReply, ClientError> {
        let url = self.url(&format!("/v1/instances/{id}/exec"));
        let body = serde_json::json!({"argv": argv, "timeout_ms": timeout.as_millis() as u64});
        let req = self.http.post(&url).json(&body);
        // The command's own time, and the host's and server's on top.
        let resp = self
            .send_within(req.timeout(timeout + Duration::from_secs(15)), &url)
            .await?;
        decode(resp, url).await
    }

    /// Starts an interactive command in a container instance (`atoll exec
    /// -i/-t`): the connection, upgraded, then carries
    /// [`crate::exec_session::Frame`]s both ways until the command exits.
    pub async fn exec_session(
        &self,
        id: &str,
        argv: &[String],
        opts: &ExecSessionOptions,
    ) -> Result<reqwest::Upgraded, ClientError> {
        let url = self.url(&format!("/v1/instances/{id}/exec"));
        let mut full = reqwest::Url::parse(&url).map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let argv_json = serde_json::to_string(argv).unwrap_or_default();
        full.query_pairs_mut()
            .append_pair("argv", &argv_json)
            .append_pair("tty", &opts.tty.to_string())
            .append_pair("stdin", &opts.stdin.to_string())
            .append_pair("rows", &opts.rows.to_string())
            .append_pair("cols", &opts.cols.to_string());
        let req = self
            .http
            .get(full)
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, crate::exec_session::UPGRADE);
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: with_causes(&e),
        })?;
        if resp.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(api_error(resp).await);
        }
        resp.upgrade().await.map_err(|e| ClientError::Unreachable {
            url,
            message: with_causes(&e),
        })
    }

    /// Uploads a component unless the server already has it.
    pub async fn upload_artifact(&self, digest: &str, bytes: Vec<u8>) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/artifacts/{digest}"));
        if let Ok(r) = self
            .http
            .head(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(());
        }
        self.send(self.http.put(&url).body(bytes), &url).await?;
        Ok(())
    }

    pub async fn deploy(&self, req: &DeployRequest) -> Result<DeployResponse, ClientError> {
        self.post_json("/v1/apps", Some(req)).await
    }

    /// The server's release (`atoll version`).
    pub async fn version(&self) -> Result<crate::api::VersionView, ClientError> {
        self.get_json("/v1/version").await
    }

    /// What deploying `req` would change; nothing is stored.
    pub async fn deploy_plan(
        &self,
        req: &DeployRequest,
    ) -> Result<crate::api::DeployPlan, ClientError> {
        self.post_json("/v1/apps", Some(req)).await
    }

    pub async fn apps(&self) -> Result<Vec<AppView>, ClientError> {
        self.get_json("/v1/apps").await
    }

    pub async fn app(&self, name: &str) -> Result<AppView, ClientError> {
        self.get_json(&format!("/v1/apps/{name}")).await
    }

    /// The app's current revision as stored (`atoll inspect APP`).
    pub async fn app_spec(&self, name: &str) -> Result<crate::protocol::AppRecord, ClientError> {
        self.get_json(&format!("/v1/apps/{name}/spec")).await
    }

    pub async fn history(&self, name: &str) -> Result<Vec<crate::api::RevisionView>, ClientError> {
        self.get_json(&format!("/v1/apps/{name}/history")).await
    }

    pub async fn rollback(
        &self,
        name: &str,
        req: &crate::api::RollbackRequest,
    ) -> Result<crate::api::RollbackResponse, ClientError> {
        let path = format!("/v1/apps/{name}/rollback");
        self.post_json(&path, Some(req)).await
    }

    /// Makes `service`'s canary its version; the new revision.
    pub async fn promote(&self, name: &str, service: &str) -> Result<DeployResponse, ClientError> {
        let path = format!("/v1/apps/{name}/promote/{service}");
        self.post_json(&path, None::<&()>).await
    }

    /// Sets a service's replica count (`atoll scale`): a new revision.
    pub async fn scale(
        &self,
        name: &str,
        service: &str,
        replicas: u32,
    ) -> Result<DeployResponse, ClientError> {
        let req = crate::api::ScaleRequest {
            service: service.to_string(),
            replicas,
        };
        let path = format!("/v1/apps/{name}/scale");
        self.post_json(&path, Some(&req)).await
    }

    /// Replaces every instance of the app, or of one service, with the
    /// update settings (`atoll restart`): a new revision.
    pub async fn restart(
        &self,
        name: &str,
        service: Option<&str>,
    ) -> Result<DeployResponse, ClientError> {
        let req = crate::api::RestartRequest {
            service: service.map(String::from),
        };
        let path = format!("/v1/apps/{name}/restart");
        self.post_json(&path, Some(&req)).await
    }

    /// Stops (`stop: true`) or starts the app's instances, keeping the app
    /// (`atoll stop`, `atoll start`): a new revision.
    pub async fn stop_start(&self, name: &str, stop: bool) -> Result<DeployResponse, ClientError> {
        let verb = if stop { "stop" } else { "start" };
        let path = format!("/v1/apps/{name}/{verb}");
        self.post_json(&path, None::<&()>).await
    }

    /// The cluster's desired state (`atoll export`).
    pub async fn export(&self) -> Result<crate::export::ExportFile, ClientError> {
        self.get_json("/v1/export").await
    }

    /// Restores an export file (its bytes as read: the server checks
    /// them); `force` overwrites apps the cluster has in another state.
    pub async fn import(
        &self,
        file: Vec<u8>,
        force: bool,
    ) -> Result<crate::api::ImportResponse, ClientError> {
        let url = self.url(&format!("/v1/import?force={force}"));
        let req = (self.http.post(&url))
            .header("content-type", "application/json")
            .body(file);
        let resp = self.send(req, &url).await?;
        decode(resp, url).await
    }

    pub async fn remove_app(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/apps/{name}"));
        self.send(self.http.delete(&url), &url).await?;
        Ok(())
    }

    pub async fn instances(&self, app: Option<&str>) -> Result<Vec<InstanceView>, ClientError> {
        match app {
            Some(a) => self.get_json(&format!("/v1/instances?app={a}")).await,
            None => self.get_json("/v1/instances").await,
        }
    }

    /// The load of every service and host (`atoll top`).
    pub async fn top(&self) -> Result<crate::api::TopView, ClientError> {
        self.get_json("/v1/top").await
    }

    pub async fn hosts(&self) -> Result<Vec<HostView>, ClientError> {
        self.get_json("/v1/hosts").await
    }

    /// The cluster's servers and which one leads.
    pub async fn servers(&self) -> Result<Vec<crate::api::ServerView>, ClientError> {
        self.get_json("/v1/servers").await
    }

    /// Retires a host that is down: its instances are placed elsewhere.
    pub async fn remove_host(&self, name: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/hosts/{name}"));
        self.send(self.http.delete(&url), &url).await?;
        Ok(())
    }

    /// Cordons, drains or uncordons a host (admin only); with `dry_run`,
    /// only says what the host runs.
    pub async fn set_availability(
        &self,
        name: &str,
        body: &crate::api::AvailabilityRequest,
    ) -> Result<crate::api::AvailabilityResponse, ClientError> {
        let url = self.url(&format!("/v1/hosts/{name}/availability"));
        let resp = self.send(self.http.put(&url).json(body), &url).await?;
        decode(resp, url).await
    }

    /// Mints a token (admin only); its secret is in the answer only.
    pub async fn create_token(
        &self,
        req: &crate::api::CreateTokenRequest,
    ) -> Result<crate::api::CreatedToken, ClientError> {
        self.post_json("/v1/tokens", Some(req)).await
    }

    /// Exchanges a `host` token for host `name`'s identity.
    pub async fn join(&self, name: &str) -> Result<crate::api::HostIdentity, ClientError> {
        let req = crate::api::JoinRequest {
            name: name.to_string(),
        };
        self.post_json("/v1/join", Some(&req)).await
    }

    pub async fn tokens(&self) -> Result<Vec<crate::api::TokenView>, ClientError> {
        self.get_json("/v1/tokens").await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/tokens/{id}"));
        self.send(self.http.delete(&url), &url).await?;
        Ok(())
    }

    pub async fn health(&self) -> Result<(), ClientError> {
        let url = self.url("/v1/health");
        self.send(self.http.get(&url).timeout(Duration::from_secs(2)), &url)
            .await
            .map(|_| ())
    }

    /// Streams instance output of an app or one service: `each` gets text
    /// as it arrives, until the server ends the stream.
    pub async fn logs(
        &self,
        app: &str,
        service: Option<&str>,
        opts: &LogOptions,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), ClientError> {
        let follow = opts.follow;
        let mut path = format!("/v1/logs/{app}");
        if let Some(s) = service {
            path = format!("{path}/{s}");
        }
        path.push_str(&format!("?follow={follow}"));
        if let Some(n) = opts.tail {
            path.push_str(&format!("&tail={n}"));
        }
        if let Some(ms) = opts.since_ms {
            path.push_str(&format!("&since={ms}"));
        }
        if opts.timestamps {
            path.push_str("&timestamps=true");
        }
        let url = self.url(&path);
        let req = self.http.get(&url);
        let mut resp = if follow {
            self.send_within(req, &url).await?
        } else {
            self.send(req, &url).await?
        };
        while let Some(chunk) = resp.chunk().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })? {
            each(&chunk);
        }
        Ok(())
    }

    /// Follows the event stream; calls `each` for every event until the
    /// server closes it.
    pub async fn events(&self, mut each: impl FnMut(Event)) -> Result<(), ClientError> {
        let url = self.url("/v1/events");
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })? {
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if let Ok(ev) = serde_json::from_slice::<Event>(&line) {
                    each(ev);
                }
            }
        }
        Ok(())
    }
}

/// The JSON of a successful answer.
async fn decode<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    url: String,
) -> Result<T, ClientError> {
    resp.json().await.map_err(|e| ClientError::Decode {
        url,
        message: e.to_string(),
    })
}

//! A blocking client for the OCI distribution API of one registry.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: basic
//! credentials, or a bearer token fetched from the challenge's realm and cached
//! per scope. Transient failures (connection errors, 5xx, 429, truncated bodies)
//! are retried with exponential backoff.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::auth::{Challenge, Credentials};
use crate::digest::Digest;
use crate::manifest::{Descriptor, ACCEPTED_MANIFESTS};
use crate::store::{BlobStore, StoreError};
use crate::tee::{Outcome, Tee};

/// The largest manifest we read, as containerd does.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Why the consumer of a streamed blob ([`Client::fetch_blob_with`]) failed.
pub type ConsumerError = Box<dyn std::error::Error + Send + Sync>;

/// Errors from talking to a registry; each names the request or object.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        source: Box<ureq::Transport>,
    },
    #[error("authentication failed for {registry}: {reason}")]
    Unauthorized { registry: String, reason: String },
    #[error("access to {repository} on {registry} denied (HTTP 403): check the credentials' permissions")]
    Denied {
        registry: String,
        repository: String,
    },
    #[error("manifest unknown: {registry}/{repository}:{reference} (no such image or tag)")]
    ManifestUnknown {
        registry: String,
        repository: String,
        reference: String,
    },
    #[error("blob unknown: {digest} in {registry}/{repository}")]
    BlobUnknown {
        registry: String,
        repository: String,
        digest: Digest,
    },
    #[error("{method} {url}: HTTP {status}: {message}")]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    #[error("manifest {registry}/{repository}@{expected}: digest mismatch: expected {expected}, got {actual}")]
    ManifestDigestMismatch {
        registry: String,
        repository: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("manifest {url}: larger than {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge { url: String },
    #[error("blob {digest}: truncated download: got {received} of {expected} bytes")]
    Truncated {
        digest: Digest,
        received: u64,
        expected: u64,
    },
    #[error("blob {digest}: {source}")]
    Blob { digest: Digest, source: StoreError },
    /// The consumer of a streamed blob failed (with a verified, complete download).
    #[error("blob {digest}: {source}")]
    Consumer {
        digest: Digest,
        source: ConsumerError,
    },
    #[error("token service {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("{method} {url}: reading the response: {source}")]
    ReadBody {
        method: String,
        url: String,
        source: io::Error,
    },
    #[error("{url}: upload answered without a Location header")]
    NoLocation { url: String },
}

impl ClientError {
    fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } | ClientError::Truncated { .. } => true,
            ClientError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub credentials: Option<Credentials>,
    /// Use plain http (`--tls-verify=false`). Always on for localhost and 127.0.0.1.
    pub insecure: bool,
    /// Attempts after the first one for transient failures.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: None,
            insecure: false,
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// What happened to a blob on push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    AlreadyExists,
    Mounted,
    Uploaded,
}

/// A manifest as fetched: its bytes, the Content-Type and the digest of the bytes.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub media_type: Option<String>,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// A request body that can be sent more than once (after an auth challenge or a retry).
#[derive(Clone, Copy)]
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a std::path::Path, &'a dyn Fn(u64)),
}

struct Request<'a> {
    method: &'a str,
    url: String,
    scope: String,
    accept: Option<String>,
    content_type: Option<&'a str>,
    body: Body<'a>,
}

#[derive(Default)]
struct AuthState {
    basic: bool,
    tokens: HashMap<String, String>,
}

/// A client for one registry.
pub struct Client {
    agent: ureq::Agent,
    registry: String,
    base: String,
    options: ClientOptions,
    auth: Mutex<AuthState>,
}

impl Client {
    /// A client for `registry` as named in a reference (`docker.io`, `localhost:5000`);
    /// `api_host` is where its API lives (see [`crate::Reference::api_host`]).
    pub fn new(registry: &str, api_host: &str, options: ClientOptions) -> Self {
        let scheme = if options.insecure || is_local(api_host) {
            "http"
        } else {
            "https"
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(60))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent,
            registry: registry.to_owned(),
            base: format!("{scheme}://{api_host}"),
            options,
            auth: Mutex::new(AuthState::default()),
        }
    }

    /// A client for the registry a reference names.
    pub fn for_reference(reference: &crate::Reference, options: ClientOptions) -> Self {
        Client::new(reference.registry(), reference.api_host(), options)
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Fetches a manifest by tag or digest. When `reference` is a digest, the
    /// bytes must hash to it.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, ClientError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let request = Request {
            accept: Some(ACCEPTED_MANIFESTS.join(", ")),
            ..Request::new("GET", url.clone(), pull_scope(repository))
        };
        let response = self.send_retrying(&request).map_err(|e| {
            self.not_found_as(e, || ClientError::ManifestUnknown {
                registry: self.registry.clone(),
                repository: repository.to_owned(),
                reference: reference.to_owned(),
            })
        })?;
        let media_type = response
            .header("content-type")
            .map(|m| m.split(';').next().unwrap_or(m).trim().to_owned());
        let bytes = read_limited(response, "GET", &url)?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>() {
            if expected != digest {
                return Err(ClientError::ManifestDigestMismatch {
                    registry: self.registry.clone(),
                    repository: repository.to_owned(),
                    expected,
                    actual: digest,
                });
            }
        }
        Ok(FetchedManifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// Downloads a blob into `store`, verifying its digest. Returns its size.
    pub fn fetch_blob(
        &self,
        repository: &str,
        blob: &Descriptor,
        store: &BlobStore,
    ) -> Result<u64, ClientError> {
        self.fetch_blob_with(repository, blob, store, &|_| {}, |_| Ok(()))
            .map(|(size, ())| size)
    }

    /// Downloads a blob into `store` while `consume` reads the same bytes (to unpack a layer
    /// as it downloads). Each byte read is written to the blob's temporary file and hashed;
    /// the read at the end of the body fails when the size or digest is wrong, so a consumer
    /// that reads to the end fails before committing. What `consume` leaves unread is read
    /// after it returns. The blob is committed after `consume` returned `Ok`, and its value is
    /// returned with the size. `progress` gets the bytes received so far, on every read.
    ///
    /// A truncated body is retried like a whole-blob download: `consume` is called again
    /// with a fresh stream, so it must start from scratch (discarding what it did on the
    /// failed attempt). Errors say the root cause first: truncation, digest mismatch or a
    /// failed blob write; else the consumer's own error ([`ClientError::Consumer`]).
    pub fn fetch_blob_with<T>(
        &self,
        repository: &str,
        blob: &Descriptor,
        store: &BlobStore,
        progress: &dyn Fn(u64),
        mut consume: impl FnMut(&mut dyn Read) -> Result<T, ConsumerError>,
    ) -> Result<(u64, T), ClientError> {
        self.retrying(|| self.fetch_blob_once(repository, blob, store, progress, &mut consume))
    }

    fn fetch_blob_once<T>(
        &self,
        repository: &str,
        blob: &Descriptor,
        store: &BlobStore,
        progress: &dyn Fn(u64),
        consume: &mut dyn FnMut(&mut dyn Read) -> Result<T, ConsumerError>,
    ) -> Result<(u64, T), ClientError> {
        let url = format!("{}/v2/{repository}/blobs/{}", self.base, blob.digest);
        let request = Request::new("GET", url, pull_scope(repository));
        let response = self
            .send(&request)
            .map_err(|e| self.blob_not_found(e, repository, &blob.digest))?;
        let blob_err = |source| ClientError::Blob {
            digest: blob.digest.clone(),
            source,
        };
        let mut writer = store
            .writer(&blob.digest, Some(blob.size))
            .map_err(blob_err)?;
        // The descriptor's size is authoritative: never read more than it says.
        let body = response.into_reader().take(blob.size);
        let mut tee = Tee::new(body, &mut writer, blob.size, progress);
        let consumed = consume(&mut tee);
        let (outcome, received) = tee.finish();
        if let Some(error) = outcome_error(outcome, blob, received) {
            return Err(error);
        }
        let value = consumed.map_err(|source| ClientError::Consumer {
            digest: blob.digest.clone(),
            source,
        })?;
        let size = writer.commit().map_err(blob_err)?;
        Ok((size, value))
    }

    /// Whether the registry has the blob in `repository`.
    /// Checks the credentials, as `docker login` does: `GET /v2/`, answering the registry's
    /// challenge (basic, or a bearer token for no particular scope). Fails with the usual
    /// "authentication failed" error when the registry refuses them.
    pub fn login(&self) -> Result<(), ClientError> {
        let url = format!("{}/v2/", self.base);
        self.send_retrying(&Request::new("GET", url, String::new()))
            .map(drop)
    }

    pub fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool, ClientError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        match self.send_retrying(&Request::new("HEAD", url, pull_scope(repository))) {
            Ok(_) => Ok(true),
            Err(ClientError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pushes a blob from `store` unless the registry has it; mounts it from
    /// `mount_from` (another repository of the same registry) when given.
    pub fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        store: &BlobStore,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome, ClientError> {
        self.push_blob_with(repository, digest, store, mount_from, &|_| {})
    }

    /// [`Client::push_blob`], telling `sent` how many bytes of the upload went out so far.
    pub fn push_blob_with(
        &self,
        repository: &str,
        digest: &Digest,
        store: &BlobStore,
        mount_from: Option<&str>,
        sent: &dyn Fn(u64),
    ) -> Result<PushOutcome, ClientError> {
        if self.blob_exists(repository, digest)? {
            return Ok(PushOutcome::AlreadyExists);
        }
        let location = match mount_from {
            Some(from) => match self.try_mount(repository, digest, from)? {
                None => return Ok(PushOutcome::Mounted),
                Some(location) => location,
            },
            None => self.start_upload(repository)?,
        };
        self.finish_upload(repository, &location, digest, store, sent)?;
        Ok(PushOutcome::Uploaded)
    }

    /// `POST ?mount=&from=`: 201 means mounted (None), 202 means an upload
    /// session was opened instead (its location).
    fn try_mount(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Option<String>, ClientError> {
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={}&from={from}",
            self.base,
            encode(&digest.to_string())
        );
        let scope = format!("{} repository:{from}:pull", push_scope(repository));
        let response = self.send_retrying(&Request::new("POST", url.clone(), scope))?;
        if response.status() == 201 {
            return Ok(None);
        }
        self.location(&response, &url).map(Some)
    }

    fn start_upload(&self, repository: &str) -> Result<String, ClientError> {
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response =
            self.send_retrying(&Request::new("POST", url.clone(), push_scope(repository)))?;
        self.location(&response, &url)
    }

    fn finish_upload(
        &self,
        repository: &str,
        location: &str,
        digest: &Digest,
        store: &BlobStore,
        sent: &dyn Fn(u64),
    ) -> Result<(), ClientError> {
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{separator}digest={}",
            encode(&digest.to_string())
        );
        let path = store.path(digest);
        let request = Request {
            content_type: Some("application/octet-stream"),
            body: Body::File(&path, sent),
            ..Request::new("PUT", url, push_scope(repository))
        };
        self.send_retrying(&request).map(drop)
    }

    /// Uploads a manifest under `reference` (a tag or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, ClientError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let request = Request {
            content_type: Some(media_type),
            body: Body::Bytes(bytes),
            ..Request::new("PUT", url, push_scope(repository))
        };
        self.send_retrying(&request)?;
        Ok(Digest::of(bytes))
    }

    fn location(&self, response: &ureq::Response, url: &str) -> Result<String, ClientError> {
        let location = response
            .header("location")
            .ok_or_else(|| ClientError::NoLocation {
                url: url.to_owned(),
            })?;
        if location.starts_with("http://") || location.starts_with("https://") {
            Ok(location.to_owned())
        } else {
            Ok(format!("{}{location}", self.base))
        }
    }

    fn not_found_as(
        &self,
        error: ClientError,
        not_found: impl FnOnce() -> ClientError,
    ) -> ClientError {
        match error {
            ClientError::Status { status: 404, .. } => not_found(),
            other => other,
        }
    }

    fn blob_not_found(&self, error: ClientError, repository: &str, digest: &Digest) -> ClientError {
        self.not_found_as(error, || ClientError::BlobUnknown {
            registry: self.registry.clone(),
            repository: repository.to_owned(),
            digest: digest.clone(),
        })
    }

    fn send_retrying(&self, request: &Request) -> Result<ureq::Response, ClientError> {
        self.retrying(|| self.send(request))
    }

    fn retrying<T>(
        &self,
        mut operation: impl FnMut() -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut delay = self.options.backoff;
        let mut attempt = 0;
        loop {
            match operation() {
                Err(e) if e.is_transient() && attempt < self.options.retries => {
                    thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Sends once, answering one authentication challenge if the registry makes it.
    fn send(&self, request: &Request) -> Result<ureq::Response, ClientError> {
        let error = match self.send_raw(request) {
            Ok(response) => return Ok(response),
            Err(error) => *error,
        };
        match error {
            ureq::Error::Status(401, response) => {
                self.authenticate(&response, &request.scope)?;
                self.send_raw(request)
                    .map_err(|e| self.map_error(request, *e, true))
            }
            other => Err(self.map_error(request, other, false)),
        }
    }

    fn send_raw(&self, request: &Request) -> Result<ureq::Response, Box<ureq::Error>> {
        let mut builder = self.agent.request(request.method, &request.url);
        if let Some(header) = self.authorization(&request.scope) {
            builder = builder.set("Authorization", &header);
        }
        if let Some(accept) = &request.accept {
            builder = builder.set("Accept", accept);
        }
        if let Some(content_type) = request.content_type {
            builder = builder.set("Content-Type", content_type);
        }
        match request.body {
            Body::Empty => builder.call().map_err(Box::new),
            Body::Bytes(bytes) => builder.send_bytes(bytes).map_err(Box::new),
            Body::File(path, sent) => send_file(builder, path, sent),
        }
    }

    fn authorization(&self, scope: &str) -> Option<String> {
        let state = self
            .auth
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) = state.tokens.get(scope) {
            return Some(format!("Bearer {token}"));
        }
        let basic = state
            .basic
            .then_some(self.options.credentials.as_ref())
            .flatten();
        basic.map(Credentials::basic_header)
    }

    fn authenticate(&self, response: &ureq::Response, scope: &str) -> Result<(), ClientError> {
        let header = response.header("www-authenticate").unwrap_or_default();
        match Challenge::parse(header) {
            Some(Challenge::Basic) => {
                if self.options.credentials.is_none() {
                    return Err(self.unauthorized(
                        "the registry requires a login and no credentials were given",
                    ));
                }
                self.auth.lock().unwrap_or_else(|p| p.into_inner()).basic = true;
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: offered,
            }) => {
                let wanted = if scope.is_empty() {
                    offered.unwrap_or_default()
                } else {
                    scope.to_owned()
                };
                let token = self.fetch_token(&realm, service.as_deref(), &wanted)?;
                self.auth
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .tokens
                    .insert(scope.to_owned(), token);
                Ok(())
            }
            None => Err(self.unauthorized(&format!(
                "HTTP 401 with an unsupported challenge {header:?}"
            ))),
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, ClientError> {
        let token_err = |reason: String| ClientError::Token {
            realm: realm.to_owned(),
            reason,
        };
        let mut request = self.agent.get(realm);
        if let Some(service) = service {
            request = request.query("service", service);
        }
        for scope in scope.split(' ').filter(|s| !s.is_empty()) {
            request = request.query("scope", scope);
        }
        if let Some(credentials) = &self.options.credentials {
            request = request.set("Authorization", &credentials.basic_header());
        }
        let response = self.retrying(|| {
            request
                .clone()
                .call()
                .map_err(|e| self.map_token_error(realm, e))
        })?;
        let body: TokenResponse = response
            .into_json()
            .map_err(|e| token_err(format!("invalid token response: {e}")))?;
        body.token
            .or(body.access_token)
            .ok_or_else(|| token_err("response has no token".to_owned()))
    }

    fn map_token_error(&self, realm: &str, error: ureq::Error) -> ClientError {
        match error {
            ureq::Error::Status(401 | 403, _) => self.unauthorized(
                "the token service rejected the credentials: wrong username or password?",
            ),
            ureq::Error::Status(status, response) => ClientError::Status {
                method: "GET".into(),
                url: realm.to_owned(),
                status,
                message: error_message(response),
            },
            ureq::Error::Transport(t) => ClientError::Transport {
                method: "GET".into(),
                url: realm.to_owned(),
                source: Box::new(t),
            },
        }
    }

    fn unauthorized(&self, reason: &str) -> ClientError {
        ClientError::Unauthorized {
            registry: self.registry.clone(),
            reason: reason.to_owned(),
        }
    }

    fn map_error(&self, request: &Request, error: ureq::Error, after_auth: bool) -> ClientError {
        match error {
            ureq::Error::Status(401, _) if after_auth => self
                .unauthorized("HTTP 401 with the given credentials: wrong username or password?"),
            ureq::Error::Status(401, _) => {
                self.unauthorized("HTTP 401: the registry rejected the request")
            }
            ureq::Error::Status(403, _) => ClientError::Denied {
                registry: self.registry.clone(),
                repository: repository_of(&request.scope),
            },
            ureq::Error::Status(status, response) => ClientError::Status {
                method: request.method.to_owned(),
                url: request.url.clone(),
                status,
                message: error_message(response),
            },
            ureq::Error::Transport(t) => ClientError::Transport {
                method: request.method.to_owned(),
                url: request.url.clone(),
                source: Box::new(t),
            },
        }
    }
}

impl<'a> Request<'a> {
    fn new(method: &'a str, url: String, scope: String) -> Self {
        Request {
            method,
            url,
            scope,
            accept: None,
            content_type: None,
            body: Body::Empty,
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

/// The error for a stream that did not end verified, if it did not.
fn outcome_error(outcome: Outcome, blob: &Descriptor, received: u64) -> Option<ClientError> {
    let blob_err = |source| ClientError::Blob {
        digest: blob.digest.clone(),
        source,
    };
    match outcome {
        Outcome::Verified => None,
        Outcome::Truncated | Outcome::Reading => Some(ClientError::Truncated {
            digest: blob.digest.clone(),
            received,
            expected: blob.size,
        }),
        Outcome::Mismatch { actual } => Some(blob_err(StoreError::DigestMismatch {
            expected: blob.digest.clone(),
            actual,
            size: blob.size,
        })),
        Outcome::WriteFailed(source) => Some(blob_err(StoreError::Write {
            expected: blob.digest.clone(),
            source,
        })),
    }
}

fn send_file(
    builder: ureq::Request,
    path: &std::path::Path,
    sent: &dyn Fn(u64),
) -> Result<ureq::Response, Box<ureq::Error>> {
    let io_err = |e: io::Error| {
        Box::new(ureq::Error::from(io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )))
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let counted = Counted {
        inner: file,
        done: 0,
        sent,
    };
    builder
        .set("Content-Length", &size.to_string())
        .send(counted)
        .map_err(Box::new)
}

/// A reader that reports how many bytes were read so far.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    sent: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.sent)(self.done);
        Ok(n)
    }
}

fn read_limited(response: ureq::Response, method: &str, url: &str) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    let mut reader = response.into_reader().take(MAX_MANIFEST_BYTES + 1);
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| ClientError::ReadBody {
            method: method.to_owned(),
            url: url.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ClientError::ManifestTooLarge {
            url: url.to_owned(),
        });
    }
    Ok(bytes)
}

/// The first `code: message` of a registry error body, else the status text.
fn error_message(response: ureq::Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: String,
        message: Option<String>,
    }
    let status_text = response.status_text().to_owned();
    let parsed: Option<Errors> = response.into_json().ok();
    match parsed.as_ref().and_then(|e| e.errors.first()) {
        Some(entry) => format!("{}: {}", entry.code, entry.message.as_deref().unwrap_or("")),
        None => status_text,
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn repository_of(scope: &str) -> String {
    scope.split(':').nth(1).unwrap_or_default().to_owned()
}

fn is_local(api_host: &str) -> bool {
    let host = match api_host.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => api_host,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.starts_with("127.")
}

/// Percent-encodes the characters of a digest that are special in a query.
fn encode(value: &str) -> String {
    value.replace(':', "%3A").replace('+', "%2B")
}

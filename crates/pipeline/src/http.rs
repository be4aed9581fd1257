//! A client of randomuser.me-compatible HTTP APIs (`GET {base}?results=N&seed=S&page=P&nat=..`).
//!
//! Rate limits (429), unavailability (503 and other 5xx), timeouts and refused connections, and
//! bodies cut off while being read are retried with exponential backoff (honouring `Retry-After`
//! up to a cap); a body that is not an API document, or is larger than the client reads, is an
//! error naming the URL. Credentials in the URL are never shown in errors or logs. Documents
//! are returned as received, so that one bad document is rejected on its own rather than
//! failing its page.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

/// The longest `Retry-After` wait honoured by default.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `url` with any `user:password@` replaced by `***@`, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// An HTTP agent with a per-request `timeout`, trusting `roots`.
fn agent(timeout: Duration, roots: RootCerts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("contract-rl/", env!("CARGO_PKG_VERSION")))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}

/// Why a page could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The certificates to trust cannot be read.
    #[error("certificates to trust: {0}")]
    Certificate(String),
    /// The server answered with a status that is not retried (e.g. 400, 404).
    #[error("{url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    /// The body is larger than the client reads.
    #[error("{url}: the answer is larger than {limit_bytes} bytes")]
    TooLarge { url: String, limit_bytes: u64 },
    /// The body is not an API document.
    #[error("{url}: the answer is not a randomuser.me document: {reason}")]
    Malformed { url: String, reason: String },
    /// Every attempt failed with a retryable error.
    #[error("{url}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { url: String, attempts: u32, last: String },
}

/// The envelope of an answer, documents left raw.
#[derive(Debug, Deserialize)]
struct RawPage {
    results: Vec<Value>,
}

/// A client of one API base URL, over HTTP or HTTPS (rustls, Mozilla's root certificates
/// unless told to trust others).
#[derive(Debug, Clone)]
pub struct ApiClient {
    base_url: String,
    agent: ureq::Agent,
    timeout: Duration,
    max_attempts: u32,
    initial_backoff: Duration,
    max_retry_after: Duration,
}

impl ApiClient {
    /// A client of `base_url` (e.g. `https://randomuser.me/api/1.4/`) with a per-request
    /// `timeout`, at most `max_attempts` tries per page and backoff starting at `initial_backoff`.
    pub fn new(base_url: &str, timeout: Duration, max_attempts: u32, initial_backoff: Duration) -> Self {
        Self {
            base_url: base_url.to_owned(),
            agent: agent(timeout, RootCerts::WebPki),
            timeout,
            max_attempts: max_attempts.max(1),
            initial_backoff,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }

    /// Waits at most `max` when a server asks to retry later (`Retry-After`).
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Trusts the certificates of `pem` (a private CA, or a self-signed server) instead of
    /// Mozilla's roots.
    pub fn trusting(mut self, pem: &[u8]) -> Result<Self, HttpError> {
        let certificates = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HttpError::Certificate(e.to_string()))?;
        if certificates.is_empty() {
            return Err(HttpError::Certificate("no PEM certificate found".into()));
        }
        self.agent = agent(self.timeout, RootCerts::Specific(Arc::new(certificates)));
        Ok(self)
    }

    /// The documents of one page; empty when the API has no more users.
    pub fn page(&self, results: u32, seed: &str, page: u32, nats: &[String]) -> Result<Vec<Value>, HttpError> {
        let request = || {
            let request = self
                .agent
                .get(&self.base_url)
                .query("results", results.to_string())
                .query("seed", seed)
                .query("page", page.to_string());
            if nats.is_empty() {
                request
            } else {
                request.query("nat", nats.join(","))
            }
        };
        let url = format!("{}?results={results}&seed={seed}&page={page}", redact(&self.base_url));
        let mut backoff = self.initial_backoff;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let wait = match request().call() {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = match response.body_mut().read_to_string() {
                        Ok(body) => body,
                        Err(ureq::Error::BodyExceedsLimit(limit_bytes)) => {
                            return Err(HttpError::TooLarge { url, limit_bytes });
                        }
                        // Cut off while reading (timeout, reset): retried like a failed request.
                        Err(e) => {
                            last = format!("reading the body: {}", redact(&e.to_string()));
                            self.sleep_before_retry(attempt, &url, &last, backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            continue;
                        }
                    };
                    match status {
                        200..=299 => {
                            let page: RawPage = serde_json::from_str(&body).map_err(|e| HttpError::Malformed {
                                url: url.clone(),
                                reason: e.to_string(),
                            })?;
                            return Ok(page.results);
                        }
                        429 | 500..=599 => {
                            last = format!("HTTP {status}");
                            retry_after.map_or(backoff, |wait| wait.min(self.max_retry_after))
                        }
                        _ => {
                            return Err(HttpError::Status {
                                url,
                                status,
                                body: body.chars().take(200).collect(),
                            });
                        }
                    }
                }
                Err(e) => {
                    last = redact(&e.to_string());
                    backoff
                }
            };
            self.sleep_before_retry(attempt, &url, &last, wait);
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        Err(HttpError::RetriesExhausted {
            url,
            attempts: self.max_attempts,
            last,
        })
    }

    /// Waits `wait` before the next attempt, if there is one, saying why.
    fn sleep_before_retry(&self, attempt: u32, url: &str, last: &str, wait: Duration) {
        if attempt < self.max_attempts {
            tracing::warn!(%url, attempt, error = %last, wait_ms = wait.as_millis() as u64, "retrying");
            std::thread::sleep(wait);
        }
    }
}

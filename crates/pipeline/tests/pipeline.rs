//! The HTTP source against a local server that serves randomuser.me 1.4 documents, with the
//! failures of the real API (rate limits, timeouts, empty pages, malformed bodies), and over
//! HTTPS with a certificate the test makes.

#[path = "../../../tests/support/tls.rs"]
mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract_rl_core::record::Rejection;
use contract_rl_core::source::Generator;
use contract_rl_pipeline::{ApiClient, HttpError, Source};
use serde_json::{Value, json};

/// One scripted answer: status, body, delay before answering, extra header.
type Answer = (u16, String, Duration, Option<(&'static str, &'static str)>);

/// A local server answering requests with `script` in order (the last answer repeats); it
/// records each request's URL.
fn serve(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (i, request) in server.incoming_requests().enumerate() {
            log.lock().unwrap().push(request.url().to_owned());
            let (status, body, delay, header) = script[i.min(script.len() - 1)].clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Some((k, v)) = header {
                    response = response.with_header(tiny_http::Header::from_bytes(k, v).unwrap());
                }
                let _ = request.respond(response);
            });
        }
    });
    (format!("http://127.0.0.1:{port}/api/1.4/"), seen)
}

fn ok(body: String) -> Answer {
    (200, body, Duration::ZERO, None)
}

fn page_of(nats: &[&str], n: u32) -> String {
    let nats: Vec<String> = nats.iter().map(|s| s.to_string()).collect();
    serde_json::to_string(&Generator::new("http", &nats).unwrap().page(n, 1)).unwrap()
}

fn source(url: &str, timeout_ms: u64, attempts: u32) -> Source {
    Source::Api {
        client: ApiClient::new(
            url,
            Duration::from_millis(timeout_ms),
            attempts,
            Duration::from_millis(10),
        ),
        seed: "http".into(),
        nats: vec![],
    }
}

#[test]
fn string_and_integer_postcodes_both_become_text() {
    let (url, seen) = serve(vec![ok(page_of(&["GB", "FR"], 40))]);
    let page = source(&url, 2000, 1).page(40, 1).unwrap();
    let records: Vec<_> = page.into_iter().map(Result::unwrap).collect();
    assert_eq!(records.len(), 40);
    assert!(records.iter().any(|r| r.nat == "GB" && r.postcode.contains(' ')));
    assert!(
        records
            .iter()
            .any(|r| r.nat == "FR" && r.postcode.parse::<u32>().is_ok())
    );
    assert!(records.iter().all(|r| r.source == "api"));
    let url = &seen.lock().unwrap()[0];
    assert!(
        url.contains("results=40") && url.contains("seed=http") && url.contains("page=1"),
        "{url}"
    );
}

#[test]
fn an_empty_results_list_is_an_empty_page_not_an_error() {
    let body = json!({"results": [], "info": {"seed": "http", "results": 0, "page": 1, "version": "1.4"}});
    let (url, _) = serve(vec![ok(body.to_string())]);
    assert!(source(&url, 2000, 1).page(10, 1).unwrap().is_empty());
}

#[test]
fn a_rate_limit_is_retried_after_the_server_says() {
    let limited: Answer = (429, "slow down".into(), Duration::ZERO, Some(("Retry-After", "0")));
    let (url, seen) = serve(vec![limited.clone(), limited, ok(page_of(&[], 5))]);
    let page = source(&url, 2000, 4).page(5, 1).unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn a_timeout_is_retried() {
    let slow: Answer = (200, page_of(&[], 3), Duration::from_millis(1500), None);
    let (url, seen) = serve(vec![slow, ok(page_of(&[], 3))]);
    let page = source(&url, 300, 3).page(3, 1).unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn persistent_unavailability_gives_up_with_the_last_error() {
    let (url, seen) = serve(vec![(503, "down".into(), Duration::ZERO, None)]);
    let err = source(&url, 2000, 3).page(5, 1).unwrap_err();
    assert!(matches!(err, HttpError::RetriesExhausted { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains("HTTP 503"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn a_malformed_body_is_an_error_naming_the_url() {
    let (url, _) = serve(vec![ok("<html>Service Unavailable</html>".into())]);
    let err = source(&url, 2000, 2).page(5, 1).unwrap_err();
    assert!(matches!(err, HttpError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1"));
}

#[test]
fn one_bad_document_is_rejected_alone() {
    let mut page: Value = serde_json::from_str(&page_of(&[], 3)).unwrap();
    page["results"][1]["dob"] = json!({"date": 1987, "age": "old"});
    page["results"][2]["login"]["uuid"] = Value::Null;
    let (url, _) = serve(vec![ok(page.to_string())]);
    let documents = source(&url, 2000, 1).page(3, 1).unwrap();
    assert!(documents[0].is_ok());
    assert!(matches!(&documents[1], Err(r) if matches!(r.reason, Rejection::Malformed(_))));
    assert!(matches!(&documents[2], Err(r) if r.reason == Rejection::MissingField("login.uuid")));
}

#[test]
fn pages_come_over_https_from_a_server_the_client_trusts() {
    let (url, certificate) = tls::serve_tls(page_of(&["NZ"], 7));
    let client = ApiClient::new(&url, Duration::from_secs(5), 1, Duration::from_millis(10))
        .trusting(certificate.as_bytes())
        .unwrap();
    let documents = client.page(7, "http", 1, &[]).unwrap();
    assert_eq!(documents.len(), 7);
    assert!(documents.iter().all(|d| d["nat"] == "NZ"));
}

#[test]
fn a_server_certificate_nobody_vouches_for_is_refused() {
    let (url, _) = tls::serve_tls(page_of(&[], 3));
    let err = source(&url, 5000, 1).page(3, 1).unwrap_err();
    assert!(matches!(err, HttpError::RetriesExhausted { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn a_file_without_certificates_is_refused() {
    let client = ApiClient::new("https://localhost/", Duration::from_secs(1), 1, Duration::ZERO);
    let err = client.trusting(b"not a certificate").unwrap_err();
    assert!(matches!(err, HttpError::Certificate(_)), "{err}");
}

#[test]
fn a_retry_after_beyond_the_cap_waits_only_the_cap() {
    let later: Answer = (429, "busy".into(), Duration::ZERO, Some(("Retry-After", "3600")));
    let (url, seen) = serve(vec![later, ok(page_of(&[], 4))]);
    let client = ApiClient::new(&url, Duration::from_secs(2), 3, Duration::from_millis(10))
        .with_max_retry_after(Duration::from_millis(200));
    let start = std::time::Instant::now();
    assert_eq!(client.page(4, "http", 1, &[]).unwrap().len(), 4);
    assert!(start.elapsed() < Duration::from_secs(5), "waited {:?}", start.elapsed());
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn credentials_in_the_url_never_reach_an_error() {
    let (url, _) = serve(vec![(404, "no such page".into(), Duration::ZERO, None)]);
    let with_secret = url.replace("http://", "http://reader:s3cret-pass@");
    let err = ApiClient::new(&with_secret, Duration::from_secs(2), 1, Duration::ZERO)
        .page(5, "http", 1, &[])
        .unwrap_err();
    assert!(matches!(err, HttpError::Status { status: 404, .. }), "{err}");
    let text = err.to_string();
    assert!(!text.contains("s3cret-pass") && !text.contains("reader"), "{text}");
    assert!(text.contains("***@127.0.0.1"), "{text}");
    // A refused connection's message is redacted too.
    let refused = "http://reader:s3cret-pass@127.0.0.1:1/api/";
    let err = ApiClient::new(refused, Duration::from_secs(1), 1, Duration::ZERO)
        .page(5, "http", 1, &[])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cret-pass"), "{err}");
}

#[test]
fn a_body_cut_off_while_reading_is_retried() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = page_of(&[], 3);
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            if i == 0 {
                // Promise the whole body, send half, then stall past the client's timeout.
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = stream.write_all(&body.as_bytes()[..body.len() / 2]);
                std::thread::sleep(Duration::from_millis(1500));
            } else {
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}/api/1.4/");
    let client = ApiClient::new(&url, Duration::from_millis(500), 3, Duration::from_millis(10));
    assert_eq!(client.page(3, "http", 1, &[]).unwrap().len(), 3);
}

#[test]
fn a_body_larger_than_the_client_reads_is_named_not_parsed() {
    let huge = format!("{{\"results\": [\"{}\"]}}", "x".repeat(11 << 20));
    let (url, _) = serve(vec![ok(huge)]);
    let err = source(&url, 10_000, 2).page(5, 1).unwrap_err();
    assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
}

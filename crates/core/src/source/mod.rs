//! Where user records come from: the embedded seeded [`Generator`] of randomuser.me 1.4
//! documents (the default; the HTTP client of real APIs lives in the pipeline crate). Both serve
//! pages; documents are flattened and validated into [`UserRecord`]s here, once, and rejected
//! ones are returned with their reason, never dropped silently.

mod generator;
mod nationalities;

pub use generator::{AS_OF, Generator, GeneratorError, MAX_RESULTS_PER_PAGE};

use serde_json::Value;

use crate::record::{ApiUser, Rejection, UserRecord};

/// The source name recorded in the lineage of generated records.
pub const GENERATOR_SOURCE: &str = "generator";

/// The source name recorded in the lineage of records fetched over HTTP.
pub const API_SOURCE: &str = "api";

/// A document that failed validation, with its position in the stream and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Index of the document in the source's stream, from 0.
    pub index: u64,
    /// The document as received, less its login secrets.
    pub document: Value,
    /// Why it was rejected.
    pub reason: Rejection,
}

/// The fields of a document's `login` that are never kept, not even in a dead letter.
pub const LOGIN_SECRETS: [&str; 5] = ["password", "salt", "md5", "sha1", "sha256"];

impl Rejected {
    /// A rejected document at `index` of the stream, with its login secrets removed.
    pub fn new(index: u64, mut document: Value, reason: Rejection) -> Self {
        if let Some(login) = document.get_mut("login").and_then(Value::as_object_mut) {
            for secret in LOGIN_SECRETS {
                login.remove(secret);
            }
        }
        Self {
            index,
            document,
            reason,
        }
    }
}

/// The documents of one page in order, each a valid record or a rejected document; an empty
/// page means the source has no more users.
pub type Page = Vec<Result<UserRecord, Rejected>>;

/// Page `page` (from 1) of `results` users of `generator`, validated.
pub fn generated_page(generator: &Generator, results: u32, page: u32) -> Page {
    let first = page_start(results, page);
    generator
        .page(results, page)
        .results
        .iter()
        .enumerate()
        .map(|(i, user)| {
            UserRecord::from_api(user, GENERATOR_SOURCE).map_err(|reason| {
                Rejected::new(
                    first + i as u64,
                    serde_json::to_value(user).expect("documents serialise"),
                    reason,
                )
            })
        })
        .collect()
}

/// Index in the stream of the first document of page `page` (from 1) of `results` users.
pub fn page_start(results: u32, page: u32) -> u64 {
    u64::from(page.saturating_sub(1)) * u64::from(results)
}

/// Flattens one raw document; a document of the wrong shape is rejected as malformed.
pub fn flatten_document(document: Value, source: &str) -> Result<UserRecord, (Value, Rejection)> {
    match serde_json::from_value::<ApiUser>(document.clone()) {
        Ok(user) => UserRecord::from_api(&user, source).map_err(|reason| (document, reason)),
        Err(e) => Err((document, Rejection::Malformed(e.to_string()))),
    }
}

/// The first `n` users of `generator` (the same users its pages hold, in order), split into
/// valid records and rejected documents.
pub fn generate_records(generator: &Generator, n: usize) -> (Vec<UserRecord>, Vec<Rejected>) {
    let mut records = Vec::with_capacity(n);
    let mut rejected = Vec::new();
    for index in 0..n as u64 {
        let document = generator.user(index);
        match UserRecord::from_api(&document, GENERATOR_SOURCE) {
            Ok(record) => records.push(record),
            Err(reason) => rejected.push(Rejected::new(
                index,
                serde_json::to_value(&document).expect("documents serialise"),
                reason,
            )),
        }
    }
    (records, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generating_across_pages_matches_single_users() {
        let g = Generator::new("pages", &[]).unwrap();
        let (records, rejected) = generate_records(&g, 30);
        assert_eq!(records.len(), 30);
        assert!(rejected.is_empty());
        let third_page: Vec<UserRecord> = generated_page(&g, 10, 3).into_iter().map(Result::unwrap).collect();
        assert_eq!(records[20..], third_page[..]);
    }

    #[test]
    fn a_rejected_document_keeps_no_login_secret() {
        let g = Generator::new("secrets", &[]).unwrap();
        let mut document = serde_json::to_value(g.user(0)).unwrap();
        assert!(document["login"]["password"].is_string(), "the API shape has secrets");
        document["dob"] = serde_json::json!({"date": "not a date", "age": 3});
        let (_, reason) = flatten_document(document.clone(), API_SOURCE).unwrap_err();
        let rejected = Rejected::new(7, document, reason);
        let text = rejected.document.to_string();
        for secret in LOGIN_SECRETS {
            assert!(rejected.document["login"].get(secret).is_none(), "{secret} kept");
        }
        let login = g.user(0).login.unwrap();
        assert!(!text.contains(&format!("\"{}\"", login.password)), "{text}");
        assert_eq!(rejected.document["login"]["uuid"], serde_json::json!(login.uuid));
    }

    #[test]
    fn a_document_of_the_wrong_shape_is_rejected_as_malformed() {
        let flat = flatten_document(serde_json::json!({"dob": {"date": 5, "age": "old"}}), API_SOURCE);
        assert!(matches!(flat, Err((_, Rejection::Malformed(_)))));
    }
}

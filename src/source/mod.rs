//! Where user records come from: the embedded seeded [`Generator`] of randomuser.me 1.4
//! documents (the default) or a randomuser-compatible HTTP API ([`ApiClient`]). Both serve
//! pages; documents are flattened and validated into [`UserRecord`]s here, once, and rejected
//! ones are returned with their reason, never dropped silently.

mod generator;
mod http;
mod nationalities;

pub use generator::{AS_OF, Generator, GeneratorError, MAX_RESULTS_PER_PAGE};
pub use http::{ApiClient, HttpError};

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
    /// The document as received.
    pub document: Value,
    /// Why it was rejected.
    pub reason: Rejection,
}

/// The documents of one page in order, each a valid record or a rejected document; an empty
/// page means the source has no more users.
pub type Page = Vec<Result<UserRecord, Rejected>>;

/// A source of pages of users.
#[derive(Debug, Clone)]
pub enum Source {
    /// The embedded generator.
    Generator(Generator),
    /// An HTTP API, with the seed and nationalities to request.
    Api {
        client: ApiClient,
        seed: String,
        nats: Vec<String>,
    },
}

impl Source {
    /// Page `page` (from 1) of `results` users, validated.
    pub fn page(&self, results: u32, page: u32) -> Result<Page, HttpError> {
        let first = u64::from(page.saturating_sub(1)) * u64::from(results);
        let rejected = |i: usize, (document, reason): (Value, Rejection)| Rejected {
            index: first + i as u64,
            document,
            reason,
        };
        Ok(match self {
            Self::Generator(generator) => generator
                .page(results, page)
                .results
                .iter()
                .enumerate()
                .map(|(i, user)| {
                    UserRecord::from_api(user, GENERATOR_SOURCE).map_err(|reason| {
                        rejected(i, (serde_json::to_value(user).expect("documents serialise"), reason))
                    })
                })
                .collect(),
            Self::Api { client, seed, nats } => client
                .page(results, seed, page, nats)?
                .into_iter()
                .enumerate()
                .map(|(i, document)| flatten_document(document, API_SOURCE).map_err(|e| rejected(i, e)))
                .collect(),
        })
    }
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
            Err(reason) => rejected.push(Rejected {
                index,
                document: serde_json::to_value(&document).expect("documents serialise"),
                reason,
            }),
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
        let third_page: Vec<UserRecord> = Source::Generator(g)
            .page(10, 3)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records[20..], third_page[..]);
    }

    #[test]
    fn a_document_of_the_wrong_shape_is_rejected_as_malformed() {
        let flat = flatten_document(serde_json::json!({"dob": {"date": 5, "age": "old"}}), API_SOURCE);
        assert!(matches!(flat, Err((_, Rejection::Malformed(_)))));
    }
}

//! Where user records come from: the embedded seeded [`Generator`] of randomuser.me 1.4
//! documents (the default). Documents are flattened and validated into [`UserRecord`]s here,
//! once; rejected ones are returned with their reason, never dropped silently.

mod generator;
mod nationalities;

pub use generator::{AS_OF, Generator, GeneratorError, MAX_RESULTS_PER_PAGE};

use crate::record::{ApiUser, Rejection, UserRecord};

/// The source name recorded in the lineage of generated records.
pub const GENERATOR_SOURCE: &str = "generator";

/// A document that failed validation, with its position in the stream and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Index of the document in the source's stream, from 0.
    pub index: u64,
    /// The document as received.
    pub document: ApiUser,
    /// Why it was rejected.
    pub reason: Rejection,
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
                document,
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
        let third_page = g.page(10, 3).results;
        let expected: Vec<UserRecord> = third_page
            .iter()
            .map(|u| UserRecord::from_api(u, GENERATOR_SOURCE).unwrap())
            .collect();
        assert_eq!(records[20..], expected[..]);
    }
}

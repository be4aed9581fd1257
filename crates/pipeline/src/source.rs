//! The source of an ingest: the embedded generator (default) or a randomuser-compatible HTTP
//! API, both serving validated pages.

use contract_rl_core::source::{API_SOURCE, Generator, Page, Rejected, flatten_document, generated_page, page_start};

use crate::http::{ApiClient, HttpError};

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
        Ok(match self {
            Self::Generator(generator) => generated_page(generator, results, page),
            Self::Api { client, seed, nats } => {
                let first = page_start(results, page);
                client
                    .page(results, seed, page, nats)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, document)| {
                        flatten_document(document, API_SOURCE)
                            .map_err(|(document, reason)| Rejected::new(first + i as u64, document, reason))
                    })
                    .collect()
            }
        })
    }
}

//! The embedded, seeded generator of randomuser.me 1.4 documents: the default source.
//!
//! Parameters mirror the API (`results`, `seed`, `page`, `nat`). User number `i` of a seed is
//! drawn from its own random stream, so the same parameters always give the same users and
//! `page` walks through one seed's users exactly as the API does. Ages are computed at the
//! fixed date [`AS_OF`], not at "now", so a seed means the same users on every day.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::nationalities::{self, Nationality, Postcode};
use crate::record::{
    API_VERSION, ApiCoordinates, ApiDated, ApiId, ApiInfo, ApiLocation, ApiLogin, ApiName, ApiPicture, ApiResponse,
    ApiStreet, ApiTimezone, ApiUser, NATIONALITIES,
};

/// The date at which `dob.age` and `registered.age` are computed.
pub const AS_OF: &str = "2026-01-01T00:00:00Z";

/// Largest page the API serves.
pub const MAX_RESULTS_PER_PAGE: u32 = 5000;

/// Error from building a generator.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// A `nat` code that the API does not know.
    #[error("unknown nat {0:?}; allowed: {allowed}", allowed = NATIONALITIES.join(", "))]
    UnknownNat(String),
}

/// A seeded source of API documents.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: String,
    seed_key: u64,
    nats: Vec<&'static Nationality>,
}

impl Generator {
    /// A generator for `seed`, restricted to the `nat` codes given (all 21 when empty).
    pub fn new(seed: &str, nats: &[String]) -> Result<Self, GeneratorError> {
        let nats = if nats.is_empty() {
            nationalities::TABLE.iter().collect()
        } else {
            nats.iter()
                .map(|code| {
                    let code = code.trim().to_ascii_uppercase();
                    nationalities::lookup(&code).ok_or(GeneratorError::UnknownNat(code))
                })
                .collect::<Result<_, _>>()?
        };
        let digest = Sha256::digest(seed.as_bytes());
        let seed_key = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        Ok(Self {
            seed: seed.to_owned(),
            seed_key,
            nats,
        })
    }

    /// One page of the API: `results` users (clamped to 1..=5000 as the API does), page from 1.
    pub fn page(&self, results: u32, page: u32) -> ApiResponse {
        let results = if (1..=MAX_RESULTS_PER_PAGE).contains(&results) {
            results
        } else {
            1
        };
        let page = page.max(1);
        let first = u64::from(page - 1) * u64::from(results);
        ApiResponse {
            results: (first..first + u64::from(results)).map(|i| self.user(i)).collect(),
            info: ApiInfo {
                seed: self.seed.clone(),
                results,
                page,
                version: API_VERSION.to_owned(),
            },
        }
    }

    /// The `index`-th user of this seed (page-independent).
    pub fn user(&self, index: u64) -> ApiUser {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed_key ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = self.nats[rng.random_range(0..self.nats.len())];
        let female = rng.random_bool(0.5);
        let first = pick(&mut rng, if female { n.female } else { n.male });
        let last = pick(&mut rng, n.last);
        let title = if female {
            pick(&mut rng, &["Ms", "Mrs", "Miss"])
        } else {
            "Mr"
        };
        let (city, state) = *pick_ref(&mut rng, n.cities);
        let (tz_offset, tz_description) = *pick_ref(&mut rng, n.timezones);
        let dob = random_time(&mut rng, (1944, 1, 1), (2001, 12, 31));
        let registered = random_time(&mut rng, (2002, 1, 1), (2022, 12, 31));
        let postcode = match n.postcode {
            Postcode::Number(lo, hi) => Value::from(rng.random_range(lo..=hi)),
            Postcode::Text(pattern) => Value::from(fill_pattern(&mut rng, pattern)),
        };
        let username = format!(
            "{}{}{}",
            pick(
                &mut rng,
                &["blue", "happy", "silver", "tiny", "lazy", "brave", "heavy", "crazy"]
            ),
            pick(
                &mut rng,
                &["cat", "bird", "lion", "duck", "wolf", "fish", "bear", "frog"]
            ),
            rng.random_range(10..1000)
        );
        let uuid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        ApiUser {
            gender: Some(if female { "female" } else { "male" }.to_owned()),
            name: Some(ApiName {
                title: title.to_owned(),
                first: first.to_owned(),
                last: last.to_owned(),
            }),
            location: Some(ApiLocation {
                street: ApiStreet {
                    number: rng.random_range(1..10_000),
                    name: pick(&mut rng, n.streets).to_owned(),
                },
                city: city.to_owned(),
                state: state.to_owned(),
                country: n.country.to_owned(),
                postcode,
                coordinates: ApiCoordinates {
                    latitude: Value::from(format!("{:.4}", rng.random_range(n.latitude.0..n.latitude.1))),
                    longitude: Value::from(format!("{:.4}", rng.random_range(n.longitude.0..n.longitude.1))),
                },
                timezone: ApiTimezone {
                    offset: tz_offset.to_owned(),
                    description: tz_description.to_owned(),
                },
            }),
            email: Some(email(first, last)),
            login: Some(ApiLogin {
                uuid: Some(uuid.to_string()),
                username,
                password: fill_pattern(&mut rng, "llllllll"),
                salt: fill_pattern(&mut rng, "llllllll"),
                md5: hex(&mut rng, 16),
                sha1: hex(&mut rng, 20),
                sha256: hex(&mut rng, 32),
            }),
            dob: Some(dated(dob)),
            registered: Some(dated(registered)),
            phone: Some(fill_pattern(&mut rng, n.phone)),
            cell: Some(fill_pattern(&mut rng, n.cell)),
            id: Some(ApiId {
                name: n.id_name.to_owned(),
                value: n.id_pattern.map(|p| fill_pattern(&mut rng, p)),
            }),
            picture: Some(picture(rng.random_range(0..100), female)),
            nat: Some(n.nat.to_owned()),
        }
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn pick_ref<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// `#` → digit, `L` → upper-case letter, `l` → lower-case letter; anything else is copied.
fn fill_pattern(rng: &mut ChaCha8Rng, pattern: &str) -> String {
    pattern
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.random_range(0..10u8)),
            'L' => char::from(b'A' + rng.random_range(0..26u8)),
            'l' => char::from(b'a' + rng.random_range(0..26u8)),
            other => other,
        })
        .collect()
}

fn hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

fn random_time(rng: &mut ChaCha8Rng, from: (i32, u32, u32), to: (i32, u32, u32)) -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(from.0, from.1, from.2, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(to.0, to.1, to.2, 23, 59, 59).unwrap();
    let millis = rng.random_range(start.timestamp_millis()..=end.timestamp_millis());
    DateTime::from_timestamp_millis(millis).expect("in range")
}

fn dated(time: DateTime<Utc>) -> ApiDated {
    ApiDated {
        date: time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        age: whole_years_until_as_of(time),
    }
}

fn whole_years_until_as_of(time: DateTime<Utc>) -> i64 {
    let as_of = DateTime::parse_from_rfc3339(AS_OF)
        .expect("valid constant")
        .with_timezone(&Utc);
    let mut years = i64::from(as_of.year() - time.year());
    if (as_of.month(), as_of.day()) < (time.month(), time.day()) {
        years -= 1;
    }
    years
}

fn email(first: &str, last: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '\'')
            .flat_map(char::to_lowercase)
            .collect()
    };
    format!("{}.{}@example.com", clean(first), clean(last))
}

fn picture(number: u32, female: bool) -> ApiPicture {
    let folder = if female { "women" } else { "men" };
    let url = |size: &str| format!("https://randomuser.me/api/portraits/{size}{folder}/{number}.jpg");
    ApiPicture {
        large: url(""),
        medium: url("med/"),
        thumbnail: url("thumb/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::UserRecord;

    fn all_nats() -> Generator {
        Generator::new("workbench", &[]).unwrap()
    }

    #[test]
    fn the_same_parameters_give_the_same_users() {
        assert_eq!(all_nats().page(50, 3), all_nats().page(50, 3));
        assert_ne!(all_nats().page(50, 3).results, all_nats().page(50, 4).results);
        let other = Generator::new("other", &[]).unwrap();
        assert_ne!(all_nats().page(5, 1).results, other.page(5, 1).results);
    }

    #[test]
    fn pages_walk_through_one_seeds_users() {
        let g = all_nats();
        let big = g.page(20, 1).results;
        let second = g.page(10, 2).results;
        assert_eq!(big[10..], second[..]);
    }

    #[test]
    fn results_outside_the_api_range_fall_back_to_one() {
        assert_eq!(all_nats().page(0, 1).results.len(), 1);
        assert_eq!(all_nats().page(5001, 1).results.len(), 1);
        assert_eq!(all_nats().page(5000, 1).info.results, 5000);
    }

    #[test]
    fn every_generated_user_is_valid_with_dates_in_the_api_ranges() {
        for user in all_nats().page(2000, 1).results {
            let r = UserRecord::from_api(&user, "generator").expect("valid");
            assert!((1944..=2001).contains(&r.dob.year()), "{}", r.dob);
            assert!((2002..=2022).contains(&r.registered.year()), "{}", r.registered);
            assert!((24..=82).contains(&r.age), "age {}", r.age);
            assert!((3..=24).contains(&r.seniority_years));
        }
    }

    #[test]
    fn postcodes_are_numbers_except_for_gb_and_ca() {
        for user in all_nats().page(1000, 1).results {
            let nat = user.nat.clone().unwrap();
            let postcode = &user.location.as_ref().unwrap().postcode;
            assert_eq!(postcode.is_string(), nat == "GB" || nat == "CA", "{nat}: {postcode}");
            assert!(postcode.is_string() || postcode.is_u64());
        }
    }

    #[test]
    fn the_document_has_the_api_shape() {
        let page = Generator::new("abc", &["FR".into()]).unwrap().page(1, 1);
        let json = serde_json::to_value(&page).unwrap();
        let user = &json["results"][0];
        for key in [
            "gender",
            "name",
            "location",
            "email",
            "login",
            "dob",
            "registered",
            "phone",
            "cell",
            "id",
            "picture",
            "nat",
        ] {
            assert!(!user[key].is_null(), "missing {key}");
        }
        assert!(user["location"]["coordinates"]["latitude"].is_string());
        assert!(user["location"]["postcode"].is_number());
        assert_eq!(user["nat"], "FR");
        assert_eq!(json["info"]["version"], "1.4");
        assert_eq!(json["info"]["seed"], "abc");
    }

    #[test]
    fn the_nat_filter_is_respected_and_unknown_codes_refused() {
        let g = Generator::new("s", &["gb".into(), "CA".into()]).unwrap();
        for user in g.page(200, 1).results {
            assert!(["GB", "CA"].contains(&user.nat.as_deref().unwrap()));
        }
        assert!(Generator::new("s", &["XX".into()]).is_err());
    }

    #[test]
    fn id_values_are_null_exactly_for_ir_nz_tr_ua() {
        for user in all_nats().page(500, 1).results {
            let null = user.id.as_ref().unwrap().value.is_none();
            let nat = user.nat.unwrap();
            assert_eq!(null, ["IR", "NZ", "TR", "UA"].contains(&nat.as_str()), "{nat}");
        }
    }
}

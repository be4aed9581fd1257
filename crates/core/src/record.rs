//! User records: the randomuser.me 1.4 document shape, the flat [`UserRecord`] every later
//! stage uses, and the validation that maps one to the other.
//!
//! Sources (the embedded generator, the HTTP client) produce [`ApiUser`] documents; they are
//! flattened here exactly once. Invalid documents are rejected with a [`Rejection`] that says
//! why; nothing is silently repaired. Secrets of the `login` object (password, salt, hashes)
//! are never copied into a record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The 21 nationalities of the randomuser.me 1.4 API.
pub const NATIONALITIES: [&str; 21] = [
    "AU", "BR", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IN", "IR", "MX", "NL", "NO", "NZ", "RS", "TR",
    "UA", "US",
];

/// The API version whose shape the sources reproduce.
pub const API_VERSION: &str = "1.4";

/// A whole API answer: `{"results": [...], "info": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse {
    /// The users of this page; may be empty.
    pub results: Vec<ApiUser>,
    /// Echo of the request parameters.
    pub info: ApiInfo,
}

/// The `info` object of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiInfo {
    /// The seed that reproduces this answer.
    pub seed: String,
    /// How many results were asked for.
    pub results: u32,
    /// The page number, from 1.
    pub page: u32,
    /// The API version, "1.4".
    pub version: String,
}

/// One user document as the API sends it. Every field is optional so that a missing one is
/// reported as a [`Rejection`] rather than a parse failure of the whole page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ApiUser {
    pub gender: Option<String>,
    pub name: Option<ApiName>,
    pub location: Option<ApiLocation>,
    pub email: Option<String>,
    pub login: Option<ApiLogin>,
    pub dob: Option<ApiDated>,
    pub registered: Option<ApiDated>,
    pub phone: Option<String>,
    pub cell: Option<String>,
    pub id: Option<ApiId>,
    pub picture: Option<ApiPicture>,
    pub nat: Option<String>,
}

/// `name`: title, first and last name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiName {
    pub title: String,
    pub first: String,
    pub last: String,
}

/// `location`, with the API's quirks kept: postcode integer or string, coordinates strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiLocation {
    pub street: ApiStreet,
    pub city: String,
    pub state: String,
    pub country: String,
    /// An integer for most nationalities, a string for GB and CA.
    pub postcode: Value,
    pub coordinates: ApiCoordinates,
    pub timezone: ApiTimezone,
}

/// `location.street`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiStreet {
    pub number: u32,
    pub name: String,
}

/// `location.coordinates`: decimal degrees, as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiCoordinates {
    pub latitude: Value,
    pub longitude: Value,
}

/// `location.timezone`: offset such as "+1:00", "-3:30", "0:00".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTimezone {
    pub offset: String,
    pub description: String,
}

/// `login`: the uuid and username are kept; the secrets never are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiLogin {
    pub uuid: Option<String>,
    pub username: String,
    pub password: String,
    pub salt: String,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

/// `dob` and `registered`: an ISO-8601 timestamp and the age in years it implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiDated {
    pub date: String,
    pub age: i64,
}

/// `id`: a national identifier; `value` is null for IR, NZ, TR and UA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiId {
    pub name: String,
    pub value: Option<String>,
}

/// `picture`: portrait URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiPicture {
    pub large: String,
    pub medium: String,
    pub thumbnail: String,
}

/// A flat, validated user record: the unit of every stage after the source. Field names are
/// the column names of the snapshot and of the Cassandra table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// `login.uuid`: the idempotency key end to end.
    pub user_id: Uuid,
    pub gender: String,
    pub title: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub username: String,
    pub dob: DateTime<Utc>,
    pub age: i32,
    pub registered: DateTime<Utc>,
    /// `registered.age`: whole years since registration.
    pub seniority_years: i32,
    pub phone: String,
    pub cell: String,
    /// Street number and name, as one line.
    pub street: String,
    pub city: String,
    pub state: String,
    pub country: String,
    /// Always text, whatever the API sent.
    pub postcode: String,
    pub latitude: f64,
    pub longitude: f64,
    pub tz_offset_minutes: i32,
    pub nat: String,
    /// The large portrait URL.
    pub picture: String,
    /// Lineage: which source produced the record ("generator", "api").
    pub source: String,
    /// Lineage: when the sink wrote the record; absent outside the Kafka path.
    pub ingested_at: Option<DateTime<Utc>>,
    /// Lineage: the Kafka partition the record came through.
    pub kafka_partition: Option<i32>,
    /// Lineage: the Kafka offset the record came through.
    pub kafka_offset: Option<i64>,
}

/// Why a document was rejected. The reason travels with a dead-lettered record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The document is not of the API shape (a field of the wrong type, not an object).
    #[error("not a randomuser.me document: {0}")]
    Malformed(String),
    /// A field the record needs is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// `login.uuid` is not a UUID.
    #[error("login.uuid is not a UUID: {0:?}")]
    InvalidUuid(String),
    /// A timestamp does not parse as ISO-8601.
    #[error("{field} is not an ISO-8601 timestamp: {value:?}")]
    UnparsableDate { field: &'static str, value: String },
    /// A coordinate is not a decimal number.
    #[error("{field} is not a number: {value}")]
    InvalidCoordinate { field: &'static str, value: String },
    /// A coordinate lies outside [-90, 90] or [-180, 180].
    #[error("{field} {value} is outside [-{limit}, {limit}]")]
    CoordinateOutOfRange {
        field: &'static str,
        value: f64,
        limit: f64,
    },
    /// `nat` is not one of [`NATIONALITIES`].
    #[error("unknown nat {0:?}; allowed: {allowed}", allowed = NATIONALITIES.join(", "))]
    UnknownNat(String),
    /// The postcode is neither an integer nor a string.
    #[error("postcode must be an integer or a string, got {0}")]
    InvalidPostcode(String),
    /// The timezone offset is not of the form "+H:MM".
    #[error("timezone offset is not of the form +H:MM: {0:?}")]
    InvalidTimezone(String),
    /// An age is negative or beyond any human life.
    #[error("{field} {value} is outside 0..=130")]
    InvalidAge { field: &'static str, value: i64 },
}

impl UserRecord {
    /// Flattens and validates one API document. `source` names where it came from.
    pub fn from_api(user: &ApiUser, source: &str) -> Result<Self, Rejection> {
        use Rejection::MissingField;
        let login = user.login.as_ref().ok_or(MissingField("login"))?;
        let uuid_text = login.uuid.as_deref().ok_or(MissingField("login.uuid"))?;
        let user_id = Uuid::parse_str(uuid_text).map_err(|_| Rejection::InvalidUuid(uuid_text.into()))?;
        let nat = user.nat.clone().ok_or(MissingField("nat"))?;
        let name = user.name.as_ref().ok_or(MissingField("name"))?;
        let location = user.location.as_ref().ok_or(MissingField("location"))?;
        let dob = user.dob.as_ref().ok_or(MissingField("dob"))?;
        let registered = user.registered.as_ref().ok_or(MissingField("registered"))?;
        let record = Self {
            user_id,
            gender: user.gender.clone().ok_or(MissingField("gender"))?,
            title: name.title.clone(),
            first_name: name.first.clone(),
            last_name: name.last.clone(),
            email: user.email.clone().ok_or(MissingField("email"))?,
            username: login.username.clone(),
            dob: parse_timestamp("dob.date", &dob.date)?,
            age: checked_age("dob.age", dob.age)?,
            registered: parse_timestamp("registered.date", &registered.date)?,
            seniority_years: checked_age("registered.age", registered.age)?,
            phone: user.phone.clone().ok_or(MissingField("phone"))?,
            cell: user.cell.clone().ok_or(MissingField("cell"))?,
            street: format!("{} {}", location.street.number, location.street.name),
            city: location.city.clone(),
            state: location.state.clone(),
            country: location.country.clone(),
            postcode: postcode_text(&location.postcode)?,
            latitude: coordinate("location.coordinates.latitude", &location.coordinates.latitude, 90.0)?,
            longitude: coordinate("location.coordinates.longitude", &location.coordinates.longitude, 180.0)?,
            tz_offset_minutes: tz_offset_minutes(&location.timezone.offset)?,
            nat,
            picture: user
                .picture
                .as_ref()
                .map(|p| p.large.clone())
                .ok_or(MissingField("picture"))?,
            source: source.to_owned(),
            ingested_at: None,
            kafka_partition: None,
            kafka_offset: None,
        };
        record.validate()?;
        Ok(record)
    }

    /// Checks the invariants of a record that arrives already flat (from Kafka): known nat,
    /// coordinates and ages in range.
    pub fn validate(&self) -> Result<(), Rejection> {
        if !NATIONALITIES.contains(&self.nat.as_str()) {
            return Err(Rejection::UnknownNat(self.nat.clone()));
        }
        in_range("latitude", self.latitude, 90.0)?;
        in_range("longitude", self.longitude, 180.0)?;
        checked_age("age", i64::from(self.age))?;
        checked_age("seniority_years", i64::from(self.seniority_years))?;
        Ok(())
    }
}

fn in_range(field: &'static str, degrees: f64, limit: f64) -> Result<(), Rejection> {
    if !degrees.is_finite() {
        return Err(Rejection::InvalidCoordinate {
            field,
            value: degrees.to_string(),
        });
    }
    if degrees.abs() > limit {
        return Err(Rejection::CoordinateOutOfRange {
            field,
            value: degrees,
            limit,
        });
    }
    Ok(())
}

fn parse_timestamp(field: &'static str, value: &str) -> Result<DateTime<Utc>, Rejection> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Rejection::UnparsableDate {
            field,
            value: value.to_owned(),
        })
}

fn checked_age(field: &'static str, value: i64) -> Result<i32, Rejection> {
    match value {
        0..=130 => Ok(value as i32),
        _ => Err(Rejection::InvalidAge { field, value }),
    }
}

fn postcode_text(value: &Value) -> Result<String, Rejection> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(Rejection::InvalidPostcode(other.to_string())),
    }
}

fn coordinate(field: &'static str, value: &Value, limit: f64) -> Result<f64, Rejection> {
    let parsed = match value {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let degrees = parsed.ok_or_else(|| Rejection::InvalidCoordinate {
        field,
        value: value.to_string(),
    })?;
    in_range(field, degrees, limit)?;
    Ok(degrees)
}

/// Parses "+1:00", "-3:30", "0:00" into minutes east of UTC.
fn tz_offset_minutes(offset: &str) -> Result<i32, Rejection> {
    let invalid = || Rejection::InvalidTimezone(offset.to_owned());
    let (sign, rest) = match offset.as_bytes().first() {
        Some(b'+') => (1, &offset[1..]),
        Some(b'-') => (-1, &offset[1..]),
        _ => (1, offset),
    };
    let (hours, minutes) = rest.split_once(':').ok_or_else(invalid)?;
    let hours: i32 = hours.parse().map_err(|_| invalid())?;
    let minutes: i32 = minutes.parse().map_err(|_| invalid())?;
    if !(0..=14).contains(&hours) || !(0..60).contains(&minutes) {
        return Err(invalid());
    }
    Ok(sign * (hours * 60 + minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "gender": "female",
            "name": {"title": "Ms", "first": "Léa", "last": "Martin"},
            "location": {
                "street": {"number": 4114, "name": "Rue de la Paix"},
                "city": "Paris", "state": "Île-de-France", "country": "France",
                "postcode": 75012,
                "coordinates": {"latitude": "48.8566", "longitude": "2.3522"},
                "timezone": {"offset": "+1:00", "description": "Brussels, Copenhagen, Madrid, Paris"}
            },
            "email": "lea.martin@example.com",
            "login": {"uuid": "8d9e6f4a-1b2c-4d3e-8f40-123456789abc", "username": "bluecat42",
                      "password": "hunter2", "salt": "s", "md5": "m", "sha1": "s1", "sha256": "s2"},
            "dob": {"date": "1987-03-04T07:32:12.123Z", "age": 38},
            "registered": {"date": "2012-05-13T11:20:54.402Z", "age": 13},
            "phone": "01-23-45-67-89", "cell": "06-12-34-56-78",
            "id": {"name": "INSEE", "value": "2870304123456 12"},
            "picture": {"large": "https://randomuser.me/api/portraits/women/12.jpg",
                        "medium": "m", "thumbnail": "t"},
            "nat": "FR"
        })
    }

    fn flatten(doc: Value) -> Result<UserRecord, Rejection> {
        let user: ApiUser = serde_json::from_value(doc).expect("document parses");
        UserRecord::from_api(&user, "test")
    }

    #[test]
    fn a_valid_document_flattens_every_field() {
        let record = flatten(document()).unwrap();
        assert_eq!(record.user_id.to_string(), "8d9e6f4a-1b2c-4d3e-8f40-123456789abc");
        assert_eq!(record.first_name, "Léa");
        assert_eq!(record.postcode, "75012");
        assert_eq!(record.street, "4114 Rue de la Paix");
        assert_eq!(record.tz_offset_minutes, 60);
        assert_eq!(record.age, 38);
        assert_eq!(record.seniority_years, 13);
        assert_eq!(record.latitude, 48.8566);
        assert_eq!(record.dob.to_rfc3339(), "1987-03-04T07:32:12.123+00:00");
    }

    #[test]
    fn login_secrets_never_reach_the_record() {
        let record = flatten(document()).unwrap();
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("hunter2"));
        assert!(!text.contains("password"));
    }

    #[test]
    fn a_string_postcode_is_kept_as_text() {
        let mut doc = document();
        doc["location"]["postcode"] = json!("SW1A 1AA");
        doc["nat"] = json!("GB");
        assert_eq!(flatten(doc).unwrap().postcode, "SW1A 1AA");
    }

    #[test]
    fn a_fractional_postcode_is_rejected() {
        let mut doc = document();
        doc["location"]["postcode"] = json!(75.5);
        assert!(matches!(flatten(doc), Err(Rejection::InvalidPostcode(_))));
    }

    #[test]
    fn a_missing_uuid_is_rejected() {
        let mut doc = document();
        doc["login"]["uuid"] = Value::Null;
        assert_eq!(flatten(doc), Err(Rejection::MissingField("login.uuid")));
    }

    #[test]
    fn a_malformed_uuid_is_rejected() {
        let mut doc = document();
        doc["login"]["uuid"] = json!("not-a-uuid");
        assert!(matches!(flatten(doc), Err(Rejection::InvalidUuid(_))));
    }

    #[test]
    fn an_unparsable_date_is_rejected() {
        let mut doc = document();
        doc["dob"]["date"] = json!("04/03/1987");
        assert_eq!(
            flatten(doc),
            Err(Rejection::UnparsableDate {
                field: "dob.date",
                value: "04/03/1987".into()
            })
        );
    }

    #[test]
    fn out_of_range_coordinates_are_rejected() {
        let mut doc = document();
        doc["location"]["coordinates"]["latitude"] = json!("-91.5");
        assert!(matches!(
            flatten(doc),
            Err(Rejection::CoordinateOutOfRange {
                field: "location.coordinates.latitude",
                ..
            })
        ));
        let mut doc = document();
        doc["location"]["coordinates"]["longitude"] = json!("east");
        assert!(matches!(flatten(doc), Err(Rejection::InvalidCoordinate { .. })));
    }

    #[test]
    fn an_unknown_nat_is_rejected_naming_the_allowed_ones() {
        let mut doc = document();
        doc["nat"] = json!("XX");
        let err = flatten(doc).unwrap_err();
        assert_eq!(err, Rejection::UnknownNat("XX".into()));
        assert!(err.to_string().contains("FR"));
    }

    #[test]
    fn timezone_offsets_parse_with_sign_and_minutes() {
        assert_eq!(tz_offset_minutes("-3:30"), Ok(-210));
        assert_eq!(tz_offset_minutes("0:00"), Ok(0));
        assert_eq!(tz_offset_minutes("+5:45"), Ok(345));
        assert!(tz_offset_minutes("UTC").is_err());
    }

    #[test]
    fn a_missing_dob_is_rejected_not_dropped() {
        let mut doc = document();
        doc.as_object_mut().unwrap().remove("dob");
        assert_eq!(flatten(doc), Err(Rejection::MissingField("dob")));
    }
}

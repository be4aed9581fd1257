//! The one definition of the user-record columns: their names, types and nullability, in the
//! order of [`UserRecord`]'s fields, and the conversion of a record to and from a row of
//! [`Field`]s. The Parquet snapshot and the Cassandra table are derived from [`COLUMNS`]; the
//! JSON Schema of the Kafka messages is checked against it by a test.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::record::UserRecord;

/// The type of a column, named after what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Uuid,
    Text,
    /// UTC, millisecond precision.
    Timestamp,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    BigInt,
    /// 64-bit float.
    Double,
}

/// One column of the user-record schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// Whether the value may be absent (lineage filled only on the Kafka path).
    pub nullable: bool,
}

/// One value of a row, borrowed from a record or owned when read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    Uuid(Uuid),
    Text(Cow<'a, str>),
    Timestamp(DateTime<Utc>),
    Int(i32),
    BigInt(i64),
    Double(f64),
    Null,
}

impl Field<'_> {
    /// The UUID, if this is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        if let Self::Uuid(v) = self { Some(*v) } else { None }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        if let Self::Text(v) = self { Some(v) } else { None }
    }

    /// The timestamp, if this is one.
    pub fn as_timestamp(&self) -> Option<DateTime<Utc>> {
        if let Self::Timestamp(v) = self { Some(*v) } else { None }
    }

    /// The 32-bit integer, if this is one.
    pub fn as_int(&self) -> Option<i32> {
        if let Self::Int(v) = self { Some(*v) } else { None }
    }

    /// The 64-bit integer, if this is one.
    pub fn as_big_int(&self) -> Option<i64> {
        if let Self::BigInt(v) = self { Some(*v) } else { None }
    }

    /// The float, if this is one.
    pub fn as_double(&self) -> Option<f64> {
        if let Self::Double(v) = self { Some(*v) } else { None }
    }
}

/// A row that does not fit the schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column `{column}`: expected {expected}, found {found}")]
pub struct FieldError {
    pub column: &'static str,
    pub expected: String,
    pub found: String,
}

/// A Rust type that a column holds.
trait Value: Sized {
    const TYPE: ColumnType;
    const NULLABLE: bool = false;
    fn to_field(&self) -> Field<'_>;
    fn from_field(field: Field<'_>) -> Option<Self>;
}

macro_rules! value {
    ($rust:ty, $variant:ident, |$a:ident| $to:expr, |$b:ident| $from:expr) => {
        impl Value for $rust {
            const TYPE: ColumnType = ColumnType::$variant;
            fn to_field(&self) -> Field<'_> {
                let $a = self;
                Field::$variant($to)
            }
            fn from_field(field: Field<'_>) -> Option<Self> {
                match field {
                    Field::$variant($b) => Some($from),
                    _ => None,
                }
            }
        }
    };
}

value!(Uuid, Uuid, |v| *v, |v| v);
value!(String, Text, |v| Cow::Borrowed(v.as_str()), |v| v.into_owned());
value!(DateTime<Utc>, Timestamp, |v| *v, |v| v);
value!(i32, Int, |v| *v, |v| v);
value!(i64, BigInt, |v| *v, |v| v);
value!(f64, Double, |v| *v, |v| v);

impl<T: Value> Value for Option<T> {
    const TYPE: ColumnType = T::TYPE;
    const NULLABLE: bool = true;
    fn to_field(&self) -> Field<'_> {
        self.as_ref().map_or(Field::Null, T::to_field)
    }
    fn from_field(field: Field<'_>) -> Option<Self> {
        match field {
            Field::Null => Some(None),
            other => T::from_field(other).map(Some),
        }
    }
}

/// Lists the columns once: each `field: RustType` of [`UserRecord`], in order. A field missing
/// here, or a type that differs from the struct's, does not compile.
macro_rules! columns {
    ($($field:ident: $rust:ty),* $(,)?) => {
        /// The user-record columns, in field order.
        pub const COLUMNS: &[Column] = &[$(Column {
            name: stringify!($field),
            ty: <$rust as Value>::TYPE,
            nullable: <$rust as Value>::NULLABLE,
        }),*];

        impl UserRecord {
            /// The record's values in [`COLUMNS`] order.
            pub fn fields(&self) -> Vec<Field<'_>> {
                vec![$(<$rust as Value>::to_field(&self.$field)),*]
            }

            /// A record from values in [`COLUMNS`] order (as read back from a store).
            pub fn from_fields<'a>(fields: impl IntoIterator<Item = Field<'a>>) -> Result<Self, FieldError> {
                let mut fields = fields.into_iter();
                Ok(Self {$($field: {
                    let column = stringify!($field);
                    let field = fields.next().unwrap_or(Field::Null);
                    let found = format!("{field:?}");
                    <$rust as Value>::from_field(field).ok_or_else(|| FieldError {
                        column,
                        expected: describe(<$rust as Value>::TYPE, <$rust as Value>::NULLABLE),
                        found,
                    })?
                }),*})
            }
        }
    };
}

fn describe(ty: ColumnType, nullable: bool) -> String {
    if nullable {
        format!("{ty:?} or null")
    } else {
        format!("{ty:?}")
    }
}

columns! {
    user_id: Uuid,
    gender: String,
    title: String,
    first_name: String,
    last_name: String,
    email: String,
    username: String,
    dob: DateTime<Utc>,
    age: i32,
    registered: DateTime<Utc>,
    seniority_years: i32,
    phone: String,
    cell: String,
    street: String,
    city: String,
    state: String,
    country: String,
    postcode: String,
    latitude: f64,
    longitude: f64,
    tz_offset_minutes: i32,
    nat: String,
    picture: String,
    source: String,
    ingested_at: Option<DateTime<Utc>>,
    kafka_partition: Option<i32>,
    kafka_offset: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Generator, generate_records};

    #[test]
    fn columns_follow_the_serialised_record_field_for_field() {
        let (records, _) = generate_records(&Generator::new("schema", &[]).unwrap(), 1);
        let json = serde_json::to_value(&records[0]).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(names, keys);
    }

    #[test]
    fn a_record_round_trips_through_its_fields() {
        let (records, _) = generate_records(&Generator::new("schema", &[]).unwrap(), 50);
        for mut record in records {
            record.kafka_partition = Some(2);
            record.kafka_offset = Some(7);
            assert_eq!(UserRecord::from_fields(record.fields()).unwrap(), record);
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_column() {
        let (records, _) = generate_records(&Generator::new("schema", &[]).unwrap(), 1);
        let mut fields = records[0].fields();
        fields[8] = Field::Text("forty".into());
        let error = UserRecord::from_fields(fields).unwrap_err();
        assert_eq!(error.column, "age");
        assert_eq!(error.expected, "Int");
        fields = records[0].fields();
        fields[0] = Field::Null;
        assert_eq!(UserRecord::from_fields(fields).unwrap_err().column, "user_id");
    }
}

//! Integer fields as JSON defines them. In JSON (and the JSON Schema of the
//! OpenAPI document) `229.0` and `2.29e2` are the integer 229, but serde's
//! integer types refuse anything written with a fraction or exponent. Fields
//! that take `#[serde(deserialize_with = "json_int::opt")]` accept every
//! spelling of an integer in range, and still refuse `229.5` or `-1` for an
//! unsigned field, naming the expected range.

use serde::Deserialize;
use serde::de::{Deserializer, Error, Unexpected};

/// An optional integer of type `T`, written in any JSON form of an integer.
pub fn opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    let whole: i128 = if let Some(u) = n.as_u64() {
        u.into()
    } else if let Some(i) = n.as_i64() {
        i.into()
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        // Beyond 2^64 no u64/i64 field can take it anyway; the cast saturates.
        if f.fract() != 0.0 || !f.is_finite() {
            return Err(D::Error::invalid_type(Unexpected::Float(f), &"an integer"));
        }
        f as i128
    };
    T::try_from(whole).map(Some).map_err(|_| {
        D::Error::custom(format!("invalid value: integer `{whole}`, expected {}", std::any::type_name::<T>()))
    })
}

/// A required integer of type `T`, written in any JSON form of an integer.
pub fn exact<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    opt(d)?.ok_or_else(|| D::Error::invalid_type(Unexpected::Option, &"an integer"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct T {
        #[serde(default, deserialize_with = "super::opt")]
        n: Option<u32>,
    }

    fn parse(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_spelling_of_an_integer_is_one() {
        for json in [r#"{"n": 229}"#, r#"{"n": 229.0}"#, r#"{"n": 2.29e2}"#] {
            assert_eq!(parse(json), Ok(T { n: Some(229) }), "{json}");
        }
        assert_eq!(parse(r#"{"n": null}"#), Ok(T { n: None }));
        assert_eq!(parse("{}"), Ok(T { n: None }));
    }

    #[test]
    fn fractions_and_out_of_range_values_are_refused() {
        assert!(parse(r#"{"n": 229.5}"#).unwrap_err().contains("expected an integer"));
        assert!(parse(r#"{"n": -1}"#).unwrap_err().contains("expected u32"));
        assert!(parse(r#"{"n": 4294967296}"#).unwrap_err().contains("expected u32"));
        assert!(parse(r#"{"n": "1"}"#).is_err());
    }

    #[test]
    fn a_required_integer_takes_every_spelling_and_must_be_there() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct R {
            #[serde(deserialize_with = "super::exact")]
            n: u32,
        }
        let parse = |json: &str| serde_json::from_str::<R>(json).map_err(|e| e.to_string());
        assert_eq!(parse(r#"{"n": 51.0}"#), Ok(R { n: 51 }));
        assert!(parse(r#"{"n": null}"#).is_err());
        assert!(parse("{}").is_err());
        assert!(parse(r#"{"n": 4294967296}"#).unwrap_err().contains("u32"));
    }
}

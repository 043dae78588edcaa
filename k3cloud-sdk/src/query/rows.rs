//! Decoding ExecuteBillQuery rows (`[[v1, v2, …], …]`) into the caller's type by field-key
//! position, streaming, without an intermediate `Value` per row.
//!
//! A struct (or a map, or `serde_json::Value`) sees each row as a map from field key to cell;
//! a tuple or `Vec` sees it as the positional array.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde::forward_to_deserialize_any;

/// Deserializes the whole answer: a sequence of rows.
pub(crate) struct Rows<'k, T> {
    pub(crate) keys: &'k [String],
    pub(crate) marker: PhantomData<T>,
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Rows<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for Rows<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(10_000));
        while let Some(row) = seq.next_element_seed(RowSeed {
            keys: self.keys,
            marker: PhantomData,
        })? {
            out.push(row);
        }
        Ok(out)
    }
}

struct RowSeed<'k, T> {
    keys: &'k [String],
    marker: PhantomData<T>,
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for RowSeed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize(RowDeserializer {
            inner: d,
            keys: self.keys,
        })
    }
}

/// Presents one positional row to `T`.
struct RowDeserializer<'k, D> {
    inner: D,
    keys: &'k [String],
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for RowDeserializer<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_seq(KeyedRow {
            visitor,
            keys: self.keys,
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct map struct enum
        identifier ignored_any
    }
}

/// Turns the row's sequence into a map keyed by the field keys.
struct KeyedRow<'k, V> {
    visitor: V,
    keys: &'k [String],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for KeyedRow<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row of {} cells", self.keys.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(CellsAsMap {
            seq,
            keys: self.keys,
            next: 0,
        })
    }
}

struct CellsAsMap<'k, A> {
    seq: A,
    keys: &'k [String],
    next: usize,
}

impl<'de, A: SeqAccess<'de>> MapAccess<'de> for CellsAsMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.keys.get(self.next) else {
            // Cells beyond the field keys carry no name; skip them.
            while self.seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let key: StrDeserializer<'_, A::Error> = key.as_str().into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let key = &self.keys[self.next];
        self.next += 1;
        self.seq
            .next_element_seed(seed)?
            .ok_or_else(|| de::Error::custom(format!("the row has no cell for field key `{key}`")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.keys.len() - self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{Value, json};

    fn decode<T: for<'de> Deserialize<'de>>(
        keys: &[&str],
        body: &str,
    ) -> Result<Vec<T>, serde_json::Error> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let mut de = serde_json::Deserializer::from_str(body);
        let rows = Rows {
            keys: &keys,
            marker: PhantomData,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(rows)
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Material {
        #[serde(rename = "FNumber")]
        number: String,
        #[serde(rename = "FMATERIALID")]
        id: i64,
        #[serde(rename = "FBaseUnitId.FNumber", default)]
        unit: Option<String>,
    }

    const BODY: &str = r#"[[100001, "MAT0001", "Pcs"], [100002, "MAT0002", null]]"#;
    const KEYS: [&str; 3] = ["FMATERIALID", "FNumber", "FBaseUnitId.FNumber"];

    #[test]
    fn structs_match_by_field_key_not_struct_order() {
        let rows: Vec<Material> = decode(&KEYS, BODY).unwrap();
        assert_eq!(
            rows,
            vec![
                Material {
                    number: "MAT0001".into(),
                    id: 100_001,
                    unit: Some("Pcs".into())
                },
                Material {
                    number: "MAT0002".into(),
                    id: 100_002,
                    unit: None
                },
            ]
        );
    }

    #[test]
    fn tuples_and_values() {
        let rows: Vec<(i64, String, Option<String>)> = decode(&KEYS, BODY).unwrap();
        assert_eq!(rows[1], (100_002, "MAT0002".into(), None));
        let rows: Vec<Value> = decode(&KEYS, BODY).unwrap();
        assert_eq!(
            rows[0],
            json!({"FMATERIALID": 100_001, "FNumber": "MAT0001", "FBaseUnitId.FNumber": "Pcs"})
        );
        let rows: Vec<Vec<Value>> = decode(&KEYS, BODY).unwrap();
        assert_eq!(rows[1], vec![json!(100_002), json!("MAT0002"), Value::Null]);
    }

    #[test]
    fn short_and_long_rows() {
        let err = decode::<Material>(&KEYS, r#"[[1, "A"]]"#).unwrap_err();
        assert!(err.to_string().contains("FBaseUnitId.FNumber"), "{err}");
        let rows: Vec<Value> = decode(&["A"], "[[1, 2, [3]]]").unwrap();
        assert_eq!(rows, vec![json!({"A": 1})]);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(decode::<Material>(&KEYS, r#"[{"FNumber": "x"}]"#).is_err());
        assert!(decode::<Material>(&KEYS, r#"{"Result": {}}"#).is_err());
        assert!(decode::<Material>(&KEYS, r#"[["not a number", "A", null]]"#).is_err());
        assert_eq!(decode::<Material>(&KEYS, "[]").unwrap(), vec![]);
    }
}

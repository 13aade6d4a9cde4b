//! Reads a JSON value as any serde type while tracking where it is: the
//! fields a struct declares (serde hands them to `deserialize_struct`) are
//! compared with the keys present, so every unknown key is reported with
//! its path and the nearest declared name, and a type error names the
//! field it happened at. Used for the Kubernetes core types embedded in
//! resources (volumes, mounts, resources), whose k8s-openapi
//! deserializers otherwise drop unknown keys silently.

use std::cell::RefCell;
use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;

use super::{child, item, unknown_field};
use crate::validate::Violation;

/// Reads `value` as a `T`; unknown fields and the first type error go to
/// `out`, each with its path under `path`.
pub fn check<T: DeserializeOwned>(value: &Value, path: &str, out: &mut Vec<Violation>) {
    let found = RefCell::new(Vec::new());
    let result = T::deserialize(Walker {
        value,
        path: path.to_owned(),
        found: &found,
    });
    out.extend(found.into_inner());
    if let Err(e) = result {
        out.push(Violation {
            field: e.path.unwrap_or_else(|| path.to_owned()),
            message: e.message,
        });
    }
}

/// A deserialization error and, once known, where it happened.
#[derive(Debug)]
pub struct Error {
    message: String,
    path: Option<String>,
}

impl Error {
    /// The innermost path wins: set it only once.
    fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_owned());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            message: msg.to_string(),
            path: None,
        }
    }
}

struct Walker<'a> {
    value: &'a Value,
    path: String,
    found: &'a RefCell<Vec<Violation>>,
}

impl<'a> Walker<'a> {
    fn at(&self, value: &'a Value, path: String) -> Walker<'a> {
        Walker {
            value,
            path,
            found: self.found,
        }
    }
}

impl<'de> de::Deserializer<'de> for Walker<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let path = self.path.clone();
        let r = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or_default())
                }
            }
            Value::String(s) => visitor.visit_str(s),
            Value::Array(a) => visitor.visit_seq(Seq {
                walker: &self,
                iter: a.iter().enumerate(),
            }),
            Value::Object(m) => visitor.visit_map(Map {
                walker: &self,
                iter: m.iter(),
                fields: None,
                pending: None,
            }),
        };
        r.map_err(|e| e.at(&path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(m) = self.value else {
            return self.deserialize_any(visitor);
        };
        let path = self.path.clone();
        visitor
            .visit_map(Map {
                walker: &self,
                iter: m.iter(),
                fields: Some(fields),
                pending: None,
            })
            .map_err(|e| e.at(&path))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Unit variants (the only ones the embedded types use) are strings.
        match self.value {
            Value::String(s) => {
                let de: StrDeserializer<'_, Error> = s.as_str().into_deserializer();
                visitor.visit_enum(de).map_err(|e| e.at(&self.path))
            }
            other => Err(<Error as de::Error>::custom(format!(
                "expected a string, found {}",
                super::describe(other)
            ))
            .at(&self.path)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct Seq<'w, 'a, I> {
    walker: &'w Walker<'a>,
    iter: I,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Value)>> de::SeqAccess<'de> for Seq<'_, 'a, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some((i, v)) => seed
                .deserialize(self.walker.at(v, item(&self.walker.path, i)))
                .map(Some),
            None => Ok(None),
        }
    }
}

struct Map<'w, 'a> {
    walker: &'w Walker<'a>,
    iter: serde_json::map::Iter<'a>,
    fields: Option<&'static [&'static str]>,
    pending: Option<(&'a String, &'a Value)>,
}

impl<'de> de::MapAccess<'de> for Map<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((k, v)) = self.iter.next() else {
            return Ok(None);
        };
        if let Some(fields) = self.fields
            && !fields.contains(&k.as_str())
            && !v.is_null()
        {
            self.walker.found.borrow_mut().push(Violation {
                field: child(&self.walker.path, k),
                message: unknown_field(k, fields),
            });
        }
        self.pending = Some((k, v));
        let de: StrDeserializer<'_, Error> = k.as_str().into_deserializer();
        seed.deserialize(de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("value asked before its key"))?;
        seed.deserialize(self.walker.at(v, child(&self.walker.path, k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Volume, VolumeMount};
    use serde_json::json;

    fn problems<T: DeserializeOwned>(v: Value) -> Vec<String> {
        let mut out = Vec::new();
        check::<T>(&v, "spec.volumes[0]", &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn unknown_keys_of_kubernetes_types_are_found_at_any_depth() {
        assert_eq!(
            problems::<Volume>(json!({"name": "data", "emptyDir": {"sizeLimt": "1Gi"}})),
            ["spec.volumes[0].emptyDir.sizeLimt: unknown field; did you mean \"sizeLimit\"?"]
        );
        assert!(problems::<Volume>(json!({"name": "d", "emptyDir": {"sizeLimit": 5}})).is_empty());
    }

    #[test]
    fn a_type_error_names_its_field() {
        assert_eq!(
            problems::<VolumeMount>(json!({"name": "d", "mountPath": "/d", "readOnly": "yes"})),
            ["spec.volumes[0].readOnly: invalid type: string \"yes\", expected a boolean"]
        );
        assert_eq!(
            problems::<VolumeMount>(json!({"name": 3, "mountPath": "/d"})),
            ["spec.volumes[0].name: invalid type: integer `3`, expected a string"]
        );
    }
}

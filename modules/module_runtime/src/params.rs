//! Params: the user's JSON arguments into the module's typed struct, with Ansible's
//! leniency (YAML and templating hand over "yes", "5", 5 for a string, a comma list)
//! and errors that name the parameter and what is accepted.
//!
//! serde_json's own deserializer reports "invalid type ... at line 1 column 40", which
//! means nothing to a playbook author, so params go through this small deserializer
//! over `serde_json::Value` that knows the path of every value it hands out.

use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde_json::{Map, Value};

/// Deserialises the user's params (no `_ansible_*` keys) into `T`.
pub fn from_params<T: DeserializeOwned>(
    module: &str,
    params: &Map<String, Value>,
) -> Result<T, String> {
    let supported = supported_params::<T>();
    let mut unsupported: Vec<&str> = params
        .keys()
        .map(String::as_str)
        .filter(|key| !supported.contains(key))
        .collect();
    if !unsupported.is_empty() {
        unsupported.sort_unstable();
        let mut names: Vec<&str> = supported.to_vec();
        names.sort_unstable();
        return Err(format!(
            "Unsupported parameters for ({module}) module: {}. Supported parameters include: {}.",
            unsupported.join(", "),
            names.join(", ")
        ));
    }
    T::deserialize(ValueDeserializer::new(
        &Value::Object(params.clone()),
        Path::root(),
    ))
    .map_err(|e| e.render(module))
}

/// The top-level parameter names (aliases included) that `T` accepts, read from the
/// field list serde's derive hands to `deserialize_struct`.
pub fn supported_params<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe;
    #[derive(Debug)]
    struct Fields(&'static [&'static str]);
    impl Display for Fields {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field probe")
        }
    }
    impl std::error::Error for Fields {}
    impl de::Error for Fields {
        fn custom<M: Display>(_: M) -> Self {
            Fields(&[])
        }
    }
    impl<'de> de::Deserializer<'de> for Probe {
        type Error = Fields;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
            Err(Fields(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Fields> {
            Err(Fields(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    match T::deserialize(Probe) {
        Err(Fields(fields)) => fields,
        Ok(_) => &[],
    }
}

/// Where a value sits in the params: `servers[2].port`.
#[derive(Clone, Debug, Default)]
struct Path(String);

impl Path {
    fn root() -> Self {
        Path(String::new())
    }
    fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Path(key.to_owned())
        } else {
            Path(format!("{}.{key}", self.0))
        }
    }
    fn index(&self, index: usize) -> Self {
        Path(format!("{}[{index}]", self.0))
    }
}

#[derive(Debug)]
enum Kind {
    Missing(&'static str),
    Unsupported {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        got: String,
        expected: &'static [&'static str],
    },
    InvalidType {
        got: String,
        expected: String,
    },
    InvalidValue {
        got: String,
        expected: String,
    },
    Custom(String),
}

/// A param error; the path is attached by the deserializer that produced the value.
#[derive(Debug)]
pub struct ParamError {
    kind: Kind,
    path: Option<String>,
}

impl ParamError {
    fn new(kind: Kind) -> Self {
        ParamError { kind, path: None }
    }

    fn at(mut self, path: &Path) -> Self {
        if self.path.is_none() {
            self.path = Some(match &self.kind {
                Kind::Missing(field) => path.key(field).0,
                Kind::Unsupported { field, .. } => path.key(field).0,
                _ => path.0.clone(),
            });
        }
        self
    }

    fn render(&self, module: &str) -> String {
        let path = self.path.as_deref().unwrap_or("");
        match &self.kind {
            Kind::Missing(_) => format!("missing required arguments: {path}"),
            Kind::Unsupported { expected, .. } => format!(
                "Unsupported parameters for ({module}) module: {path}. Supported parameters include: {}.",
                sorted(expected)
            ),
            Kind::UnknownVariant { got, expected } => {
                format!("value of {path} must be one of: {}, got: {got}", expected.join(", "))
            }
            Kind::InvalidType { got, expected } => {
                format!("argument '{path}' is of type {got} and we were unable to convert to {expected}")
            }
            Kind::InvalidValue { got, expected } => {
                format!("argument '{path}' has an invalid value {got}: expected {expected}")
            }
            Kind::Custom(msg) if path.is_empty() => msg.clone(),
            Kind::Custom(msg) => format!("argument '{path}': {msg}"),
        }
    }
}

fn sorted(names: &[&str]) -> String {
    let mut names = names.to_vec();
    names.sort_unstable();
    names.join(", ")
}

impl Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("?"))
    }
}

impl std::error::Error for ParamError {}

impl de::Error for ParamError {
    fn custom<M: Display>(msg: M) -> Self {
        Self::new(Kind::Custom(msg.to_string()))
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(Kind::InvalidType {
            got: describe_unexpected(&unexp),
            expected: exp.to_string(),
        })
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(Kind::InvalidValue {
            got: unexp.to_string(),
            expected: exp.to_string(),
        })
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Kind::UnknownVariant {
            got: variant.to_owned(),
            expected,
        })
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Kind::Unsupported {
            field: field.to_owned(),
            expected,
        })
    }
    fn missing_field(field: &'static str) -> Self {
        Self::new(Kind::Missing(field))
    }
}

/// The JSON type of a value, without the value: it may be a secret.
fn describe_unexpected(unexp: &de::Unexpected<'_>) -> String {
    match unexp {
        de::Unexpected::Bool(_) => "bool",
        de::Unexpected::Unsigned(_) | de::Unexpected::Signed(_) => "int",
        de::Unexpected::Float(_) => "float",
        de::Unexpected::Str(_) | de::Unexpected::Char(_) => "str",
        de::Unexpected::Seq => "list",
        de::Unexpected::Map => "dict",
        de::Unexpected::Unit | de::Unexpected::Option => "null",
        _ => "unknown",
    }
    .to_owned()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Ansible's boolean spellings (module_utils.parsing.convert_bool).
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
        _ => None,
    }
}

struct ValueDeserializer<'a> {
    value: &'a Value,
    path: Path,
}

impl<'a> ValueDeserializer<'a> {
    fn new(value: &'a Value, path: Path) -> Self {
        ValueDeserializer { value, path }
    }

    fn wrong_type(&self, expected: &str) -> ParamError {
        ParamError::new(Kind::InvalidType {
            got: type_name(self.value).to_owned(),
            expected: expected.to_owned(),
        })
        .at(&self.path)
    }

    fn integer<V: Visitor<'a>>(self, visitor: V, expected: &str) -> Result<V::Value, ParamError> {
        let path = self.path.clone();
        let result = match self.value {
            Value::Number(n) if n.is_u64() => visitor.visit_u64(n.as_u64().unwrap_or_default()),
            Value::Number(n) if n.is_i64() => visitor.visit_i64(n.as_i64().unwrap_or_default()),
            Value::String(s) => match (s.trim().parse::<u64>(), s.trim().parse::<i64>()) {
                (Ok(u), _) => visitor.visit_u64(u),
                (_, Ok(i)) => visitor.visit_i64(i),
                _ => return Err(self.wrong_type(expected)),
            },
            _ => return Err(self.wrong_type(expected)),
        };
        result.map_err(|e: ParamError| e.at(&path))
    }
}

macro_rules! integer_methods {
    ($($method:ident => $expected:literal),* $(,)?) => {
        $(fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
            self.integer(visitor, $expected)
        })*
    };
}

impl<'a> de::Deserializer<'a> for ValueDeserializer<'a> {
    type Error = ParamError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let path = self.path.clone();
        let result = match self.value {
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
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Seq::new(items.iter(), &self.path)),
            Value::Object(map) => visitor.visit_map(Fields::new(map, &self.path)),
        };
        result.map_err(|e: ParamError| e.at(&path))
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let value = match self.value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => parse_bool(s),
            Value::Number(n) => match n.as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(b) => visitor
                .visit_bool(b)
                .map_err(|e: ParamError| e.at(&self.path)),
            None => Err(self.wrong_type("bool (true/false, yes/no)")),
        }
    }

    integer_methods! {
        deserialize_i8 => "int", deserialize_i16 => "int", deserialize_i32 => "int",
        deserialize_i64 => "int", deserialize_i128 => "int",
        deserialize_u8 => "int (0 or more)", deserialize_u16 => "int (0 or more)",
        deserialize_u32 => "int (0 or more)", deserialize_u64 => "int (0 or more)",
        deserialize_u128 => "int (0 or more)",
    }

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let value = match self.value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match value {
            Some(f) => visitor
                .visit_f64(f)
                .map_err(|e: ParamError| e.at(&self.path)),
            None => Err(self.wrong_type("float")),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        // Like Ansible's type=str: numbers and booleans become their text.
        let result = match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(if *b { "True" } else { "False" }.to_owned()),
            _ => return Err(self.wrong_type("str")),
        };
        result.map_err(|e: ParamError| e.at(&self.path))
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.wrong_type("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        let path = self.path.clone();
        let result = match self.value {
            Value::Array(items) => visitor.visit_seq(Seq::new(items.iter(), &self.path)),
            // Ansible's type=list: "a, b" is two items; a lone scalar is a list of one.
            Value::String(s) => {
                let items: Vec<Value> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::String(item.to_owned()))
                    .collect();
                visitor.visit_seq(OwnedSeq::new(items, &self.path))
            }
            Value::Number(_) | Value::Bool(_) => {
                visitor.visit_seq(OwnedSeq::new(vec![self.value.clone()], &self.path))
            }
            _ => return Err(self.wrong_type("list")),
        };
        result.map_err(|e: ParamError| e.at(&path))
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        match self.value {
            Value::Object(map) => visitor
                .visit_map(Fields::new(map, &self.path))
                .map_err(|e: ParamError| e.at(&self.path)),
            _ => Err(self.wrong_type("dict")),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamError> {
        // Choices are unit variants named by a string; YAML may hand over a number or bool.
        let choice = match self.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(self.wrong_type("str")),
        };
        visitor
            .visit_enum(Choice(choice))
            .map_err(|e: ParamError| e.at(&self.path))
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, ParamError> {
        visitor.visit_unit()
    }
}

struct Seq<'a, I> {
    items: I,
    index: usize,
    path: &'a Path,
}

impl<'a, I> Seq<'a, I> {
    fn new(items: I, path: &'a Path) -> Self {
        Seq {
            items,
            index: 0,
            path,
        }
    }
}

impl<'a, 'p, I: Iterator<Item = &'a Value>> SeqAccess<'a> for Seq<'p, I> {
    type Error = ParamError;
    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ParamError> {
        match self.items.next() {
            None => Ok(None),
            Some(value) => {
                let path = self.path.index(self.index);
                self.index += 1;
                seed.deserialize(ValueDeserializer::new(value, path.clone()))
                    .map(Some)
                    .map_err(|e| e.at(&path))
            }
        }
    }
}

/// A list made up from a string or scalar; its items are owned, so they are handed
/// out as owned deserializers.
struct OwnedSeq<'p> {
    items: std::vec::IntoIter<Value>,
    index: usize,
    path: &'p Path,
}

impl<'p> OwnedSeq<'p> {
    fn new(items: Vec<Value>, path: &'p Path) -> Self {
        OwnedSeq {
            items: items.into_iter(),
            index: 0,
            path,
        }
    }
}

impl<'a, 'p> SeqAccess<'a> for OwnedSeq<'p> {
    type Error = ParamError;
    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ParamError> {
        match self.items.next() {
            None => Ok(None),
            Some(value) => {
                let path = self.path.index(self.index);
                self.index += 1;
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                seed.deserialize(text.into_deserializer())
                    .map(Some)
                    .map_err(|e: ParamError| e.at(&path))
            }
        }
    }
}

struct Fields<'a, 'p> {
    entries: serde_json::map::Iter<'a>,
    pending: Option<&'a Value>,
    pending_key: String,
    path: &'p Path,
}

impl<'a, 'p> Fields<'a, 'p> {
    fn new(map: &'a Map<String, Value>, path: &'p Path) -> Self {
        Fields {
            entries: map.iter(),
            pending: None,
            pending_key: String::new(),
            path,
        }
    }
}

impl<'a, 'p> MapAccess<'a> for Fields<'a, 'p> {
    type Error = ParamError;
    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamError> {
        match self.entries.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.pending = Some(value);
                self.pending_key = key.clone();
                seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
                    .map(Some)
                    .map_err(|e: ParamError| e.at(self.path))
            }
        }
    }
    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, ParamError> {
        let value = self.pending.take().unwrap_or(&Value::Null);
        // A module's own Deserialize impl may fail after the value was read: the
        // path is attached here so its message names the param too.
        let path = self.path.key(&self.pending_key);
        seed.deserialize(ValueDeserializer::new(value, path.clone()))
            .map_err(|e| e.at(&path))
    }
}

struct Choice(String);

impl<'a> EnumAccess<'a> for Choice {
    type Error = ParamError;
    type Variant = UnitOnly;
    fn variant_seed<V: DeserializeSeed<'a>>(
        self,
        seed: V,
    ) -> Result<(V::Value, UnitOnly), ParamError> {
        let value = seed.deserialize(self.0.into_deserializer())?;
        Ok((value, UnitOnly))
    }
}

struct UnitOnly;

impl<'a> VariantAccess<'a> for UnitOnly {
    type Error = ParamError;
    fn unit_variant(self) -> Result<(), ParamError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, _: T) -> Result<T::Value, ParamError> {
        Err(de::Error::custom("expected a plain choice"))
    }
    fn tuple_variant<V: Visitor<'a>>(self, _: usize, _: V) -> Result<V::Value, ParamError> {
        Err(de::Error::custom("expected a plain choice"))
    }
    fn struct_variant<V: Visitor<'a>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ParamError> {
        Err(de::Error::custom("expected a plain choice"))
    }
}

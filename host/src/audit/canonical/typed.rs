//! The canonical form written straight from a typed value, without first
//! building the `serde_json::Value` tree that [`super::to_string`] reads.
//!
//! Why: every audited decision's evidence (the request and the decision)
//! was turned into a key-sorted `Value` tree and then written; building
//! that tree (a `BTreeMap` node and an owned `String` per field, every
//! string copied) cost more than writing the text. This serializer writes
//! into one buffer and sorts an object's entries in place when its last
//! entry is written, so the only copy is of an object whose fields were
//! not declared in key order.
//!
//! The output is, byte for byte, `super::to_vec(&serde_json::to_value(v)?)`
//! (a property test checks it on arbitrary values): the same number forms,
//! the same escaping, keys sorted by their UTF-8 bytes, and of two entries
//! with one key the later kept, as a `Value` map keeps it. Map keys
//! `serde_json` would stringify in ways this writer does not (bools,
//! floats) are an error here; [`to_string_of`] then falls back to the tree.

use serde::Serialize;
use serde::ser::{self, Impossible};
use std::borrow::Cow;
use std::fmt;

use super::write_str;

/// Why a value could not be written directly (the caller falls back to
/// the `Value` path, which reports its own error if it has one).
#[derive(Debug)]
pub struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

/// `v` in canonical form: written directly, or through a `Value` tree for
/// the rare shapes the direct writer does not take. `None` only when
/// `serde_json` itself cannot represent `v` (a map with non-string keys it
/// refuses, a failing `Serialize` impl).
pub fn to_string_of<T: Serialize + ?Sized>(v: &T) -> Option<String> {
    let mut w = Writer {
        out: Vec::with_capacity(512),
    };
    match v.serialize(&mut w) {
        // Only whole UTF-8 strings and ASCII are ever written.
        Ok(()) => String::from_utf8(w.out).ok(),
        Err(_) => serde_json::to_value(v).ok().map(|v| super::to_string(&v)),
    }
}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn int(&mut self, v: impl fmt::Display) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{v}");
    }

    fn float(&mut self, f: f64) {
        if f.is_finite() {
            // serde_json's own shortest round-trip form, as super::write_number.
            let _ = serde_json::to_writer(&mut self.out, &f);
        } else {
            // A Value cannot hold a non-finite number: to_value makes it null.
            self.out.extend_from_slice(b"null");
        }
    }
}

/// One entry of an object being written: its key (unescaped, to sort by)
/// and where its `"key":value` text lies in the buffer.
struct Entry {
    key: Cow<'static, str>,
    start: usize,
    end: usize,
}

/// An object (struct or map) being written.
pub struct Object<'a> {
    w: &'a mut Writer,
    /// Where its `{` is.
    open: usize,
    entries: Vec<Entry>,
    /// A map's key waiting for its value.
    pending: Option<Cow<'static, str>>,
    /// For `{"variant":{…}}`: a `}` to close after the object's own.
    variant: bool,
}

impl Object<'_> {
    fn entry<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Unsupported> {
        let start = self.w.out.len();
        if !self.entries.is_empty() {
            self.w.out.push(b',');
        }
        write_str(&mut self.w.out, &key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)?;
        self.entries.push(Entry {
            key,
            start,
            end: self.w.out.len(),
        });
        Ok(())
    }

    fn close(self) -> Result<(), Unsupported> {
        let Object {
            w,
            open,
            mut entries,
            variant,
            ..
        } = self;
        let in_order = entries.windows(2).all(|p| p[0].key < p[1].key);
        if !in_order {
            // Stable, so of two equal keys the later stays later; a Value
            // map keeps the later one's value.
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            let mut text = Vec::with_capacity(w.out.len() - open);
            text.push(b'{');
            let mut first = true;
            for (i, e) in entries.iter().enumerate() {
                if entries.get(i + 1).is_some_and(|n| n.key == e.key) {
                    continue;
                }
                if !first {
                    text.push(b',');
                }
                first = false;
                // Each entry's text starts with the comma written before
                // it, except the first one written.
                let body = &w.out[e.start..e.end];
                let body = body.strip_prefix(b",").unwrap_or(body);
                text.extend_from_slice(body);
            }
            w.out.truncate(open);
            w.out.extend_from_slice(&text);
        }
        w.out.push(b'}');
        if variant {
            w.out.push(b'}');
        }
        Ok(())
    }
}

/// An array (sequence, tuple) being written.
pub struct Array<'a> {
    w: &'a mut Writer,
    first: bool,
    /// For `{"variant":[…]}`: a `}` to close after the `]`.
    variant: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.w)
    }

    fn close(self) -> Result<(), Unsupported> {
        self.w.out.push(b']');
        if self.variant {
            self.w.out.push(b'}');
        }
        Ok(())
    }
}

impl<'a> Writer {
    fn object(&'a mut self, variant: Option<&'static str>) -> Object<'a> {
        if let Some(name) = variant {
            self.out.push(b'{');
            write_str(&mut self.out, name);
            self.out.push(b':');
        }
        let open = self.out.len();
        self.out.push(b'{');
        Object {
            w: self,
            open,
            entries: Vec::new(),
            pending: None,
            variant: variant.is_some(),
        }
    }

    fn array(&'a mut self, variant: Option<&'static str>) -> Array<'a> {
        if let Some(name) = variant {
            self.out.push(b'{');
            write_str(&mut self.out, name);
            self.out.push(b':');
        }
        self.out.push(b'[');
        Array {
            w: self,
            first: true,
            variant: variant.is_some(),
        }
    }
}

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.int(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => self.int(i),
            (_, Ok(u)) => self.int(u),
            _ => return Err(ser::Error::custom("i128 out of range")),
        }
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        u64::try_from(v)
            .map(|u| self.int(u))
            .map_err(|_| ser::Error::custom("u128 out of range"))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        self.float(f64::from(v));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.float(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        write_str(&mut self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        write_str(&mut self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        let mut a = self.array(None);
        for b in v {
            a.element(b)?;
        }
        a.close()
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if name.starts_with("$serde_json::") {
            // RawValue and arbitrary-precision numbers: the tree knows them.
            return Err(ser::Error::custom("serde_json private type"));
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.out.push(b'{');
        write_str(&mut self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a>, Unsupported> {
        Ok(self.array(None))
    }
    fn serialize_tuple(self, _: usize) -> Result<Array<'a>, Unsupported> {
        Ok(self.array(None))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Array<'a>, Unsupported> {
        Ok(self.array(None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a>, Unsupported> {
        Ok(self.array(Some(variant)))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, Unsupported> {
        Ok(self.object(None))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Object<'a>, Unsupported> {
        if name.starts_with("$serde_json::") {
            return Err(ser::Error::custom("serde_json private type"));
        }
        Ok(self.object(None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, Unsupported> {
        Ok(self.object(Some(variant)))
    }
}

/// The four array-like serde traits: each element is written the same way.
macro_rules! array_like {
    ($($tr:ident :: $f:ident),*) => {$(
        impl ser::$tr for Array<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn $f<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
                self.element(v)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.close()
            }
        }
    )*};
}
array_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.pending = Some(Cow::Owned(key.serialize(KeyWriter)?));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
        let key = self
            .pending
            .take()
            .ok_or_else(|| ser::Error::custom("map value without a key"))?;
        self.entry(key, v)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close()
    }
}

/// Structs and struct variants: each field is an entry keyed by its name.
macro_rules! struct_like {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Object<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Unsupported> {
                self.entry(Cow::Borrowed(key), v)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.close()
            }
        }
    )*};
}
struct_like!(SerializeStruct, SerializeStructVariant);

/// A map key as the string a `Value` map would key it by: strings, chars,
/// unit variants and integers (in decimal). Anything else is
/// [`Unsupported`] and the caller takes the `Value` path.
struct KeyWriter;

impl KeyWriter {
    fn no<T>(what: &str) -> Result<T, Unsupported> {
        Err(ser::Error::custom(format!("a {what} as a map key")))
    }
}

macro_rules! int_key {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<String, Unsupported> {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for KeyWriter {
    type Ok = String;
    type Error = Unsupported;
    type SerializeSeq = Impossible<String, Unsupported>;
    type SerializeTuple = Impossible<String, Unsupported>;
    type SerializeTupleStruct = Impossible<String, Unsupported>;
    type SerializeTupleVariant = Impossible<String, Unsupported>;
    type SerializeMap = Impossible<String, Unsupported>;
    type SerializeStruct = Impossible<String, Unsupported>;
    type SerializeStructVariant = Impossible<String, Unsupported>;

    int_key!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_i128: i128, serialize_u128: u128);

    fn serialize_str(self, v: &str) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, Unsupported> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String, Unsupported> {
        value.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<String, Unsupported> {
        Self::no("bool")
    }
    fn serialize_f32(self, _: f32) -> Result<String, Unsupported> {
        Self::no("float")
    }
    fn serialize_f64(self, _: f64) -> Result<String, Unsupported> {
        Self::no("float")
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, Unsupported> {
        Self::no("byte string")
    }
    fn serialize_none(self) -> Result<String, Unsupported> {
        Self::no("none")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, Unsupported> {
        Self::no("option")
    }
    fn serialize_unit(self) -> Result<String, Unsupported> {
        Self::no("unit")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, Unsupported> {
        Self::no("unit struct")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, Unsupported> {
        Self::no("enum")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Self::no("sequence")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Self::no("tuple")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Self::no("tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Self::no("enum")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Self::no("map")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Self::no("struct")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Self::no("enum")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn via_tree<T: Serialize>(v: &T) -> String {
        super::super::to_string(&serde_json::to_value(v).unwrap_or_default())
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON value written directly equals its canonical form.
        #[test]
        fn direct_equals_the_tree_on_any_value(v in arb_value()) {
            prop_assert_eq!(to_string_of(&v), Some(super::super::to_string(&v)));
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    enum Shape {
        Unit,
        New(u8),
        Tuple(i32, String),
        Fields { zeta: f32, alpha: Option<char> },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct Unsorted {
        zulu: Vec<Shape>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        alpha: BTreeMap<i64, &'static str>,
        mid_field: (u128, i128, ()),
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
        bytes: serde_bytes_like::Bytes,
        odd: &'static str,
    }

    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    /// Struct fields out of key order, skipped and flattened fields (one
    /// colliding with a field: the later wins, as in a Value map), enums of
    /// every shape, integer map keys, non-finite floats, hostile strings.
    #[test]
    fn typed_shapes_equal_the_tree() {
        let v = Unsorted {
            zulu: vec![
                Shape::Unit,
                Shape::New(7),
                Shape::Tuple(-3, "t\u{0}\"".into()),
                Shape::Fields {
                    zeta: f32::NAN,
                    alpha: Some('é'),
                },
                Shape::Fields {
                    zeta: 0.1,
                    alpha: None,
                },
            ],
            skipped: None,
            alpha: [(-5, "minus"), (10, "ten"), (9, "nine")]
                .into_iter()
                .collect(),
            mid_field: (u128::from(u64::MAX), i128::from(i64::MIN), ()),
            rest: [
                ("odd".to_string(), json!("from flatten")),
                ("b".to_string(), json!({"y": 1, "x": [f64::INFINITY]})),
            ]
            .into_iter()
            .collect(),
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            odd: "\u{2028}\u{1b}[31m</script>",
        };
        assert_eq!(to_string_of(&v), Some(via_tree(&v)));
    }

    /// A bool map key is one the direct writer does not take: the tree
    /// decides, so the answer is still the tree's.
    #[test]
    fn unsupported_keys_fall_back_to_the_tree() {
        let v: BTreeMap<bool, u8> = [(true, 1), (false, 0)].into_iter().collect();
        assert_eq!(
            to_string_of(&v),
            serde_json::to_value(&v)
                .ok()
                .map(|t| super::super::to_string(&t))
        );
    }
}

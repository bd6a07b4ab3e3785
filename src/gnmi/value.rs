//! `gnmi.TypedValue` <-> leaf values ([`Scalar`]).
//!
//! A value addressed to a leaf gives one `(path, Scalar)`. A JSON object (the path stopped
//! at a container) is flattened into its child leaves, member names losing their module
//! prefix. JSON arrays inside an object (YANG lists and leaf-lists) carry no key names we
//! could trust, so they are skipped. counter64 arrives as a JSON string and stays
//! `Scalar::Str`; `Scalar::as_u64` parses it.

use gnmi_proto::TypedValue;
use gnmi_proto::typed_value::Value;
use serde_json::Value as Json;

use crate::model::Scalar;

use super::path::strip_module;

/// A value that cannot be decoded. Names the path; the caller skips that update only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad value at {path}: {reason}")]
pub struct ValueError {
    pub path: String,
    pub reason: String,
}

/// A leaf value as a PROTO typed scalar (what a target without JSON_IETF is sent).
pub fn encode(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Str(s) => Value::StringVal(s.clone()),
        Scalar::Int(v) => Value::IntVal(*v),
        Scalar::Uint(v) => Value::UintVal(*v),
        Scalar::Bool(v) => Value::BoolVal(*v),
        Scalar::Float(v) => Value::DoubleVal(*v),
    }
}

/// Decodes the value of an update at canonical `path` into one or more leaves.
pub fn decode(path: &str, value: Option<&TypedValue>) -> Result<Vec<(String, Scalar)>, ValueError> {
    let err = |reason: String| ValueError { path: path.to_string(), reason };
    let value = value.and_then(|v| v.value.as_ref()).ok_or_else(|| err("update carries no value".into()))?;
    let scalar = match value {
        Value::StringVal(s) | Value::AsciiVal(s) => Scalar::Str(s.clone()),
        Value::IntVal(v) => Scalar::Int(*v),
        Value::UintVal(v) => Scalar::Uint(*v),
        Value::BoolVal(v) => Scalar::Bool(*v),
        Value::FloatVal(v) => Scalar::Float(f64::from(*v)),
        Value::DoubleVal(v) => Scalar::Float(*v),
        Value::DecimalVal(d) => {
            let precision = i32::try_from(d.precision).ok().filter(|p| *p <= 19);
            let precision =
                precision.ok_or_else(|| err(format!("decimal64 precision {} out of range", d.precision)))?;
            Scalar::Float(d.digits as f64 / 10f64.powi(precision))
        }
        Value::JsonVal(bytes) | Value::JsonIetfVal(bytes) => return decode_json(path, bytes),
        Value::BytesVal(_) => return Err(err("bytes_val is not supported".into())),
        Value::LeaflistVal(_) => return Err(err("leaflist_val is not supported".into())),
        Value::AnyVal(_) => return Err(err("any_val is not supported".into())),
        Value::ProtoBytes(_) => return Err(err("proto_bytes is not supported".into())),
    };
    Ok(vec![(path.to_string(), scalar)])
}

/// Decodes JSON / JSON_IETF bytes at `path`.
pub fn decode_json(path: &str, bytes: &[u8]) -> Result<Vec<(String, Scalar)>, ValueError> {
    let err = |reason: String| ValueError { path: path.to_string(), reason };
    let json: Json = serde_json::from_slice(bytes).map_err(|e| err(format!("malformed JSON: {e}")))?;
    match json {
        Json::Object(members) => {
            let mut leaves = Vec::new();
            flatten(path, &members, &mut leaves);
            Ok(leaves)
        }
        other => Ok(vec![(path.to_string(), json_scalar(&other).map_err(err)?)]),
    }
}

fn flatten(path: &str, members: &serde_json::Map<String, Json>, out: &mut Vec<(String, Scalar)>) {
    for (name, value) in members {
        let child =
            if path == "/" { format!("/{}", strip_module(name)) } else { format!("{path}/{}", strip_module(name)) };
        match value {
            Json::Object(inner) => flatten(&child, inner, out),
            Json::Array(_) | Json::Null => {
                tracing::trace!(path = %child, "skipping list or empty value inside a container")
            }
            scalar => {
                if let Ok(s) = json_scalar(scalar) {
                    out.push((child, s));
                }
            }
        }
    }
}

fn json_scalar(v: &Json) -> Result<Scalar, String> {
    match v {
        Json::String(s) => Ok(Scalar::Str(s.clone())),
        Json::Bool(b) => Ok(Scalar::Bool(*b)),
        Json::Number(n) => n
            .as_u64()
            .map(Scalar::Uint)
            .or_else(|| n.as_i64().map(Scalar::Int))
            .or_else(|| n.as_f64().map(Scalar::Float))
            .ok_or_else(|| format!("number {n} out of range")),
        Json::Null => Err("null is not a leaf value".into()),
        Json::Array(_) => Err("a JSON array (list or leaf-list) is not supported".into()),
        Json::Object(_) => Err("unexpected object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gnmi_proto::Decimal64;

    fn tv(v: Value) -> TypedValue {
        TypedValue { value: Some(v) }
    }

    fn one(path: &str, v: Value) -> Scalar {
        let mut leaves = decode(path, Some(&tv(v))).unwrap();
        assert_eq!(leaves.len(), 1);
        let (p, s) = leaves.remove(0);
        assert_eq!(p, path);
        s
    }

    #[test]
    fn json_ietf_scalars() {
        let p = "/interface[name=ethernet-1/1]/oper-state";
        assert_eq!(one(p, Value::JsonIetfVal(br#""up""#.to_vec())), Scalar::Str("up".into()));
        assert_eq!(one(p, Value::JsonIetfVal(b"42".to_vec())), Scalar::Uint(42));
        assert_eq!(one(p, Value::JsonIetfVal(b"-3".to_vec())), Scalar::Int(-3));
        assert_eq!(one(p, Value::JsonIetfVal(b"1.5".to_vec())), Scalar::Float(1.5));
        assert_eq!(one(p, Value::JsonVal(b"true".to_vec())), Scalar::Bool(true));
        // counter64 as a string stays a string, and still reads as a number.
        let c = one(p, Value::JsonIetfVal(br#""18446744073709551615""#.to_vec()));
        assert_eq!(c, Scalar::Str("18446744073709551615".into()));
        assert_eq!(c.as_u64(), Some(u64::MAX));
    }

    #[test]
    fn typed_scalars() {
        let p = "/x";
        assert_eq!(one(p, Value::StringVal("a".into())), Scalar::Str("a".into()));
        assert_eq!(one(p, Value::AsciiVal("b".into())), Scalar::Str("b".into()));
        assert_eq!(one(p, Value::UintVal(7)), Scalar::Uint(7));
        assert_eq!(one(p, Value::IntVal(-7)), Scalar::Int(-7));
        assert_eq!(one(p, Value::BoolVal(false)), Scalar::Bool(false));
        assert_eq!(one(p, Value::DoubleVal(2.25)), Scalar::Float(2.25));
        assert_eq!(one(p, Value::FloatVal(0.5)), Scalar::Float(0.5));
        assert_eq!(one(p, Value::DecimalVal(Decimal64 { digits: 12345, precision: 2 })), Scalar::Float(123.45));
    }

    #[test]
    fn container_object_is_flattened_into_leaves() {
        let p = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]";
        let json = br#"{"srl_nokia-bgp:session-state":"established","peer-address":"10.0.1.1",
            "timers":{"hold-time":9},"afi-safi":[{"afi-safi-name":"evpn"}],"x":null}"#;
        let mut leaves = decode(p, Some(&tv(Value::JsonIetfVal(json.to_vec())))).unwrap();
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            leaves,
            vec![
                (format!("{p}/peer-address"), Scalar::Str("10.0.1.1".into())),
                (format!("{p}/session-state"), Scalar::Str("established".into())),
                (format!("{p}/timers/hold-time"), Scalar::Uint(9)),
            ]
        );
    }

    #[test]
    fn malformed_values_name_the_path() {
        let p = "/interface[name=ethernet-1/1]/oper-state";
        for v in [
            Some(tv(Value::JsonIetfVal(b"{not json".to_vec()))),
            Some(tv(Value::JsonIetfVal(b"null".to_vec()))),
            Some(tv(Value::JsonIetfVal(b"[1,2]".to_vec()))),
            Some(tv(Value::BytesVal(vec![1]))),
            Some(tv(Value::DecimalVal(Decimal64 { digits: 1, precision: 400 }))),
            Some(TypedValue { value: None }),
            None,
        ] {
            let e = decode(p, v.as_ref()).unwrap_err();
            assert_eq!(e.path, p);
            assert!(e.to_string().contains(p), "{e}");
        }
    }
}

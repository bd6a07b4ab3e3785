//! Leaf values and their wire encodings (JSON_IETF, PROTO, ASCII).

use gnmi_proto as pb;
use pb::typed_value::Value as Tv;

/// A leaf value typed as SR Linux's YANG types it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// Enumerations and strings.
    Str(String),
    /// uint16 / uint32: a JSON number in JSON_IETF.
    Uint(u32),
    /// counter64: a JSON string in JSON_IETF (RFC 7951).
    Counter64(u64),
    /// boolean (OpenConfig `enabled`): `true`/`false` in JSON_IETF, `bool_val` in PROTO.
    Bool(bool),
}

/// The encodings this target offers; JSON and BYTES are refused as SR Linux does.
pub const ENCODINGS: [pb::Encoding; 3] = [pb::Encoding::JsonIetf, pb::Encoding::Proto, pb::Encoding::Ascii];

/// What a leaf under the proto-only fault offers (a target without JSON_IETF).
pub const PROTO_ONLY: [pb::Encoding; 2] = [pb::Encoding::Proto, pb::Encoding::Ascii];

pub fn check_encoding(raw: i32, proto_only: bool) -> Result<pb::Encoding, tonic::Status> {
    match pb::Encoding::try_from(raw) {
        Ok(e) if proto_only && PROTO_ONLY.contains(&e) => Ok(e),
        Ok(e) if proto_only => Err(tonic::Status::unimplemented(format!(
            "unsupported encoding {}: this target supports PROTO and ASCII",
            e.as_str_name()
        ))),
        Ok(e) if ENCODINGS.contains(&e) => Ok(e),
        Ok(e) => Err(tonic::Status::unimplemented(format!(
            "unsupported encoding {}: this target supports JSON_IETF, PROTO and ASCII",
            e.as_str_name()
        ))),
        Err(_) => Err(tonic::Status::invalid_argument(format!("unknown encoding value {raw}"))),
    }
}

impl Val {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Str(s) => serde_json::Value::String(s.clone()),
            Val::Uint(v) => serde_json::Value::from(*v),
            Val::Counter64(v) => serde_json::Value::String(v.to_string()),
            Val::Bool(v) => serde_json::Value::Bool(*v),
        }
    }

    pub fn encode(&self, enc: pb::Encoding) -> pb::TypedValue {
        let value = match enc {
            pb::Encoding::Proto => match self {
                Val::Str(s) => Tv::StringVal(s.clone()),
                Val::Uint(v) => Tv::UintVal(u64::from(*v)),
                Val::Counter64(v) => Tv::UintVal(*v),
                Val::Bool(v) => Tv::BoolVal(*v),
            },
            pb::Encoding::Ascii => Tv::AsciiVal(match self {
                Val::Str(s) => s.clone(),
                Val::Uint(v) => v.to_string(),
                Val::Counter64(v) => v.to_string(),
                Val::Bool(v) => v.to_string(),
            }),
            _ => Tv::JsonIetfVal(self.to_json().to_string().into_bytes()),
        };
        pb::TypedValue { value: Some(value) }
    }
}

/// A Set value as JSON, whatever encoding the client chose.
pub fn decode_set_value(tv: Option<&pb::TypedValue>) -> Result<serde_json::Value, String> {
    let Some(value) = tv.and_then(|t| t.value.as_ref()) else {
        return Err("update has no value".into());
    };
    Ok(match value {
        Tv::JsonIetfVal(b) | Tv::JsonVal(b) => serde_json::from_slice(b)
            .map_err(|e| format!("value is not valid JSON ({e}): {:?}", String::from_utf8_lossy(b)))?,
        Tv::StringVal(s) | Tv::AsciiVal(s) => serde_json::Value::String(s.clone()),
        Tv::UintVal(v) => serde_json::Value::from(*v),
        Tv::IntVal(v) => serde_json::Value::from(*v),
        Tv::BoolVal(v) => serde_json::Value::Bool(*v),
        other => return Err(format!("unsupported value type {other:?}")),
    })
}

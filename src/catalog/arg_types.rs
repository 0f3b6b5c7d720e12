//! Tool input schemas (JSON Schema) → argument types, the shape Cedar sees
//! tool arguments in. Supported: string, integer (Long), boolean, arrays of
//! those (Set), and objects (records); other properties are left out.

use serde_json::Value;

/// Cedar type of one argument.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgType {
    String,
    Long,
    Bool,
    Set(Box<ArgType>),
    Record(Vec<(String, ArgType)>),
}

/// Typed properties of an object schema (empty when none can be typed).
pub fn record_type(schema: &Value) -> Vec<(String, ArgType)> {
    let mut props: Vec<(String, ArgType)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter_map(|(k, v)| arg_type(v).map(|t| (k.clone(), t)))
                .collect()
        })
        .unwrap_or_default();
    props.sort_by(|a, b| a.0.cmp(&b.0));
    props
}

fn arg_type(s: &Value) -> Option<ArgType> {
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `["string", "null"]`: nullable, a missing value is just absent.
        Some(Value::Array(ts)) => {
            let mut non_null = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null");
            let t = non_null.next()?;
            if non_null.next().is_some() {
                return None;
            }
            t
        }
        _ => return None,
    };
    Some(match ty {
        "string" => ArgType::String,
        "integer" => ArgType::Long,
        "boolean" => ArgType::Bool,
        "array" => ArgType::Set(Box::new(arg_type(s.get("items")?)?)),
        "object" => ArgType::Record(record_type(s)),
        _ => return None,
    })
}

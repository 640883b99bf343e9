//! Request parameters: query-string, JSON, form and multipart bodies merged into one JSON
//! object the way Slack accepts them, and the lenient readers of those values the Web API
//! methods share (Python-like truthiness, numbers given as strings, Slack timestamps).

use serde_json::{Map, Value};

/// Parameters whose string values are JSON documents, parsed when they look like one.
const JSON_PARAMS: [&str; 6] = [
    "blocks",
    "attachments",
    "view",
    "files",
    "metadata",
    "users",
];

/// The users a call names: `users` (else `user`), as a JSON list or a
/// comma-separated string.
pub(super) fn users_param(p: &Map<String, Value>) -> Vec<String> {
    let raw = match p.get("users") {
        Some(v) if !v.is_null() => Some(v),
        _ => p.get("user"),
    };
    match raw.map(maybe_json) {
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Python-like truthiness of an optional JSON value.
pub(super) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// A boolean flag as Slack reads it: `true`, `1`, `"true"`, `"1"`, `"yes"`.
pub(super) fn flag_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() == Some(1.0),
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        _ => false,
    }
}

/// A value as text: strings as they are, null as empty, anything else as JSON.
pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value of `key`, or an empty string when absent.
pub(super) fn get_or_empty<'a>(p: &'a Map<String, Value>, key: &str) -> &'a Value {
    static EMPTY: Value = Value::String(String::new());
    p.get(key).unwrap_or(&EMPTY)
}

/// The value of `key` (even `null`), or `default` when absent.
pub(super) fn param_or(p: &Map<String, Value>, key: &str, default: Value) -> Value {
    p.get(key).cloned().unwrap_or(default)
}

/// The value itself when truthy, else `""`.
pub(super) fn or_empty(v: Option<&Value>) -> Value {
    match v {
        Some(v) if truthy(Some(v)) => v.clone(),
        _ => Value::String(String::new()),
    }
}

/// The first of `keys` whose value is truthy.
pub(super) fn first_truthy<'a>(p: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|k| p.get(*k))
        .find(|v| truthy(Some(v)))
}

/// An integer from a number or a numeric string (truncated toward zero).
pub(super) fn number_of(v: &Value) -> Option<i64> {
    let f = match v {
        Value::Number(n) => {
            return n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        }
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Bool(b) => return Some(i64::from(*b)),
        _ => return None,
    };
    f.is_finite().then_some(f as i64)
}

/// A Slack timestamp as a comparable number (microsecond-exact; 12 decimals
/// kept). Anything unparsable counts as 0.
pub(super) fn ts_key(v: &Value) -> i128 {
    const SCALE: i128 = 1_000_000_000_000;
    let text = text_of(v);
    let s = text.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return 0;
    }
    let Ok(int) = (if int_part.is_empty() {
        Ok(0)
    } else {
        int_part.parse::<i128>()
    }) else {
        return 0;
    };
    let frac = frac_part
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(12)
        .fold(0i128, |acc, b| acc * 10 + i128::from(b - b'0'));
    let Some(total) = int.checked_mul(SCALE).and_then(|x| x.checked_add(frac)) else {
        return 0;
    };
    if negative {
        -total
    } else {
        total
    }
}

/// A string that looks like a JSON list or object is parsed; anything else is
/// returned as it is.
pub(super) fn maybe_json(v: &Value) -> Value {
    if let Value::String(s) = v {
        if s.starts_with('[') || s.starts_with('{') {
            if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                return parsed;
            }
        }
    }
    v.clone()
}

/// Merges query-string, JSON, form and multipart parameters the way Slack
/// accepts them (later sources override earlier ones).
pub(super) async fn parse_params(
    query: &str,
    body: &[u8],
    content_type: &str,
) -> Map<String, Value> {
    let mut params = Map::new();
    if !query.is_empty() {
        merge_form(&mut params, query);
    }
    let ctype = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !body.is_empty() {
        match ctype.as_str() {
            "application/json" => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => params.extend(obj),
                Ok(_) => {}
                Err(_) => {
                    params.insert(
                        "_unparsed".into(),
                        Value::String(String::from_utf8_lossy(body).into_owned()),
                    );
                }
            },
            "multipart/form-data" => {
                if !parse_multipart(body, content_type, &mut params).await {
                    let head = &body[..body.len().min(2000)];
                    params.insert(
                        "_unparsed".into(),
                        Value::String(String::from_utf8_lossy(head).into_owned()),
                    );
                }
            }
            "application/x-www-form-urlencoded" => {
                merge_form(&mut params, &String::from_utf8_lossy(body))
            }
            _ => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => params.extend(obj),
                Ok(_) => {}
                Err(_) => merge_form(&mut params, &String::from_utf8_lossy(body)),
            },
        }
    }
    for key in JSON_PARAMS {
        if let Some(v) = params.get_mut(key) {
            *v = maybe_json(v);
        }
    }
    params
}

/// Merges `a=1&b=2` pairs; a key given several times becomes a list.
fn merge_form(params: &mut Map<String, Value>, encoded: &str) {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(encoded) else {
        params.insert("_unparsed".into(), Value::String(encoded.to_string()));
        return;
    };
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match grouped.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, vs)) => vs.push(v),
            None => grouped.push((k, vec![v])),
        }
    }
    for (k, mut vs) in grouped {
        let value = if vs.len() == 1 {
            Value::String(vs.remove(0))
        } else {
            Value::Array(vs.into_iter().map(Value::String).collect())
        };
        params.insert(k, value);
    }
}

/// Reads a `multipart/form-data` body into `params`: each part's `name` and body (as text).
/// Returns false when it could not be read whole as multipart (no boundary, not the framing
/// it announces); the parts read before the fault are kept.
async fn parse_multipart(body: &[u8], content_type: &str, params: &mut Map<String, Value>) -> bool {
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return false;
    };
    let mut multipart = multer::Multipart::with_reader(body, boundary);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return true,
            Err(_) => return false,
        };
        let name = field.name().filter(|n| !n.is_empty()).map(str::to_string);
        let Ok(content) = field.bytes().await else {
            return false;
        };
        if let Some(name) = name {
            params.insert(
                name,
                Value::String(String::from_utf8_lossy(&content).into_owned()),
            );
        }
    }
}

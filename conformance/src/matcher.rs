//! JSON matchers: `{"/json/pointer": <matcher>}`.
//!
//! A matcher is a literal (the value must equal it; numbers compare by
//! value, so `1` equals `1.0`) or a map of operators, all of which must hold:
//!
//! | operator | holds when the value at the pointer... |
//! |---|---|
//! | `$absent: true` | does not exist (`false`: exists) |
//! | `$present: true` | exists (`false`: does not) |
//! | `$contains: x` | is a string containing `x`, or an array with an element equal to `x` |
//! | `$not_contains: x` | exists and does not contain `x` |
//! | `$starts_with: s` | is a string starting with `s` |
//! | `$ne: x` | differs from `x` |
//! | `$one_of: [..]` | equals one of them |
//! | `$gt`, `$ge`, `$lt`, `$le: n` | is a number compared with `n` |
//! | `$len: n` | is a string of `n` characters, an array or object of `n` entries |
//! | `$max_len: n` | is a string of at most `n` bytes |
//! | `$any: {pointer: matcher}` | is an array with at least one element matching all of them |
//! | `$none: {pointer: matcher}` | is an array with no element matching all of them |
//! | `$type: t` | has JSON type `t` (`string`, `number`, `bool`, `array`, `object`, `null`) |
//!
//! The pointer `""` is the whole document.

use serde_json::Value;

use crate::scenario::Matchers;

/// Checks every matcher against `doc`; the error names the first that
/// fails, with the value found.
pub fn check_all(doc: &Value, matchers: &Matchers) -> Result<(), String> {
    for (ptr, m) in matchers {
        check_one(doc.pointer(ptr), m).map_err(|e| format!("{ptr}: {e}"))?;
    }
    Ok(())
}

/// Checks one matcher against an optional value.
pub fn check_one(found: Option<&Value>, m: &Value) -> Result<(), String> {
    let ops = match m {
        Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.starts_with('$')) => map,
        literal => {
            return match found {
                Some(v) if json_eq(v, literal) => Ok(()),
                Some(v) => Err(format!("expected {literal}, found {}", short(v))),
                None => Err(format!("expected {literal}, found nothing")),
            };
        }
    };
    for (op, arg) in ops {
        op_holds(found, op, arg)?;
    }
    Ok(())
}

fn op_holds(found: Option<&Value>, op: &str, arg: &Value) -> Result<(), String> {
    let fail = |what: String| Err(format!("{op} {arg}: {what}"));
    let desc = || found.map(short).unwrap_or_else(|| "nothing".into());
    match op {
        "$absent" | "$present" => {
            let want_present = (op == "$present") == arg.as_bool().unwrap_or(true);
            if found.is_some() == want_present {
                Ok(())
            } else {
                fail(format!("found {}", desc()))
            }
        }
        "$contains" | "$not_contains" => {
            let Some(v) = found else {
                return fail("found nothing".into());
            };
            let has = match (v, arg) {
                (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
                (Value::Array(items), x) => items.iter().any(|i| json_eq(i, x)),
                _ => return fail(format!("cannot search {}", short(v))),
            };
            if has == (op == "$contains") {
                Ok(())
            } else {
                fail(format!("found {}", short(v)))
            }
        }
        "$starts_with" => match (found, arg) {
            (Some(Value::String(s)), Value::String(p)) if s.starts_with(p.as_str()) => Ok(()),
            _ => fail(format!("found {}", desc())),
        },
        "$ne" => match found {
            Some(v) if json_eq(v, arg) => fail(format!("found {}", short(v))),
            _ => Ok(()),
        },
        "$one_of" => {
            let options = arg.as_array().cloned().unwrap_or_default();
            match found {
                Some(v) if options.iter().any(|o| json_eq(v, o)) => Ok(()),
                _ => fail(format!("found {}", desc())),
            }
        }
        "$gt" | "$ge" | "$lt" | "$le" => {
            let (Some(a), Some(b)) = (found.and_then(Value::as_f64), arg.as_f64()) else {
                return fail(format!("found {}", desc()));
            };
            let ok = match op {
                "$gt" => a > b,
                "$ge" => a >= b,
                "$lt" => a < b,
                _ => a <= b,
            };
            if ok {
                Ok(())
            } else {
                fail(format!("found {a}"))
            }
        }
        "$len" => {
            let n = match found {
                Some(Value::String(s)) => s.chars().count(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                _ => return fail(format!("found {}", desc())),
            };
            if Some(n as u64) == arg.as_u64() {
                Ok(())
            } else {
                fail(format!("length is {n}"))
            }
        }
        "$max_len" => match found {
            Some(Value::String(s)) if Some(s.len() as u64) <= arg.as_u64() => Ok(()),
            Some(Value::String(s)) => fail(format!("length is {} bytes", s.len())),
            _ => fail(format!("found {}", desc())),
        },
        "$any" | "$none" => {
            let Some(Value::Array(items)) = found else {
                return fail(format!("found {}", desc()));
            };
            let sub: Matchers = serde_json::from_value(arg.clone())
                .map_err(|e| format!("{op} takes a map of pointer to matcher: {e}"))?;
            let hit = items.iter().any(|i| check_all(i, &sub).is_ok());
            if hit == (op == "$any") {
                Ok(())
            } else {
                fail(format!("found {}", short(found.unwrap_or(&Value::Null))))
            }
        }
        "$type" => {
            let t = match found {
                Some(Value::String(_)) => "string",
                Some(Value::Number(_)) => "number",
                Some(Value::Bool(_)) => "bool",
                Some(Value::Array(_)) => "array",
                Some(Value::Object(_)) => "object",
                Some(Value::Null) => "null",
                None => "nothing",
            };
            if arg.as_str() == Some(t) {
                Ok(())
            } else {
                fail(format!("found {t}"))
            }
        }
        other => Err(format!("unknown matcher operator {other}")),
    }
}

/// Equality where numbers compare by value.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A value for an error message, cut to a readable length.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}... ({} bytes)", &s[..cut], s.len())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Matchers {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn literals_and_operators() {
        let doc = json!({"status": "success", "n": 3, "list": ["a", "b"], "s": "hello world"});
        check_all(&doc, &m(json!({"/status": "success", "/n": 3.0}))).unwrap();
        check_all(
            &doc,
            &m(json!({"/s": {"$contains": "world", "$starts_with": "hello"}})),
        )
        .unwrap();
        check_all(&doc, &m(json!({"/list": {"$contains": "b", "$len": 2}}))).unwrap();
        check_all(
            &doc,
            &m(json!({"/missing": {"$absent": true}, "/n": {"$gt": 2, "$le": 3}})),
        )
        .unwrap();
        check_all(
            &doc,
            &m(json!({"/status": {"$one_of": ["success", "error"]}})),
        )
        .unwrap();
        let tools = json!({"tools": [{"name": "a", "n": 1}, {"name": "b"}]});
        check_all(
            &tools,
            &m(json!({"/tools": {"$any": {"/name": "a", "/n": 1}}})),
        )
        .unwrap();
        check_all(&tools, &m(json!({"/tools": {"$none": {"/name": "c"}}}))).unwrap();
        assert!(check_all(&tools, &m(json!({"/tools": {"$none": {"/name": "b"}}}))).is_err());
        assert!(check_all(&doc, &m(json!({"/status": "error"}))).is_err());
        assert!(check_all(&doc, &m(json!({"/s": {"$not_contains": "world"}}))).is_err());
        assert!(check_all(&doc, &m(json!({"/n": {"$absent": true}}))).is_err());
        assert!(check_all(&doc, &m(json!({"/missing": {"$not_contains": "x"}}))).is_err());
        assert!(check_all(&doc, &m(json!({"/s": {"$bogus": 1}}))).is_err());
    }
}

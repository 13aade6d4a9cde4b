//! The name rules the Kubernetes API server applies, as functions: each
//! returns `Err` with a sentence that names the value and says what a valid
//! one looks like. [`crate::validate`] applies them to every field that
//! becomes an object name, a container or volume name, a label, or a
//! reference to another object.

/// Longest DNS-1123 label (container, volume, Service and namespace names).
pub const MAX_LABEL: usize = 63;
/// Longest DNS-1123 subdomain (most object names).
pub const MAX_SUBDOMAIN: usize = 253;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 63;
/// Longest ConfigMap key.
pub const MAX_CONFIG_KEY: usize = 253;
/// Longest port name (IANA service name).
pub const MAX_PORT_NAME: usize = 15;

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn too_long(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "{what} {value:?} is {} characters long; at most {max} are allowed",
            value.len()
        ));
    }
    Ok(())
}

/// A DNS-1123 label: lowercase letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 characters (container,
/// volume, Service and namespace names).
pub fn dns_label(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.chars().all(|c| lower_alnum(c) || c == '-')
        && value.starts_with(lower_alnum)
        && value.ends_with(lower_alnum);
    if !ok {
        return Err(format!(
            "{value:?} is not a valid name: use lowercase letters, digits and '-', \
             starting and ending with a letter or digit (like \"my-name-1\")"
        ));
    }
    too_long("name", value, MAX_LABEL)
}

/// A DNS-1123 subdomain: dot-separated labels of lowercase letters, digits
/// and `-`, at most 253 characters (the names of most objects: ConfigMaps,
/// Secrets, custom resources).
pub fn dns_subdomain(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| lower_alnum(c) || c == '-')
                && part.starts_with(lower_alnum)
                && part.ends_with(lower_alnum)
        });
    if !ok {
        return Err(format!(
            "{value:?} is not a valid object name: use lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit (like \"my-name-1\")"
        ));
    }
    too_long("name", value, MAX_SUBDOMAIN)
}

/// A label value: empty, or letters, digits, `-`, `_` and `.`, starting and
/// ending with a letter or digit, at most 63 characters.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(format!(
            "{value:?} is not a valid label value: use letters, digits, '-', '_' and '.', \
             starting and ending with a letter or digit"
        ));
    }
    too_long("label value", value, MAX_LABEL_VALUE)
}

/// A label (or annotation) key: an optional DNS subdomain prefix and `/`,
/// then a name of letters, digits, `-`, `_` and `.` that starts and ends
/// with a letter or digit, at most 63 characters.
pub fn label_key(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, value),
    };
    if let Some(p) = prefix
        && dns_subdomain(p).is_err()
    {
        return Err(format!(
            "{value:?} is not a valid label key: the prefix before '/' must be a DNS subdomain \
             such as \"example.com\""
        ));
    }
    let ok = !name.is_empty()
        && name.len() <= MAX_LABEL_VALUE
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(format!(
            "{value:?} is not a valid label key: a name of at most 63 letters, digits, '-', '_' \
             and '.', optionally after a DNS prefix and '/' (like \"example.com/my-key\")"
        ));
    }
    Ok(())
}

/// An environment variable name as the API server accepts it: letters,
/// digits, `_`, `-` and `.`, not starting with a digit.
pub fn env_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !value.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(format!(
            "{value:?} is not a valid environment variable name: use letters, digits, '_', '-' \
             and '.', not starting with a digit"
        ));
    }
    Ok(())
}

/// A ConfigMap key: letters, digits, `-`, `_` and `.`, at most 253
/// characters, not `.` or `..`.
pub fn config_map_key(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(format!(
            "{value:?} is not a valid ConfigMap key: use letters, digits, '-', '_' and '.'"
        ));
    }
    too_long("ConfigMap key", value, MAX_CONFIG_KEY)
}

/// A port name (IANA service name): lowercase letters, digits and `-`, at
/// least one letter, no `--`, not starting or ending with `-`, at most 15
/// characters.
pub fn port_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.chars().all(|c| lower_alnum(c) || c == '-')
        && value.chars().any(|c| c.is_ascii_lowercase())
        && !value.contains("--")
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !ok {
        return Err(format!(
            "{value:?} is not a valid port name: lowercase letters, digits and single '-', \
             with at least one letter"
        ));
    }
    too_long("port name", value, MAX_PORT_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns_label("demo-run-1").is_ok());
        for bad in ["", "Bad_Name!!", "-x", "x-", "a.b", &"a".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad:?}");
        }
        assert!(dns_subdomain("a.b-c.d").is_ok());
        for bad in ["", "a..b", ".a", "A", "a_b", &"a".repeat(254)] {
            assert!(dns_subdomain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_values_and_keys() {
        for ok in ["", "x", "A_b.c-9"] {
            assert!(label_value(ok).is_ok(), "{ok:?}");
        }
        for bad in ["-x", "x y", "a;b", &"a".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad:?}");
        }
        for ok in ["app", "sympozium.ai/agent-run", "a.b/C_d"] {
            assert!(label_key(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "/x", "Bad Prefix/x", "x/", "a/b/c"] {
            assert!(label_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_keys_and_ports() {
        assert!(env_name("MODEL_NAME").is_ok());
        assert!(env_name("a.b-c").is_ok());
        for bad in ["", "1X", "A B", "A=B", "$(x)"] {
            assert!(env_name(bad).is_err(), "{bad:?}");
        }
        assert!(config_map_key("skill.md").is_ok());
        for bad in ["", "..", "a/b", "a b"] {
            assert!(config_map_key(bad).is_err(), "{bad:?}");
        }
        assert!(port_name("http").is_ok());
        for bad in ["", "80", "a--b", "-a", "averyveryverylongname"] {
            assert!(port_name(bad).is_err(), "{bad:?}");
        }
    }
}

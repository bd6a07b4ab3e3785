//! Wire paths (`gnmi.Path`) <-> canonical path strings.
//!
//! Canonical form: `/interface[name=ethernet-1/49]/oper-state` — no origin, no target,
//! no module prefixes on element or key names, keys sorted by name, `]` and `\` inside
//! a key value escaped with a backslash. The root is `/`.
//!
//! Key values keep their text, except an identityref's module prefix
//! (`srl_nokia-common:evpn` -> `evpn`); IPv6 addresses and MACs are left alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gnmi_proto::{Path, PathElem};

/// A path that cannot be turned into the other form. Names the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

/// One element in canonical form: bare name, keys sorted by bare name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Elem {
    name: String,
    keys: BTreeMap<String, String>,
}

/// The canonical string of `prefix` joined with `path` (either may be absent).
pub fn join_to_string(prefix: Option<&Path>, path: Option<&Path>) -> Result<String, PathError> {
    let mut elems = Vec::new();
    for p in [prefix, path].into_iter().flatten() {
        elems.extend(wire_elems(p)?);
    }
    Ok(render(&elems))
}

/// The canonical string of one wire path.
pub fn to_string(path: &Path) -> Result<String, PathError> {
    join_to_string(None, Some(path))
}

/// Parses a canonical (or module-prefixed, unsorted) path string into a wire path.
/// The result carries `elem` only, never the deprecated `element`.
pub fn parse(s: &str) -> Result<Path, PathError> {
    let err = |reason: String| PathError { path: s.to_string(), reason };
    let rest = s.strip_prefix('/').ok_or_else(|| err("must start with '/'".into()))?;
    let mut elem = Vec::new();
    if !rest.is_empty() {
        for part in split_elems(rest).map_err(err)? {
            let e = parse_elem(part).map_err(err)?;
            elem.push(PathElem { name: e.name, key: e.keys.into_iter().collect() });
        }
    }
    Ok(Path { elem, ..Default::default() })
}

/// Removes a YANG module prefix from a node or key name (`srl_nokia-interfaces:interface`).
pub fn strip_module(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, bare)| bare)
}

/// Removes a module prefix from an identityref key value, but only when the part before
/// the colon is a YANG identifier that is not all hex digits and nothing after it has a
/// colon: `srl_nokia-common:evpn` -> `evpn`, `2001:db8::1` and `fe80::1` unchanged.
fn strip_value_module(value: &str) -> &str {
    let Some((module, rest)) = value.split_once(':') else { return value };
    let identifier = module.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && module.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let hex = module.chars().all(|c| c.is_ascii_hexdigit());
    if identifier && !hex && !rest.is_empty() && !rest.contains(':') { rest } else { value }
}

fn wire_elems(p: &Path) -> Result<Vec<Elem>, PathError> {
    let err = |reason: String| PathError { path: describe(p), reason };
    if p.elem.is_empty() {
        // Deprecated form: each string is one element, possibly with `[k=v]` keys.
        return p.element.iter().map(|s| parse_elem(s).map_err(err)).collect();
    }
    p.elem
        .iter()
        .map(|e| {
            let name = strip_module(&e.name);
            if name.is_empty() {
                return Err(err("empty element name".into()));
            }
            let mut keys = BTreeMap::new();
            for (k, v) in &e.key {
                let k = strip_module(k);
                if k.is_empty() {
                    return Err(err(format!("empty key name in element {name:?}")));
                }
                keys.insert(k.to_string(), strip_value_module(v).to_string());
            }
            Ok(Elem { name: name.to_string(), keys })
        })
        .collect()
}

/// A readable rendering of a wire path for error messages, before any normalisation.
fn describe(p: &Path) -> String {
    if p.elem.is_empty() {
        return format!("/{}", p.element.join("/"));
    }
    let mut out = String::new();
    for e in &p.elem {
        out.push('/');
        out.push_str(&e.name);
        let keys: BTreeMap<_, _> = e.key.iter().collect();
        for (k, v) in keys {
            let _ = write!(out, "[{k}={v}]");
        }
    }
    if out.is_empty() { "/".into() } else { out }
}

fn render(elems: &[Elem]) -> String {
    if elems.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    for e in elems {
        out.push('/');
        out.push_str(&e.name);
        for (k, v) in &e.keys {
            out.push('[');
            out.push_str(k);
            out.push('=');
            for c in v.chars() {
                if matches!(c, ']' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push(']');
        }
    }
    out
}

/// Splits `a[k=x/y]/b` at the slashes outside brackets.
fn split_elems(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut start, mut in_key, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_key => escaped = true,
            '[' if !in_key => in_key = true,
            ']' if in_key => in_key = false,
            '/' if !in_key => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_key {
        return Err("unterminated '['".into());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// Parses one element `name[k=v][k2=v2]`; names and key names lose module prefixes.
fn parse_elem(s: &str) -> Result<Elem, String> {
    let (name, mut rest) = match s.find('[') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let name = strip_module(name);
    if name.is_empty() {
        return Err(format!("empty element name in {s:?}"));
    }
    if name.contains(']') || name.contains('=') {
        return Err(format!("bad element name {name:?}"));
    }
    let mut keys = BTreeMap::new();
    while !rest.is_empty() {
        let body = rest.strip_prefix('[').ok_or_else(|| format!("unexpected text {rest:?} after a key in {s:?}"))?;
        let eq = body.find('=').ok_or_else(|| format!("key without '=' in element {s:?}"))?;
        let key = strip_module(&body[..eq]);
        if key.is_empty() || key.contains(']') {
            return Err(format!("bad key name {:?} in element {s:?}", &body[..eq]));
        }
        let mut value = String::new();
        let mut end = None;
        let mut chars = body[eq + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, next)) => value.push(next),
                    None => return Err(format!("dangling '\\' in element {s:?}")),
                },
                ']' => {
                    end = Some(eq + 1 + i);
                    break;
                }
                _ => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated '[' in element {s:?}"))?;
        if keys.insert(key.to_string(), strip_value_module(&value).to_string()).is_some() {
            return Err(format!("key {key:?} given twice in element {s:?}"));
        }
        rest = &body[end + 1..];
    }
    Ok(Elem { name: name.to_string(), keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn elem(name: &str, keys: &[(&str, &str)]) -> PathElem {
        PathElem {
            name: name.into(),
            key: keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
        }
    }

    fn wire(elems: Vec<PathElem>) -> Path {
        Path { elem: elems, ..Default::default() }
    }

    #[test]
    fn joins_prefix_and_path_and_strips_modules() {
        let prefix = Path {
            origin: "srl_nokia".into(),
            target: "leaf1".into(),
            elem: vec![elem("srl_nokia-interfaces:interface", &[("srl_nokia-interfaces:name", "ethernet-1/49")])],
            ..Default::default()
        };
        let path = wire(vec![elem("srl_nokia-interfaces:oper-state", &[])]);
        assert_eq!(join_to_string(Some(&prefix), Some(&path)).unwrap(), "/interface[name=ethernet-1/49]/oper-state");
        assert_eq!(join_to_string(None, None).unwrap(), "/");
    }

    #[test]
    fn keys_are_sorted_and_identityref_values_lose_their_module() {
        let p = wire(vec![
            elem("neighbor", &[("peer-address", "2001:db8::1")]),
            elem("afi-safi", &[("z", "1"), ("afi-safi-name", "srl_nokia-common:evpn")]),
        ]);
        assert_eq!(to_string(&p).unwrap(), "/neighbor[peer-address=2001:db8::1]/afi-safi[afi-safi-name=evpn][z=1]");
        assert_eq!(strip_value_module("fe80::1"), "fe80::1");
        assert_eq!(strip_value_module("aa:bb:cc:dd:ee:ff"), "aa:bb:cc:dd:ee:ff");
        assert_eq!(strip_value_module("ethernet-1/1"), "ethernet-1/1");
    }

    #[test]
    fn accepts_deprecated_element_form() {
        let p =
            Path { element: vec!["interface[name=ethernet-1/1]".into(), "admin-state".into()], ..Default::default() };
        assert_eq!(to_string(&p).unwrap(), "/interface[name=ethernet-1/1]/admin-state");
    }

    #[test]
    fn parses_slashes_escapes_and_multiple_keys() {
        let p = parse(r"/a[name=x/y\]z][b=q]/srl:c").unwrap();
        assert_eq!(p.elem.len(), 2);
        assert_eq!(p.elem[0].name, "a");
        assert_eq!(p.elem[0].key.get("name").map(String::as_str), Some("x/y]z"));
        assert_eq!(p.elem[0].key.get("b").map(String::as_str), Some("q"));
        assert_eq!(p.elem[1].name, "c");
        assert_eq!(to_string(&p).unwrap(), r"/a[b=q][name=x/y\]z]/c");
        assert!(parse("/").unwrap().elem.is_empty());
    }

    #[test]
    fn errors_name_the_path() {
        for bad in ["interface", "/a[name=x", "/a[name]", "/a//b", "/a[k=1]x", "/a[k=1][k=2]", "/a[=1]", r"/a[k=\"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.path, bad);
            assert!(e.to_string().contains(bad.trim_start_matches('/')), "{e}");
        }
        let e = to_string(&wire(vec![elem("interface", &[]), elem("", &[])])).unwrap_err();
        assert!(e.to_string().contains("/interface/"), "{e}");
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,8}"
    }

    fn value() -> impl Strategy<Value = String> {
        // Anything printable, including '/', ']', '\\', '=' and '['.
        "[ -~]{0,12}".prop_filter("no identityref-looking values", |v| strip_value_module(v) == v)
    }

    fn canonical_elems() -> impl Strategy<Value = Vec<(String, BTreeMap<String, String>)>> {
        prop::collection::vec((name(), prop::collection::btree_map(name(), value(), 0..3)), 0..5)
    }

    proptest! {
        #[test]
        fn canonical_string_round_trips(elems in canonical_elems()) {
            let elems: Vec<Elem> = elems.into_iter().map(|(name, keys)| Elem { name, keys }).collect();
            let s = render(&elems);
            let wire = parse(&s).unwrap();
            prop_assert_eq!(to_string(&wire).unwrap(), s.clone());
            // Module prefixes and a prefix/path split do not change the canonical form.
            let mut prefixed = wire.clone();
            for e in &mut prefixed.elem {
                e.name = format!("mod-x:{}", e.name);
                e.key = e.key.drain().map(|(k, v)| (format!("mod_y:{k}"), v)).collect();
            }
            let split = prefixed.elem.len() / 2;
            let prefix = Path { elem: prefixed.elem[..split].to_vec(), origin: "o".into(), ..Default::default() };
            let rest = Path { elem: prefixed.elem[split..].to_vec(), ..Default::default() };
            prop_assert_eq!(join_to_string(Some(&prefix), Some(&rest)).unwrap(), s);
        }
    }
}

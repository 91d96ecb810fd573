//! Image references checked at parse time by the OCI distribution grammar
//! (`[registry[:port]/]name[:tag][@digest]`), so `image: Nginx:latest!`
//! is refused with the reason before any host tries to pull it.

/// Why `reference` is not a valid image reference; `None` if it is.
pub(super) fn problem(reference: &str) -> Option<String> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest
        && let Some(p) = digest_problem(d)
    {
        return Some(p);
    }
    // A tag follows the last `:` after the last `/` (a registry's port
    // comes before a `/`).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !is_tag(t)
    {
        return Some(format!(
            "invalid tag \"{t}\": up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ));
    }
    if name.len() > 255 {
        return Some("the name is longer than 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts.first().copied().unwrap_or_default();
    let has_domain =
        parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        if !is_domain(first) {
            return Some(format!("invalid registry \"{first}\""));
        }
        parts.remove(0);
    }
    for p in parts {
        if p.is_empty() {
            return Some("the name has an empty part (`//`, or a leading or trailing `/`)".into());
        }
        if p.chars().any(|c| c.is_ascii_uppercase()) {
            return Some(format!("\"{p}\": repository names must be lowercase"));
        }
        if !is_component(p) {
            return Some(format!(
                "invalid name part \"{p}\": lowercase letters and digits, separated by '.', '_', '__' or dashes"
            ));
        }
    }
    None
}

fn alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_component(p: &str) -> bool {
    let b = p.as_bytes();
    if !b.first().is_some_and(|c| alnum(*c as char)) || !b.last().is_some_and(|c| alnum(*c as char))
    {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if alnum(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i] as char) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`, host being dot-separated labels of letters, digits and
/// inner dashes (or an IPv6 address in brackets).
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_tag(t: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
    !t.is_empty()
        && t.len() <= 128
        && t.chars().all(ok)
        && !t.starts_with('.')
        && !t.starts_with('-')
}

fn digest_problem(d: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "invalid digest \"{d}\": expected algorithm:hex such as sha256:<64 hex digits>"
        ))
    };
    let Some((algorithm, hex)) = d.split_once(':') else {
        return bad();
    };
    let algorithm_ok =
        !algorithm.is_empty() && algorithm.chars().all(|c| alnum(c) || "+._-".contains(c));
    let hex_ok = hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !algorithm_ok || !hex_ok || (algorithm == "sha256" && hex.len() != 64) {
        return bad();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn references_people_write_are_accepted() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for r in [
            "nginx",
            "nginx:1.27-alpine",
            "library/nginx:latest",
            "ghcr.io/owner/app:v1.2.3",
            "localhost:5000/app",
            "127.0.0.1:5000/team/app:1",
            "registry.example.com/a/b/c",
            "my_app__x/web-api",
            &format!("nginx@{digest}"),
            &format!("nginx:1.27@{digest}"),
            "[::1]:5000/app:1",
        ] {
            assert_eq!(problem(r), None, "{r}");
        }
    }

    #[test]
    fn malformed_references_say_why() {
        for (r, why) in [
            ("Nginx", "lowercase"),
            ("nginx:latest!", "invalid tag"),
            ("nginx:", "invalid tag"),
            ("nginx:.x", "invalid tag"),
            ("a//b", "empty part"),
            ("/nginx", "empty part"),
            ("nginx/", "empty part"),
            ("-nginx", "invalid name part"),
            ("ngi..nx", "invalid name part"),
            ("nginx@sha256:abc", "invalid digest"),
            ("nginx@md5", "invalid digest"),
            ("bad_host.com:x/app", "invalid registry"),
            ("localhost:99999999/app", "invalid registry"),
        ] {
            let p = problem(r).unwrap_or_else(|| panic!("{r} was accepted"));
            assert!(p.contains(why), "{r}: {p}");
        }
        assert!(problem(&"a".repeat(256)).is_some());
    }
}

//! Database URLs in logs and errors: every secret a URL can carry, masked.

/// Query parameters of a database URL whose values are secrets (`password`, `sslpassword`, ...).
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|s| name.contains(s))
}

/// Where the secrets of a database URL are: byte ranges of the password of its user-info part
/// (which may hold an unencoded `/`, `?` or `@`) and of the values of password-like query
/// parameters.
fn secret_ranges(url: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let body = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[body..];
    let query = rest.find('?').unwrap_or(rest.len());
    // The user-info ends at the last `@` before the query. A password holding `?` puts its
    // `@` after the first `?`; an `@` inside a query parameter has a `=` before it.
    let at = rest[..query]
        .rfind('@')
        .or_else(|| rest.find('@').filter(|at| !rest[..*at].contains('=')));
    let mut host_from = 0;
    if let Some(at) = at {
        if let Some(colon) = rest[..at].find(':') {
            ranges.push(body + colon + 1..body + at);
        }
        host_from = at + 1;
    }
    if let Some(q) = rest[host_from..].find('?') {
        let mut from = host_from + q + 1;
        for pair in rest[from..].split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if is_secret_parameter(name) && !value.is_empty() {
                    let start = body + from + name.len() + 1;
                    ranges.push(start..start + value.len());
                }
            }
            from += pair.len() + 1;
        }
    }
    ranges
}

/// The database URL with every secret replaced by `***`: the password of
/// `scheme://user:password@host/...` (also when it holds an unencoded `/`, `?` or `@`) and
/// the values of password-like query parameters (`?password=...`, `sslpassword`).
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    let mut ranges = secret_ranges(url);
    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
    for r in ranges {
        if !r.is_empty() {
            out.replace_range(r, "***");
        }
    }
    out
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` (an error message, say) with every secret of `url` masked, as written in the URL and
/// percent-decoded: a driver's message may quote either.
pub fn redact_secrets_of(url: &str, text: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    for r in secret_ranges(url) {
        let raw = &url[r];
        for secret in [raw.to_owned(), percent_decoded(raw)] {
            if secret.len() >= 3 {
                out = out.replace(&secret, "***");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/po?sslmode=require"),
            "postgres://app:***@db:5432/po?sslmode=require"
        );
    }

    #[test]
    fn every_url_form_of_a_database_password_is_redacted() {
        for (url, shown) in [
            (
                "postgres://app@db/po?password=s3cret&sslmode=require",
                "postgres://app@db/po?password=***&sslmode=require",
            ),
            ("postgres://app:se/cr?et@db/po", "postgres://app:***@db/po"),
            (
                "postgresql://app:p@ss@db:5432/po",
                "postgresql://app:***@db:5432/po",
            ),
            (
                "postgres://app:a%2Fb@db/po?sslpassword=k3y",
                "postgres://app:***@db/po?sslpassword=***",
            ),
            (
                "postgres://db/po?user=app&PASSWORD=s3cret",
                "postgres://db/po?user=app&PASSWORD=***",
            ),
            (
                "postgres://app@db/po?options=-c%20a%3Db",
                "postgres://app@db/po?options=-c%20a%3Db",
            ),
            (
                "postgres://db/po?user=a@b&password=s3cret",
                "postgres://db/po?user=a@b&password=***",
            ),
            ("sqlite://data/po.db", "sqlite://data/po.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn a_message_quoting_a_password_raw_or_decoded_is_masked() {
        let url = "postgres://app:a%2Fbc@db/po?password=xyz1";
        let message = format!("cannot connect to {url}: password a/bc or xyz1 refused");
        let masked = redact_secrets_of(url, &message);
        assert!(
            !masked.contains("a/bc") && !masked.contains("xyz1") && !masked.contains("a%2Fbc"),
            "{masked}"
        );
    }
}

//! Cross-site request forgery: every state change of the console is a POST that must carry the
//! visit's anti-forgery token (a hidden form field equal to the `HttpOnly` cookie, which no
//! other site can read or set: a double-submit token, new at each sign-in and sign-out) and,
//! when the browser says where the request comes from, come from the console's own origin
//! (`Origin`, `Sec-Fetch-Site`). Nothing changes state over GET.

use actix_web::HttpRequest;
use actix_web::http::header;

/// A fresh token: 244 random bits from the operating system (two UUID v4s).
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether a form submitted with `submitted` may change state: it matches the visit's `cookie`,
/// and the browser, if it says, sent it from `origin` (the console's own).
pub fn allows(request: &HttpRequest, cookie: Option<&str>, submitted: &str, origin: &str) -> bool {
    let token_matches =
        cookie.is_some_and(|cookie| !cookie.is_empty() && same_bytes(cookie, submitted));
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let sent_origin = header(header::ORIGIN.as_str());
    let fetch_site = header("sec-fetch-site");
    let from_origin = sent_origin.is_none_or(|sent| sent == origin);
    let same_site = fetch_site.is_none_or(|site| site == "same-origin");
    let allowed = token_matches && from_origin && same_site;
    if !allowed {
        tracing::info!(
            token_matches,
            origin = sent_origin,
            expected_origin = origin,
            sec_fetch_site = fetch_site,
            "console form refused"
        );
    }
    allowed
}

/// Compares in time independent of where the two differ.
fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |differ, (x, y)| differ | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:8080";

    #[test]
    fn a_form_needs_the_cookies_token_and_the_consoles_origin() {
        let token = new_token();
        let same = TestRequest::post()
            .insert_header(("origin", ORIGIN))
            .insert_header(("sec-fetch-site", "same-origin"))
            .to_http_request();
        assert!(allows(&same, Some(&token), &token, ORIGIN));
        assert!(
            !allows(&same, Some(&token), &new_token(), ORIGIN),
            "another token"
        );
        assert!(!allows(&same, None, &token, ORIGIN), "no cookie");
        assert!(!allows(&same, Some(""), "", ORIGIN), "empty tokens");

        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let foreign = TestRequest::post()
                .insert_header((name, value))
                .to_http_request();
            assert!(
                !allows(&foreign, Some(&token), &token, ORIGIN),
                "{name}: {value}"
            );
        }
        // Browsers that send neither header still need the token.
        let silent = TestRequest::post().to_http_request();
        assert!(allows(&silent, Some(&token), &token, ORIGIN));
    }
}

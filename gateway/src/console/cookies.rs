//! The console's cookies: the session's two tokens and its anti-forgery token, all `HttpOnly`
//! (no script can read them), `SameSite=Strict` (no other site's page can send them) and for the
//! whole site (`Path=/`). Behind an `https` public origin they are also `Secure` and carry the
//! `__Host-` prefix, which the browser accepts only from a secure origin, for the host alone.

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, SameSite};

/// Which cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jar {
    /// The access token, kept for as long as it lives.
    Access,
    /// The refresh token, kept for as long as the session may be refreshed.
    Refresh,
    /// The anti-forgery token that every form of the console carries back.
    Csrf,
}

impl Jar {
    fn base_name(self) -> &'static str {
        match self {
            Self::Access => "bookstore-access",
            Self::Refresh => "bookstore-refresh",
            Self::Csrf => "bookstore-csrf",
        }
    }

    pub fn name(self, secure: bool) -> String {
        if secure {
            format!("__Host-{}", self.base_name())
        } else {
            self.base_name().to_owned()
        }
    }

    /// The cookie's value in `request`, if it carries a non-empty one.
    pub fn read(self, request: &HttpRequest, secure: bool) -> Option<String> {
        request
            .cookie(&self.name(secure))
            .map(|cookie| cookie.value().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// A cookie setting `value` for `max_age_secs`.
    pub fn set(self, value: String, max_age_secs: i64, secure: bool) -> Cookie<'static> {
        let mut cookie = Cookie::build(self.name(secure), value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .finish();
        cookie.set_max_age(Duration::seconds(max_age_secs.max(0)));
        cookie
    }

    /// A cookie that removes this one.
    pub fn clear(self, secure: bool) -> Cookie<'static> {
        self.set(String::new(), 0, secure)
    }
}

#[cfg(test)]
mod tests {
    use super::Jar;

    #[test]
    fn every_cookie_is_http_only_strict_and_secure_with_the_host_prefix_over_https() {
        let cookie = Jar::Refresh.set("token".into(), 60, true).to_string();
        assert!(
            cookie.starts_with("__Host-bookstore-refresh=token;"),
            "{cookie}"
        );
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
        }
        let plain = Jar::Access.set("token".into(), 60, false).to_string();
        assert!(plain.starts_with("bookstore-access=token;") && !plain.contains("Secure"));
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
    }
}

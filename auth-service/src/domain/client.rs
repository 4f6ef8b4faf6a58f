use std::net::IpAddr;

use super::has_control_chars;

const MAX_USER_AGENT_BYTES: usize = 512;

/// Where a login or refresh came from, as recorded on its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub user_agent: String,
    pub ip: String,
}

impl ClientInfo {
    /// Keeps at most 512 bytes of the user agent (cut at a character boundary) and checks
    /// that the address, when given, is an IP address.
    ///
    /// # Errors
    /// `(field, message)` for the first invalid field.
    pub fn parse(user_agent: &str, ip: &str) -> Result<Self, (&'static str, String)> {
        if has_control_chars(user_agent) {
            return Err((
                "client.user_agent",
                "must not contain control characters".to_owned(),
            ));
        }
        let ip = ip.trim();
        let ip = if ip.is_empty() {
            String::new()
        } else {
            ip.parse::<IpAddr>()
                .map_err(|_| ("client.ip", "must be an IPv4 or IPv6 address".to_owned()))?
                .to_string()
        };
        let mut cut = user_agent.len().min(MAX_USER_AGENT_BYTES);
        while !user_agent.is_char_boundary(cut) {
            cut -= 1;
        }
        Ok(Self {
            user_agent: user_agent[..cut].to_owned(),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ClientInfo;

    #[test]
    fn long_user_agents_are_cut_at_a_character_boundary() {
        let client = ClientInfo::parse(&"é".repeat(400), "").unwrap();
        assert_eq!(client.user_agent.len(), 512);
    }

    #[test]
    fn addresses_are_normalised_or_refused() {
        assert_eq!(
            ClientInfo::parse("", " ::FFFF:10.0.0.1 ").unwrap().ip,
            "::ffff:10.0.0.1"
        );
        assert!(ClientInfo::parse("", "10.0.0").is_err());
        assert!(ClientInfo::parse("curl\u{0}", "").is_err());
    }
}

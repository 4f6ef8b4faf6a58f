use std::collections::BTreeSet;
use std::fmt;

/// What a user may do beyond managing its own account and books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Self::User),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A user's set of roles. Stored as space-separated names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// What a new account gets.
    pub fn new_user() -> Self {
        Self(BTreeSet::from([Role::User]))
    }

    pub fn admin() -> Self {
        Self(BTreeSet::from([Role::User, Role::Admin]))
    }

    /// Roles from names given by a client.
    ///
    /// # Errors
    /// A message naming the unknown role.
    pub fn parse_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        names
            .iter()
            .map(|name| {
                Role::parse(name.as_ref()).ok_or_else(|| {
                    format!("unknown role `{}`: use `user` or `admin`", name.as_ref())
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Roles as stored. Unknown names (from a newer version) are skipped, never granted.
    pub fn from_stored(stored: &str) -> Self {
        Self(stored.split_whitespace().filter_map(Role::parse).collect())
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|role| role.as_str().to_owned()).collect()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.0.iter().map(|role| role.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_survive_a_round_trip_through_storage() {
        let roles = Roles::parse_names(&["admin", "user", "admin"]).unwrap();
        assert_eq!(roles.to_string(), "user admin");
        assert_eq!(Roles::from_stored(&roles.to_string()), roles);
    }

    #[test]
    fn unknown_role_names_are_refused_or_ignored() {
        assert!(Roles::parse_names(&["root"]).is_err());
        assert_eq!(Roles::from_stored("user root"), Roles::new_user());
    }
}

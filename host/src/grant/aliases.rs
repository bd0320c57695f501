//! `[identity-aliases]`: the names one person goes by (a static token's
//! name, an IdP email, a former address), so separation of duties holds
//! across them: an approver may not approve a grant requested by, or for,
//! any of its own names.
//!
//! ```toml
//! [identity-aliases]
//! "alice@example.com" = ["alice", "a.smith@example.com"]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::identity_key;

/// Canonical name → every name of that person, all normalised with
/// [`identity_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityAliases {
    /// Normalised name → index into `people`.
    index: BTreeMap<String, usize>,
    people: Vec<BTreeSet<String>>,
}

impl IdentityAliases {
    /// From the `[identity-aliases]` table. A name listed for two people is
    /// an error naming the key: it would make them one person.
    pub fn new(table: &BTreeMap<String, Vec<String>>) -> Result<IdentityAliases, String> {
        let mut out = IdentityAliases::default();
        for (canonical, others) in table {
            let i = out.people.len();
            let mut names = BTreeSet::new();
            for name in std::iter::once(canonical).chain(others) {
                let key = identity_key(name);
                if key.is_empty() || name.chars().any(char::is_control) {
                    return Err(format!(
                        "identity-aliases.{canonical}: `{}` is not a usable name",
                        name.escape_debug()
                    ));
                }
                match out.index.get(&key) {
                    Some(&j) if j != i => {
                        return Err(format!(
                            "identity-aliases.{canonical}: `{name}` is also a name of another person"
                        ));
                    }
                    _ => {}
                }
                out.index.insert(key.clone(), i);
                names.insert(key);
            }
            out.people.push(names);
        }
        Ok(out)
    }

    /// Every other name of `name`'s person, normalised (empty when it has
    /// no aliases).
    pub fn others(&self, name: &str) -> Vec<String> {
        let key = identity_key(name);
        self.index
            .get(&key)
            .and_then(|&i| self.people.get(i))
            .map(|names| names.iter().filter(|n| **n != key).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn names_of_one_person_find_each_other_whatever_the_case() {
        let a = IdentityAliases::new(&table(&[(
            "alice@example.com",
            &["Alice", " a.smith@example.com "],
        )]))
        .expect("aliases");
        assert_eq!(
            a.others("ALICE"),
            ["a.smith@example.com", "alice@example.com"]
        );
        assert_eq!(
            a.others("alice@example.com"),
            ["a.smith@example.com", "alice"]
        );
        assert!(a.others("bob").is_empty());
    }

    #[test]
    fn a_name_given_to_two_people_is_refused() {
        let e = IdentityAliases::new(&table(&[("alice", &["ops"]), ("bob", &["OPS"])]))
            .expect_err("shared alias");
        assert!(e.starts_with("identity-aliases.bob:"), "{e}");
        assert!(IdentityAliases::new(&table(&[("alice", &[" "])])).is_err());
    }
}

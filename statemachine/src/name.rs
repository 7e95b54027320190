//! The names a machine declares, as Rust enums with their `.fsm` spelling.

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

/// One kind of name of a machine: the generated `State`, `Event`, `ActorKind`, `Reason`,
/// `Guard`, `Action`, `Notification` and `Operation` enums.
///
/// The text form (`Display`, `FromStr`, serde) is the `.fsm` spelling, e.g. `"pending"`;
/// text that names no variant is rejected with [`UnknownName`].
pub trait Name:
    Copy
    + Eq
    + Hash
    + Ord
    + fmt::Debug
    + fmt::Display
    + FromStr<Err = UnknownName>
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// What this kind of name is called in messages: `"state"`, `"event"`, ...
    const KIND: &'static str;
    /// Every variant, in the order of the `.fsm` file.
    const ALL: &'static [Self];

    /// The `.fsm` spelling.
    fn as_str(self) -> &'static str;

    /// The variant spelled `text` in the `.fsm` file.
    fn parse_name(text: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| UnknownName::new(Self::KIND, text, Self::ALL.iter().map(|n| n.as_str())))
    }
}

/// Text that names no variant of a machine's enum.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{text}`{}", expected_list(.expected))]
#[non_exhaustive]
pub struct UnknownName {
    /// `"state"`, `"event"`, ...
    pub kind: &'static str,
    /// The text that was given.
    pub text: String,
    /// Every valid spelling, in file order.
    pub expected: Vec<&'static str>,
}

impl UnknownName {
    pub fn new(
        kind: &'static str,
        text: &str,
        expected: impl IntoIterator<Item = &'static str>,
    ) -> Self {
        UnknownName {
            kind,
            text: text.to_owned(),
            expected: expected.into_iter().collect(),
        }
    }
}

fn expected_list(expected: &[&str]) -> String {
    if expected.is_empty() {
        "; the machine declares none".to_owned()
    } else {
        format!("; expected one of: {}", expected.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::UnknownName;

    #[test]
    fn unknown_names_list_what_would_have_been_accepted() {
        let err = UnknownName::new("state", "pendng", ["pending", "paid"]);
        assert_eq!(
            err.to_string(),
            "unknown state `pendng`; expected one of: pending, paid"
        );
        let err = UnknownName::new("reason", "other", []);
        assert_eq!(
            err.to_string(),
            "unknown reason `other`; the machine declares none"
        );
    }
}

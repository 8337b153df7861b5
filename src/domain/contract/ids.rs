//! Identities and amounts of the contract: the event key, ids and money, each valid by
//! construction (parsed at the edge, never built unchecked).

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize};

/// Identity of an event: the same `source` + `id` seen twice is one event (producers retry).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventKey {
    pub source: String,
    pub id: String,
}

impl EventKey {
    /// The smallest key (empty source and id): a range bound below every real key.
    pub fn min() -> EventKey {
        EventKey {
            source: String::new(),
            id: String::new(),
        }
    }
}

/// Longest id accepted (ids are primary keys; an unbounded one could not be indexed).
pub const MAX_ID_LEN: usize = 256;

/// A non-empty identifier (order, customer, claim, courier ids are all strings in the contract).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// Builds an id, refusing the empty string so that an `Id` that exists is usable as a key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            Err("id is empty".to_owned())
        } else if raw.len() > MAX_ID_LEN {
            Err(format!("id is longer than {MAX_ID_LEN} bytes"))
        } else {
            Ok(Id(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Id::parse(&raw).map_err(de::Error::custom)
    }
}

/// A money amount as the contract sends it: a decimal string such as `"3.00"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Money(String);

impl Money {
    /// Accepts an optional minus sign, digits, and an optional fraction; nothing else.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if all_digits(int) && frac.is_none_or(all_digits) {
            Ok(Money(raw.to_owned()))
        } else {
            Err(format!("`{raw}` is not a decimal string"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The amount with the opposite sign, as a decimal string (`"3.00"` → `"-3.00"`).
    pub fn negated(&self) -> String {
        match self.0.strip_prefix('-') {
            Some(positive) => positive.to_owned(),
            None => format!("-{}", self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Money::parse(&raw).map_err(de::Error::custom)
    }
}

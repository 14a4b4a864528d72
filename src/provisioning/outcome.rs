//! What delivering an order came to, before it is recorded.

use crate::connectors::Delivered;
use crate::storage::orders::LinkChange;

/// How a delivered object compared when read back from the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Nothing to read back (a deletion, or nothing was due).
    NotApplicable,
    Matches,
    /// The first difference found, in words.
    Drift(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivered: Delivered,
    pub verification: Verification,
    pub link: Option<LinkChange>,
    /// Nothing was sent: the order waits for a person.
    pub parked: Option<Parked>,
    /// What the order should say beside its state (members left out of a group, and why).
    pub note: Option<String>,
}

/// Why an order went nowhere yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parked {
    /// A review rule holds it for approval; why, in words.
    Held(String),
    /// A manual target's work item stands for it until a person completes or fails it.
    WithPerson,
}

impl Outcome {
    pub fn parked(why: Parked) -> Outcome {
        Outcome {
            delivered: Delivered::default(),
            verification: Verification::NotApplicable,
            link: None,
            parked: Some(why),
            note: None,
        }
    }
}

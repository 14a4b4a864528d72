//! What an order is and where it stands, as types: stored as text, parsed when read.

/// The states of an order, as operators know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    /// Ready, not yet taken by a worker.
    Pending,
    /// A worker sent it and has no answer yet (or a person is carrying it out).
    Transmitted,
    /// The target said OK.
    Executed,
    /// Read back from the target and it matches.
    Verified,
    /// An attempt failed; it will be retried at `next_attempt_at`.
    Errored,
    /// Given up: permanent failure or attempts exhausted.
    Error,
    /// Held for review.
    AwaitingApproval,
    /// Superseded or cancelled, never sent.
    Inactive,
}

impl OrderState {
    pub const ALL: [OrderState; 8] = [
        OrderState::Pending,
        OrderState::Transmitted,
        OrderState::Executed,
        OrderState::Verified,
        OrderState::Errored,
        OrderState::Error,
        OrderState::AwaitingApproval,
        OrderState::Inactive,
    ];

    /// The states of an order still on its way to the target.
    pub const OPEN: [OrderState; 4] = [
        OrderState::Pending,
        OrderState::Transmitted,
        OrderState::Errored,
        OrderState::AwaitingApproval,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Transmitted => "transmitted",
            OrderState::Executed => "executed",
            OrderState::Verified => "verified",
            OrderState::Errored => "errored",
            OrderState::Error => "error",
            OrderState::AwaitingApproval => "awaiting_approval",
            OrderState::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// States of an order still on its way to the target.
    pub fn is_open(self) -> bool {
        OrderState::OPEN.contains(&self)
    }

    /// States after which nothing more happens to an order without an operator.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderState::Executed | OrderState::Verified | OrderState::Error | OrderState::Inactive
        )
    }

    /// Whether an order in this state may move to `to`: the lifecycle, in one table.
    ///
    /// ```text
    /// (planned) ─▶ Pending ─▶ Transmitted ─▶ Executed ─▶ Verified
    ///   │            ▲  │        │  ▲  │
    ///   │   approve  │  │        │  │  └──▶ Errored ─▶ (Transmitted again) … ─▶ Error
    ///   ▼            │  ▼        ▼  │ retry
    /// AwaitingApproval  Inactive (superseded, cancelled, declined, target deleted)
    /// ```
    pub fn may_become(self, to: OrderState) -> bool {
        use OrderState::*;
        match self {
            Pending => matches!(to, Transmitted | Inactive),
            Transmitted => matches!(
                to,
                Executed | Verified | Errored | Error | AwaitingApproval | Inactive | Transmitted
            ),
            Errored => matches!(to, Transmitted | Pending | Error | Inactive),
            Error => matches!(to, Pending | Inactive),
            AwaitingApproval => matches!(to, Pending | Inactive),
            Executed => matches!(to, Verified),
            Verified | Inactive => false,
        }
    }

    /// Whether the resource's order ended here (landed, or will not land): group orders
    /// waiting for it as a member need not wait any longer.
    pub fn ends_delivery(self) -> bool {
        self.is_final()
    }
}

impl TryFrom<String> for OrderState {
    type Error = UnknownText;
    fn try_from(text: String) -> Result<Self, UnknownText> {
        OrderState::parse(&text).ok_or(UnknownText("order state", text))
    }
}

/// What an order does on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Bring the target in line with the resource as it is now: create, update, or
    /// deprovision when it left the target's scope.
    Upsert,
    /// The resource was deleted: deprovision it.
    Delete,
    /// A full sync found an account no identity stands for: delete it (its resource id is
    /// the remote id).
    DeleteOrphan,
    /// ... or disable it.
    DisableOrphan,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Upsert,
        Operation::Delete,
        Operation::DeleteOrphan,
        Operation::DisableOrphan,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
            Operation::DeleteOrphan => "delete_orphan",
            Operation::DisableOrphan => "disable_orphan",
        }
    }

    pub fn parse(s: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// For an account no local resource stands for.
    pub fn is_for_orphan(self) -> bool {
        matches!(self, Operation::DeleteOrphan | Operation::DisableOrphan)
    }
}

impl TryFrom<String> for Operation {
    type Error = UnknownText;
    fn try_from(text: String) -> Result<Self, UnknownText> {
        Operation::parse(&text).ok_or(UnknownText("order operation", text))
    }
}

/// Why an order exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// An accepted change (the change log).
    Change,
    /// A full sync's correction of drift.
    Sync,
    /// An operator's provision-on-demand run.
    OnDemand,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Change, Origin::Sync, Origin::OnDemand];

    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Change => "change",
            Origin::Sync => "sync",
            Origin::OnDemand => "on_demand",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Origin::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl TryFrom<String> for Origin {
    type Error = UnknownText;
    fn try_from(text: String) -> Result<Self, UnknownText> {
        Origin::parse(&text).ok_or(UnknownText("order origin", text))
    }
}

/// What holds an order for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldKind {
    /// A target's review rule.
    Review,
    /// The mass-delete guard (inbound deletions, or a full sync's plan).
    MassDelete,
}

impl HoldKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            HoldKind::Review => "review",
            HoldKind::MassDelete => "mass_delete",
        }
    }

    pub fn parse(s: &str) -> Option<HoldKind> {
        [HoldKind::Review, HoldKind::MassDelete]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// An order held for approval: by what, and why in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub kind: HoldKind,
    pub reason: String,
}

impl Hold {
    pub fn review(reason: impl Into<String>) -> Hold {
        Hold {
            kind: HoldKind::Review,
            reason: reason.into(),
        }
    }

    pub fn mass_delete(reason: impl Into<String>) -> Hold {
        Hold {
            kind: HoldKind::MassDelete,
            reason: reason.into(),
        }
    }
}

/// A stored text that names no known value (written by a newer version, or by hand).
#[derive(Debug, thiserror::Error)]
#[error("unknown {0}: {1:?}")]
pub struct UnknownText(&'static str, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_text() {
        for state in OrderState::ALL {
            assert_eq!(OrderState::parse(state.as_str()), Some(state));
        }
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        for origin in Origin::ALL {
            assert_eq!(Origin::parse(origin.as_str()), Some(origin));
        }
        for kind in [HoldKind::Review, HoldKind::MassDelete] {
            assert_eq!(HoldKind::parse(kind.as_str()), Some(kind));
        }
        assert!(OrderState::try_from("lost".to_string()).is_err());
    }

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        use OrderState::*;
        assert!(Pending.may_become(Transmitted));
        assert!(Transmitted.may_become(Verified));
        assert!(Errored.may_become(Transmitted));
        assert!(AwaitingApproval.may_become(Pending));
        assert!(Error.may_become(Pending), "an operator's retry");
        assert!(!Pending.may_become(Executed), "nothing lands unsent");
        assert!(!Verified.may_become(Pending), "final");
        assert!(!Inactive.may_become(Pending), "final");
        assert!(!Executed.may_become(Errored));
        for state in OrderState::ALL {
            assert_eq!(state.is_open(), !state.is_final(), "{state:?}");
        }
    }
}

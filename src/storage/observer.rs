//! What the store tells a watcher (the metrics) about each committed write: told after the
//! commit, so a rolled-back move is never counted.

/// One order's move, as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMove {
    pub target: String,
    /// The state it left (`None`: the order was just created).
    pub from: Option<String>,
    pub to: &'static str,
}

/// Watches the store's commits.
pub trait StoreObserver: Send + Sync {
    /// Orders that moved in one committed transaction.
    fn orders_moved(&self, moves: &[OrderMove]);
}

//! Links written with a batch of outcomes (`identity_links::set_many`): new links are added,
//! a changed remote id replaces the old one in place, removals delete, and within one batch
//! the last word on a resource wins.

use std::collections::HashMap;

use scimgate::storage::identity_links::{self, LinkUpdate};
use scimgate::storage::StoreError;

use crate::harness::TestServer;
use crate::on_both_backends;

fn set(s: &TestServer, updates: &[(&str, Option<&str>)]) {
    let updates: Vec<LinkUpdate<'_>> = updates
        .iter()
        .map(|(source, remote)| LinkUpdate {
            target: "hr",
            resource_type: "User",
            source_id: source,
            remote: *remote,
        })
        .collect();
    s.db.write(|tx| identity_links::set_many(tx, &updates))
        .expect("set links");
}

fn links(s: &TestServer) -> HashMap<String, String> {
    s.db.read(|c| identity_links::all_of(c, "hr", "User"))
        .expect("links")
}

fn link_batches_add_replace_and_remove(s: &TestServer) {
    set(
        s,
        &[("a", Some("ra")), ("b", Some("rb")), ("c", Some("rc"))],
    );
    assert_eq!(
        links(s),
        HashMap::from([
            ("a".into(), "ra".into()),
            ("b".into(), "rb".into()),
            ("c".into(), "rc".into())
        ])
    );

    // A new remote id for a linked resource, a removal, and a resource named twice.
    set(
        s,
        &[
            ("a", Some("ra2")),
            ("b", None),
            ("d", Some("first")),
            ("d", Some("last")),
            ("c", Some("gone")),
            ("c", None),
        ],
    );
    assert_eq!(
        links(s),
        HashMap::from([("a".into(), "ra2".into()), ("d".into(), "last".into())])
    );

    // Removed, then linked again in a later batch.
    set(s, &[("b", Some("rb2"))]);
    assert_eq!(links(s).get("b").map(String::as_str), Some("rb2"));
    let other: Result<HashMap<String, String>, StoreError> =
        s.db.read(|c| identity_links::all_of(c, "payroll", "User"));
    assert!(
        other.expect("other target").is_empty(),
        "links are per target"
    );
}

on_both_backends!(link_batches_add_replace_and_remove);

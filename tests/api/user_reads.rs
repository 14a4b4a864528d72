//! GET of single users and filtered first pages under concurrency: on PostgreSQL the reads
//! waiting together are made in one statement (see `storage::user_reads`). Every request still
//! gets its own user, with its own groups, or its own page with its own total, and an unknown
//! id its own 404, however the reads were batched.

use std::sync::Arc;

use serde_json::{json, Value};

use scimgate::storage::query::{Collection, Cond, Expr, Literal, Op};
use scimgate::storage::user_reads::{self, FirstPage};

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;

/// Sixteen clients at once, each asking for its own users, for one user every client asks
/// for, and for an id no user has.
fn concurrent_gets_each_get_their_own_user(s: &TestServer) {
    let popular = id_of(&s.create_user(&json!({"userName": "popular"})));
    let grouped = id_of(&s.create_user(&json!({"userName": "grouped"})));
    let inner = id_of(&s.create_group(&json!({"displayName": "inner",
        "members": [{"value": grouped, "type": "User"}]})));
    let outer = id_of(&s.create_group(&json!({"displayName": "outer",
        "members": [{"value": inner, "type": "Group"}]})));
    let own: Vec<(String, String)> = (0..32)
        .map(|n| {
            let name = format!("reader-{n:02}");
            (id_of(&s.create_user(&json!({"userName": name}))), name)
        })
        .collect();
    let s = Arc::new(s);
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (s, own) = (Arc::clone(&s), &own);
            let (popular, grouped) = (&popular, &grouped);
            let (inner, outer) = (&inner, &outer);
            scope.spawn(move || {
                for round in 0..6 {
                    let (id, name) = &own[(client * 2 + round) % own.len()];
                    let user = s.get(&format!("/Users/{id}"));
                    assert_eq!(user.status, 200, "{}", user.body);
                    assert_eq!(user.body["userName"], name.as_str());
                    assert!(user.body.get("groups").is_none(), "{}", user.body);
                    let user = s.get(&format!("/Users/{popular}")).body;
                    assert_eq!(user["userName"], "popular");
                    let user = s.get(&format!("/Users/{grouped}")).body;
                    let mut groups: Vec<(String, String)> = user["groups"]
                        .as_array()
                        .expect("groups")
                        .iter()
                        .map(|g| {
                            let text = |k: &str| g[k].as_str().unwrap_or_default().to_string();
                            (text("value"), text("type"))
                        })
                        .collect();
                    groups.sort();
                    let mut expected = vec![
                        (inner.to_string(), "direct".to_string()),
                        (outer.to_string(), "indirect".to_string()),
                    ];
                    expected.sort();
                    assert_eq!(groups, expected, "{user}");
                    let missing = s.get("/Users/00000000-0000-7000-8000-000000000000");
                    assert_eq!(missing.status, 404, "{}", missing.body);
                    assert_eq!(missing.body["status"], "404");
                }
            });
        }
    });
}

/// Reads queued together (one of them asked for by half the callers, one for an id no user
/// has) are answered each with its own user.
fn reads_waiting_together_are_each_answered(s: &TestServer) {
    let popular = id_of(&s.create_user(&json!({"userName": "asked-often"})));
    let others: Vec<String> = (0..31)
        .map(|n| id_of(&s.create_user(&json!({"userName": format!("asked-once-{n}")}))))
        .collect();
    let mut asked: Vec<String> = vec![popular.clone(); 32];
    asked.extend(others.iter().cloned());
    asked.push("no-such-user".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let found = runtime.block_on(futures_util::future::join_all(
        asked
            .iter()
            .map(|id| user_reads::find_with_memberships(&s.db, id.clone())),
    ));
    for (id, found) in asked.iter().zip(found) {
        let found = found.expect("read");
        match id.as_str() {
            "no-such-user" => assert!(found.is_none()),
            _ => {
                let (user, groups) = found.expect("the user exists");
                assert_eq!(&user.id, id);
                let data: Value = serde_json::from_str(&user.data).expect("document");
                let expected = match id == &popular {
                    true => "asked-often".to_string(),
                    false => format!(
                        "asked-once-{}",
                        others.iter().position(|o| o == id).unwrap_or(99)
                    ),
                };
                assert_eq!(data["userName"], expected.as_str());
                assert!(groups.is_empty());
            }
        }
    }
}

/// `filter=userName eq` from sixteen clients at once: each finds its own user, whatever the
/// case it writes the name in, with the list response's fields; a name no user has finds
/// none; paging and `attributes` are honoured.
fn concurrent_user_name_lookups_each_find_their_own_user(s: &TestServer) {
    let ids: Vec<String> = (0..16)
        .map(|n| {
            id_of(
                &s.create_user(&json!({"userName": format!("Lookup.{n:02}@Example.com"),
            "title": format!("title {n}")})),
            )
        })
        .collect();
    let s = Arc::new(s);
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (s, ids) = (Arc::clone(&s), &ids);
            scope.spawn(move || {
                for round in 0..6 {
                    let n = (client + round) % 16;
                    let name = match round % 2 {
                        0 => format!("lookup.{n:02}@example.com"),
                        _ => format!("LOOKUP.{n:02}@EXAMPLE.COM"),
                    };
                    let list = s
                        .get(&format!(
                            "/Users?filter=userName%20eq%20%22{name}%22&attributes=title"
                        ))
                        .body;
                    assert_eq!(list["totalResults"], 1, "{list}");
                    assert_eq!(list["itemsPerPage"], 1, "{list}");
                    assert_eq!(list["startIndex"], 1, "{list}");
                    let user = &list["Resources"][0];
                    assert_eq!(user["id"], ids[n].as_str(), "{list}");
                    assert_eq!(user["title"], format!("title {n}"), "{list}");
                    assert!(user.get("emails").is_none(), "not asked for: {list}");
                    let none = s.get("/Users?filter=userName%20eq%20%22nobody%22").body;
                    assert_eq!(none["totalResults"], 0, "{none}");
                    assert!(
                        none.get("Resources").is_none_or(|r| r == &json!([])),
                        "{none}"
                    );
                }
            });
        }
    });
    let counted = s
        .get("/Users?filter=userName%20eq%20%22lookup.01@example.com%22&count=0")
        .body;
    assert_eq!(counted["totalResults"], 1, "{counted}");
    assert!(
        counted.get("Resources").is_none_or(|r| r == &json!([])),
        "{counted}"
    );
    let later = s
        .get("/Users?filter=userName%20eq%20%22lookup.01@example.com%22&startIndex=2")
        .body;
    assert_eq!(later["totalResults"], 1, "{later}");
    assert!(
        later.get("Resources").is_none_or(|r| r == &json!([])),
        "{later}"
    );
}

/// Forty users: `page-NN` (externalId `ext-NN`, displayName `Page (NN mod 10)`), titled
/// `team-(NN mod 4)`, each with its own e-mail, and every fifth also with one shared e-mail
/// (in mixed case).
fn forty_paged_users(s: &TestServer) -> Vec<String> {
    (0..40)
        .map(|n| {
            let mut emails = vec![json!({"value": format!("page-{n:02}@example.com")})];
            if n % 5 == 0 {
                let shared = match n % 2 {
                    0 => "shared@example.com",
                    _ => "Shared@Example.COM",
                };
                emails.push(json!({"value": shared, "type": "home"}));
            }
            id_of(&s.create_user(&json!({"userName": format!("page-{n:02}"),
                "externalId": format!("ext-{n:02}"), "displayName": format!("Page {}", n % 10),
                "title": format!("team-{}", n % 4), "emails": emails})))
        })
        .collect()
}

/// Sixteen clients at once ask for first pages of filters that compare one text each (index
/// seeks, read together: userName, externalId, displayName, e-mails; and walks, searched
/// alone: a JSON attribute, `sw`, `not`), each with its own value: every page has the users
/// and the total the same filter finds when searched alone (sorted by creation, which is the
/// unsorted order, so it takes the plain search).
fn concurrent_first_pages_each_get_their_own_page(s: &TestServer) {
    let ids = forty_paged_users(s);
    // Two of the shared e-mail's users in a nested group: their pages carry both groups.
    let inner = id_of(&s.create_group(&json!({"displayName": "paged-inner",
        "members": [{"value": ids[0], "type": "User"}, {"value": ids[5], "type": "User"}]})));
    s.create_group(&json!({"displayName": "paged-outer",
        "members": [{"value": inner, "type": "Group"}]}));
    let filters = [
        "title%20eq%20%22team-1%22&count=3",
        "title%20eq%20%22TEAM-2%22",
        "title%20eq%20%22nobody%22",
        "emails%5Bvalue%20eq%20%22shared@example.com%22%5D&count=5",
        "emails%5Bvalue%20eq%20%22SHARED@example.com%22%5D",
        "emails.value%20eq%20%22page-07@example.com%22",
        "emails%5Btype%20eq%20%22home%22%5D&count=2",
        "userName%20eq%20%22PAGE-03%22&attributes=userName",
        "userName%20sw%20%22page-1%22&count=4&attributes=emails",
        "not%20(title%20eq%20%22team-2%22)&count=7",
        "title%20eq%20%22team-3%22%20and%20emails.value%20pr&count=100",
        "externalId%20eq%20%22ext-17%22",
        "externalId%20eq%20%22EXT-17%22",
        "displayName%20eq%20%22page%204%22&count=3",
        "userName%20eq%20%22page-05%22%20and%20title%20pr",
    ];
    let expected: Vec<Value> = filters
        .iter()
        .map(|f| {
            let alone = s.get(&format!("/Users?filter={f}&sortBy=meta.created"));
            assert_eq!(alone.status, 200, "{f}: {}", alone.body);
            alone.body
        })
        .collect();
    let page_of = |list: &Value| -> (Value, Vec<Value>) {
        let resources = list["Resources"].as_array().cloned().unwrap_or_default();
        (list["totalResults"].clone(), resources)
    };
    // The figures the oracle gives are the ones the users were made to have.
    let totals: Vec<i64> = expected
        .iter()
        .map(|e| e["totalResults"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(totals, [10, 10, 0, 8, 8, 1, 8, 1, 10, 30, 10, 1, 0, 4, 1]);
    assert_eq!(page_of(&expected[0]).1.len(), 3);
    assert_eq!(expected[0]["Resources"][0]["id"], ids[1].as_str());
    assert_eq!(expected[3]["Resources"][4]["id"], ids[20].as_str());
    let groups = expected[3]["Resources"][1]["groups"]
        .as_array()
        .map(Vec::len);
    assert_eq!(groups, Some(2), "{}", expected[3]);
    let s = Arc::new(s);
    std::thread::scope(|scope| {
        for client in 0..16 {
            let (s, expected) = (Arc::clone(&s), &expected);
            scope.spawn(move || {
                for round in 0..filters.len() {
                    let at = (client + round) % filters.len();
                    let list = s.get(&format!("/Users?filter={}", filters[at]));
                    assert_eq!(list.status, 200, "{}: {}", filters[at], list.body);
                    assert_eq!(
                        page_of(&list.body),
                        page_of(&expected[at]),
                        "{}: {}",
                        filters[at],
                        list.body
                    );
                    assert_eq!(list.body["itemsPerPage"], expected[at]["itemsPerPage"]);
                    assert_eq!(list.body["startIndex"], 1);
                }
            });
        }
    });
}

/// First pages queued together, of two shapes and with a value asked for again and again,
/// are answered each with its own page: the users, in creation order, and the total.
fn first_pages_waiting_together_are_each_answered(s: &TestServer) {
    let ids = forty_paged_users(s);
    let by_email = |value: &str, limit: i64| FirstPage {
        cond: Cond::Any {
            collection: Collection::UserEmails,
            cond: Box::new(Cond::Compare {
                expr: Expr::ElementColumn("value_key"),
                op: Op::Eq,
                value: Literal::Text(value.to_string()),
                fold_case: false,
            }),
        },
        probe: String::new(),
        limit,
        with_groups: true,
    };
    let by_title = |value: &str| FirstPage {
        cond: Cond::Compare {
            expr: Expr::Json(vec!["title".into()]),
            op: Op::Eq,
            value: Literal::Text(value.to_string()),
            fold_case: true,
        },
        probe: String::new(),
        limit: 100,
        with_groups: false,
    };
    let mut asked: Vec<(FirstPage, Vec<usize>, i64)> = Vec::new();
    for _ in 0..20 {
        asked.push((by_email("shared@example.com", 3), vec![0, 5, 10], 8));
    }
    for n in 0..40 {
        asked.push((by_email(&format!("page-{n:02}@example.com"), 3), vec![n], 1));
        let team: Vec<usize> = (0..40).filter(|m| m % 4 == n % 4).collect();
        asked.push((by_title(&format!("team-{}", n % 4)), team, 10));
    }
    asked.push((by_title("nobody"), vec![], 0));
    let searches: Vec<FirstPage> = asked
        .iter()
        .map(|(search, _, _)| {
            let mut search = search.clone();
            search.probe = search.cond.take_probe().expect("one text compared");
            search
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let found = runtime.block_on(futures_util::future::join_all(
        searches
            .into_iter()
            .map(|search| user_reads::first_page(&s.db, search)),
    ));
    for ((search, users, total), found) in asked.iter().zip(found) {
        let found = found.expect("read");
        assert_eq!(found.total, *total, "{search:?}");
        let found: Vec<&str> = found.users.iter().map(|(u, _)| u.id.as_str()).collect();
        let expected: Vec<&str> = users.iter().map(|n| ids[*n].as_str()).collect();
        assert_eq!(found, expected, "{search:?}");
    }
}

on_both_backends!(
    concurrent_gets_each_get_their_own_user,
    reads_waiting_together_are_each_answered,
    concurrent_user_name_lookups_each_find_their_own_user,
    concurrent_first_pages_each_get_their_own_page,
    first_pages_waiting_together_are_each_answered,
);

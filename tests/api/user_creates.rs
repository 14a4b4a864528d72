//! Concurrent user creates are written together (group commit); each keeps its own outcome.

use serde_json::json;

use scimgate::storage::user_creates::{write_batch, Job};
use scimgate::storage::users::{EmailKey, UserRecord};

use crate::harness::{id_of, TestServer};
use crate::on_both_backends;

fn job(id: &str, user_name: &str, email: &str) -> Job {
    Job {
        record: UserRecord {
            id: id.to_string(),
            user_name: user_name.to_string(),
            external_id: Some(format!("ext-{id}")),
            display_name: None,
            active: Some(true),
            data: json!({"userName": user_name, "externalId": format!("ext-{id}"),
                "emails": [{"value": email, "type": "work"}]})
            .to_string(),
            emails: vec![EmailKey {
                value: email.to_string(),
                email_type: Some("work".into()),
                primary: false,
            }],
            password: None,
            connection: "default".into(),
        },
        actor: "batch-test".into(),
    }
}

/// A batch holding a taken userName, and two creates of one new userName: the batch as a
/// whole fails, and is written again one create at a time, so exactly the creates that can
/// succeed do, with their e-mail rows and change-log entries, and the others fail alone.
fn a_batch_with_taken_user_names_fails_only_those_creates(s: &TestServer) {
    let together = [
        job("t-1", "together1", "together1@example.com"),
        job("t-2", "together2", "together2@example.com"),
    ];
    let outcomes = write_batch(&s.db, &together);
    let times: Vec<i64> = outcomes
        .into_iter()
        .map(|o| o.expect("created together"))
        .collect();
    assert_eq!(times[0], times[1], "one statement, one point in time");
    let r = s.get("/Users?filter=emails%5Bvalue%20eq%20%22together2%40example.com%22%5D");
    assert_eq!(r.body["Resources"][0]["id"], "t-2", "{}", r.body);
    assert_eq!(r.body["Resources"][0]["externalId"], "ext-t-2");

    let taken = id_of(&s.create_user(&json!({"userName": "taken"})));
    let batch = [
        job("b-1", "fresh1", "fresh1@example.com"),
        job("b-2", "TAKEN", "taken2@example.com"),
        job("b-3", "fresh3", "fresh3@example.com"),
        job("b-4", "fresh1", "again@example.com"),
    ];
    let outcomes = write_batch(&s.db, &batch);
    let failed: Vec<bool> = outcomes
        .iter()
        .map(|o| o.as_ref().is_err_and(|e| e.is_unique_violation()))
        .collect();
    assert_eq!(failed, vec![false, true, false, true], "{outcomes:?}");

    for (name, email, id) in [
        ("fresh1", "fresh1@example.com", "b-1"),
        ("fresh3", "fresh3@example.com", "b-3"),
    ] {
        let r = s.get(&format!("/Users?filter=userName%20eq%20%22{name}%22"));
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
        assert_eq!(r.body["Resources"][0]["id"], id);
        let r = s.get(&format!(
            "/Users?filter=emails%5Bvalue%20eq%20%22{email}%22%5D"
        ));
        assert_eq!(r.body["Resources"][0]["id"], id, "{}", r.body);
    }
    for email in ["taken2@example.com", "again@example.com"] {
        let r = s.get(&format!(
            "/Users?filter=emails%5Bvalue%20eq%20%22{email}%22%5D"
        ));
        assert_eq!(r.body["totalResults"], 0, "{}", r.body);
    }
    assert_eq!(s.get(&format!("/Users/{taken}")).body["userName"], "taken");

    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 100))
            .expect("change log");
    let batch_entries: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e.actor == "batch-test")
        .map(|e| (e.resource_id.as_str(), e.operation.as_str()))
        .collect();
    assert_eq!(
        batch_entries,
        vec![
            ("t-1", "create"),
            ("t-2", "create"),
            ("b-1", "create"),
            ("b-3", "create")
        ]
    );
}

/// Many clients creating at once, a few of them the same userName: every distinct user is
/// created once, exactly one of the same-named creates wins and the others get 409
/// `uniqueness`, and the change log holds one entry per created user.
fn concurrent_creates_each_get_their_own_answer(s: &TestServer) {
    let answers: Vec<(usize, u16, serde_json::Value)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                scope.spawn(move || {
                    (0..10)
                        .map(|n| {
                            let i = worker * 10 + n;
                            let user_name = if i % 20 == 3 {
                                "contested".to_string()
                            } else {
                                format!("burst{i:03}")
                            };
                            let r = s.post(
                                "/Users",
                                &json!({"userName": user_name, "emails": [{"value": format!("{i}@burst.example.com")}]}),
                            );
                            (i, r.status, r.body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    let contested: Vec<u16> = answers
        .iter()
        .filter(|(i, _, _)| i % 20 == 3)
        .map(|(_, status, _)| *status)
        .collect();
    assert_eq!(
        contested.iter().filter(|s| **s == 201).count(),
        1,
        "{contested:?}"
    );
    for (i, status, body) in &answers {
        if i % 20 == 3 {
            if *status != 201 {
                assert_eq!(*status, 409, "{body}");
                assert_eq!(body["scimType"], "uniqueness");
            }
        } else {
            assert_eq!(*status, 201, "{body}");
            let id = id_of(body);
            let r = s.get(&format!("/Users/{id}"));
            assert_eq!(r.body["userName"], format!("burst{i:03}"));
            let r = s.get(&format!(
                "/Users?filter=emails%5Bvalue%20eq%20%22{i}%40burst.example.com%22%5D"
            ));
            assert_eq!(r.body["Resources"][0]["id"], id.as_str());
        }
    }
    let created = answers.iter().filter(|(_, s, _)| *s == 201).count();
    assert_eq!(created, 80 - contested.len() + 1);
    let r = s.get("/Users?count=0");
    assert_eq!(r.body["totalResults"], created);
    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 1000))
            .expect("change log");
    let creates = log
        .iter()
        .filter(|e| e.operation.as_str() == "create")
        .count();
    assert_eq!(creates, created);
}

/// The queue under pressure, without HTTP in between: 32 threads creating at once, every
/// tenth create of each thread contending for a name with the other threads. Every call
/// returns (no create waits forever), each name is taken exactly once, and every user the
/// store reports created is there with its change-log entry.
fn thirty_two_writers_contending(s: &TestServer) {
    let threads = 32;
    let per_thread = 40;
    let outcomes: Vec<(String, bool)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|n| {
                            let name = if n % 10 == 0 {
                                format!("contested{n}")
                            } else {
                                format!("writer{t:02}-{n:02}")
                            };
                            let mut job = job(&format!("q-{t}-{n}"), &name, "q@example.com");
                            job.record.emails.clear();
                            let created = scimgate::storage::user_creates::create(
                                &s.db,
                                &job.record,
                                &job.actor,
                            );
                            if let Err(e) = &created {
                                assert!(e.is_unique_violation(), "{e}");
                            }
                            (name, created.is_ok())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect()
    });
    let mut winners: std::collections::HashMap<&str, usize> = Default::default();
    for (name, created) in &outcomes {
        *winners.entry(name.as_str()).or_default() += usize::from(*created);
    }
    assert!(winners.values().all(|n| *n == 1), "{winners:?}");
    let created = outcomes.iter().filter(|(_, ok)| *ok).count();
    assert_eq!(
        created,
        threads * (per_thread - per_thread / 10) + per_thread / 10
    );
    let r = s.get("/Users?count=0");
    assert_eq!(r.body["totalResults"], created);
    let log =
        s.db.read(|c| scimgate::storage::change_log::since(c, 0, 5000))
            .expect("change log");
    assert_eq!(
        log.iter().filter(|e| e.actor == "batch-test").count(),
        created
    );
}

/// New users' and groups' ids follow their creation order (UUIDv7), so each new row lands at
/// the end of the id indexes rather than on a random page.
fn ids_follow_creation_order(s: &TestServer) {
    let mut ids: Vec<String> = (0..20)
        .map(|i| id_of(&s.create_user(&json!({"userName": format!("ordered{i:02}")}))))
        .collect();
    ids.push(id_of(
        &s.create_group(&json!({"displayName": "ordered group"})),
    ));
    for id in &ids {
        let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7, "{id}");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        sorted, ids,
        "ids sort in the order the resources were created"
    );
}

on_both_backends!(
    ids_follow_creation_order,
    a_batch_with_taken_user_names_fails_only_those_creates,
    concurrent_creates_each_get_their_own_answer,
    thirty_two_writers_contending,
);

/// After a bulk of creates, PostgreSQL's planner statistics describe the user tables as they
/// are (see `storage::statistics`), without waiting for autovacuum's round.
#[test]
fn bulk_creates_refresh_the_planner_statistics_on_postgres() {
    let s = TestServer::start(crate::harness::Backend::Postgres);
    let analyzed = |s: &TestServer| -> (Option<i64>, Option<i64>) {
        #[derive(diesel::QueryableByName)]
        struct Analyzed {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            users: Option<i64>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            emails: Option<i64>,
        }
        let row: Analyzed = s
            .db
            .read(|c| {
                use diesel::RunQueryDsl;
                diesel::sql_query(
                    "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = 'scim_users' \
                     AND relpages > 0 AND reltuples >= 0) AS users, \
                     (SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'scim_user_emails' \
                     AND last_analyze IS NOT NULL) AS emails",
                )
                .get_result(c)
                .map_err(scimgate::storage::StoreError::from)
            })
            .expect("statistics");
        (row.users, row.emails)
    };
    assert_eq!(analyzed(&s).1, None, "a new database was never analyzed");

    let writers = 8;
    let per_writer = 130;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let s = &s;
            scope.spawn(move || {
                for n in 0..per_writer {
                    let name = format!("bulk{w}-{n}");
                    let created = scimgate::storage::user_creates::create(
                        &s.db,
                        &job(&name, &name, &format!("{name}@example.com")).record,
                        "bulk-test",
                    );
                    assert!(created.is_ok(), "{created:?}");
                }
            });
        }
    });

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let (Some(users), Some(_)) = analyzed(&s) {
            assert!(
                users >= 1_000,
                "the analysis saw the created users: {users}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the user tables were not analyzed after {} creates",
            writers * per_writer
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

//! Lookups by value, many at once. Concurrent lookups on one target queue here; whoever holds
//! the turn asks the target for everything queued in one request (`(|(uid=a)(uid=b)...)`,
//! `userName eq "a" or userName eq "b"`) and hands each caller its answer. A backlog of orders
//! then costs the target one request per batch instead of one per order, and a lone lookup is
//! still a single request.
//!
//! The engine also looks ahead: the values a claimed batch of orders will look up are asked
//! for together when the batch is claimed, and each lookup then takes its answer from memory
//! once (a later lookup of the same value asks the target again).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::connectors::ConnectorError;

type Answer<T> = Result<Vec<T>, ConnectorError>;

struct Request<T> {
    value: String,
    reply: oneshot::Sender<Answer<T>>,
}

/// The queue of one kind of lookup (users by name, groups by name, objects by id); `T` is
/// what a hit yields (an id, a DN, a whole object).
pub struct Lookups<T> {
    pending: std::sync::Mutex<Vec<Request<T>>>,
    turn: tokio::sync::Mutex<()>,
    /// Most values one request asks for.
    max_batch: usize,
    /// Answers found ahead of their lookup, by folded value, with when they were found.
    ahead: std::sync::Mutex<HashMap<String, (Instant, Vec<T>)>>,
}

/// How long an answer found ahead stays usable: a batch's orders are delivered within
/// seconds, and an answer older than that is asked for again.
const AHEAD_FOR: Duration = Duration::from_secs(10);

/// How the directory's values compare with a looked-up value: case and runs of spaces do not
/// count (the matching rules of the attributes used for correlation ignore them).
pub fn same_value(a: &str, b: &str) -> bool {
    fold(a) == fold(b)
}

fn fold(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl<T: Clone> Lookups<T> {
    pub fn new(max_batch: usize) -> Lookups<T> {
        Lookups {
            pending: std::sync::Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            max_batch: max_batch.max(1),
            ahead: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Finds the answers for `values` now, `max_batch` values a request, and keeps each for
    /// the one [`Lookups::find`] of its value to come. A failed search keeps nothing: those
    /// lookups ask the target themselves.
    pub async fn look_ahead<S, F>(&self, values: Vec<String>, search: S)
    where
        S: Fn(Vec<String>) -> F,
        F: std::future::Future<Output = Result<Vec<(T, Vec<String>)>, ConnectorError>>,
    {
        let mut values = values;
        values.sort();
        values.dedup();
        for chunk in values.chunks(self.max_batch) {
            let found = {
                let _turn = self.turn.lock().await;
                search(chunk.to_vec()).await
            };
            let Ok(entries) = found else { return };
            let now = Instant::now();
            let Ok(mut ahead) = self.ahead.lock() else {
                return;
            };
            ahead.retain(|_, (at, _)| now.duration_since(*at) < AHEAD_FOR);
            for value in chunk {
                let hits = entries
                    .iter()
                    .filter(|(_, held)| held.iter().any(|v| same_value(v, value)))
                    .map(|(hit, _)| hit.clone())
                    .collect();
                ahead.insert(fold(value), (now, hits));
            }
        }
    }

    /// The answer found ahead for `value`, taken (it serves one lookup).
    fn take_ahead(&self, value: &str) -> Option<Vec<T>> {
        let mut ahead = self.ahead.lock().ok()?;
        if ahead.is_empty() {
            return None;
        }
        let (at, hits) = ahead.remove(&fold(value))?;
        (at.elapsed() < AHEAD_FOR).then_some(hits)
    }

    /// Queues `value`, then waits for its answer, serving the queue when its turn comes.
    /// `search` finds the hits for any of the values: each with the values it holds.
    pub async fn find<S, F>(&self, value: &str, search: S) -> Answer<T>
    where
        S: Fn(Vec<String>) -> F,
        F: std::future::Future<Output = Result<Vec<(T, Vec<String>)>, ConnectorError>>,
    {
        if let Some(found) = self.take_ahead(value) {
            return Ok(found);
        }
        let (reply, mut answer) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(Request {
                value: value.to_string(),
                reply,
            });
        }
        let _turn = self.turn.lock().await;
        loop {
            if let Ok(done) = answer.try_recv() {
                return done;
            }
            let batch: Vec<Request<T>> = match self.pending.lock() {
                Ok(mut pending) => {
                    let n = pending.len().min(self.max_batch);
                    pending.drain(..n).collect()
                }
                Err(_) => Vec::new(),
            };
            if batch.is_empty() {
                return Err(ConnectorError::Retryable {
                    message: "a correlation lookup was lost".into(),
                    status: None,
                    retry_after: None,
                });
            }
            let mut values: Vec<String> = batch.iter().map(|r| r.value.clone()).collect();
            values.sort();
            values.dedup();
            match search(values).await {
                Ok(entries) => {
                    for request in batch {
                        let found = entries
                            .iter()
                            .filter(|(_, held)| held.iter().any(|v| same_value(v, &request.value)))
                            .map(|(hit, _)| hit.clone())
                            .collect();
                        let _ = request.reply.send(Ok(found));
                    }
                }
                Err(e) => {
                    for request in batch {
                        let _ = request.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_lookups_share_searches_and_each_gets_its_own_answer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let lookups = Arc::new(Lookups::<String>::new(200));
        let searches = Arc::new(AtomicUsize::new(0));
        let answers = runtime.block_on(async {
            let tasks = (0..50).map(|i| {
                let (lookups, searches) = (lookups.clone(), searches.clone());
                async move {
                    lookups
                        .find(&format!("User{i}"), |values: Vec<String>| {
                            let searches = searches.clone();
                            async move {
                                searches.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                                // The directory holds every even user, in lower case.
                                Ok(values
                                    .iter()
                                    .filter_map(|v| {
                                        v.trim_start_matches("User").parse::<u32>().ok()
                                    })
                                    .filter(|n| n % 2 == 0)
                                    .map(|n| {
                                        (format!("uid=user{n},dc=x"), vec![format!("user{n}")])
                                    })
                                    .collect())
                            }
                        })
                        .await
                }
            });
            futures_util::future::join_all(tasks).await
        });
        for (i, answer) in answers.into_iter().enumerate() {
            let found = answer.expect("answered");
            if i % 2 == 0 {
                assert_eq!(found, vec![format!("uid=user{i},dc=x")]);
            } else {
                assert!(found.is_empty());
            }
        }
        let searches = searches.load(Ordering::SeqCst);
        assert!(searches < 10, "50 lookups took {searches} searches");
        assert!(same_value("Ann  Lee", "ann lee"));
    }

    #[test]
    fn answers_found_ahead_serve_one_lookup_each() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let lookups = Lookups::<String>::new(50);
        let searches = AtomicUsize::new(0);
        // The directory holds user0..user99 under their names in upper case.
        let search = |values: Vec<String>| {
            searches.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(values
                    .iter()
                    .filter(|v| {
                        v.trim_start_matches("user")
                            .parse::<u32>()
                            .is_ok_and(|n| n < 100)
                    })
                    .map(|v| (format!("id-{v}"), vec![v.to_uppercase()]))
                    .collect())
            }
        };
        runtime.block_on(async {
            let names: Vec<String> = (0..120).map(|i| format!("user{i}")).collect();
            lookups.look_ahead(names, &search).await;
            assert_eq!(searches.load(Ordering::SeqCst), 3, "120 names, 50 a search");
            for i in 0..120 {
                let found = lookups
                    .find(&format!("User{i}"), &search)
                    .await
                    .expect("found");
                if i < 100 {
                    assert_eq!(found, vec![format!("id-user{i}")]);
                } else {
                    assert!(found.is_empty());
                }
            }
            assert_eq!(searches.load(Ordering::SeqCst), 3, "answered from memory");
            // Each answer served its lookup: asking again goes to the directory.
            let again = lookups.find("user7", &search).await.expect("found");
            assert_eq!(again, vec!["id-user7".to_string()]);
            assert_eq!(searches.load(Ordering::SeqCst), 4);
        });
    }
}

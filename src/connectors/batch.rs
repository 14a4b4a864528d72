//! Lookups by value, many at once. Concurrent lookups on one target queue here; whoever holds
//! the turn asks the target for everything queued in one request (`(|(uid=a)(uid=b)...)`,
//! `userName eq "a" or userName eq "b"`) and hands each caller its answer. A backlog of orders
//! then costs the target one request per batch instead of one per order, and a lone lookup is
//! still a single request.

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
}

/// How the directory's values compare with a looked-up value: case and runs of spaces do not
/// count (the matching rules of the attributes used for correlation ignore them).
pub fn same_value(a: &str, b: &str) -> bool {
    let fold = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    fold(a) == fold(b)
}

impl<T: Clone> Lookups<T> {
    pub fn new(max_batch: usize) -> Lookups<T> {
        Lookups {
            pending: std::sync::Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            max_batch: max_batch.max(1),
        }
    }

    /// Queues `value`, then waits for its answer, serving the queue when its turn comes.
    /// `search` finds the hits for any of the values: each with the values it holds.
    pub async fn find<S, F>(&self, value: &str, search: S) -> Answer<T>
    where
        S: Fn(Vec<String>) -> F,
        F: std::future::Future<Output = Result<Vec<(T, Vec<String>)>, ConnectorError>>,
    {
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
}

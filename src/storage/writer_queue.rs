//! The queue in front of a writer thread (user creates, and the other writes of one
//! resource): callers queue their work; one writer thread, started by the first item and
//! ending after a while without any, takes what is waiting in batches.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

struct Pending<T> {
    items: VecDeque<T>,
    /// Whether a writer thread is running (writing, or waiting for work).
    writer: bool,
}

pub(super) struct WriterQueue<T> {
    pending: Mutex<Pending<T>>,
    /// Signalled when an item is queued, for a writer waiting for work.
    queued: Condvar,
}

impl<T> Default for WriterQueue<T> {
    fn default() -> Self {
        WriterQueue {
            pending: Mutex::new(Pending {
                items: VecDeque::new(),
                writer: false,
            }),
            queued: Condvar::new(),
        }
    }
}

impl<T> WriterQueue<T> {
    fn lock(&self) -> MutexGuard<'_, Pending<T>> {
        // A poisoned lock only means a writer panicked; the queue itself stays consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an item; true when no writer is running, so the caller is to start one.
    pub fn push(&self, item: T) -> bool {
        let start_writer = {
            let mut pending = self.lock();
            pending.items.push_back(item);
            !std::mem::replace(&mut pending.writer, true)
        };
        if !start_writer {
            self.queued.notify_one();
        }
        start_writer
    }

    /// For the writer: up to `max` items in arrival order, once there are any; `None` when
    /// none came for `idle`, and the writer is then marked ended.
    pub fn next_batch(&self, max: usize, idle: Duration) -> Option<Vec<T>> {
        let mut pending = self.lock();
        while pending.items.is_empty() {
            let (woken, wait) = self
                .queued
                .wait_timeout(pending, idle)
                .unwrap_or_else(|p| p.into_inner());
            pending = woken;
            if wait.timed_out() && pending.items.is_empty() {
                pending.writer = false;
                return None;
            }
        }
        let take = pending.items.len().min(max);
        Some(pending.items.drain(..take).collect())
    }

    /// Every item waiting now.
    pub fn take_all(&self) -> Vec<T> {
        self.lock().items.drain(..).collect()
    }

    /// Every item waiting now, the writer marked ended (it could not start, or stopped).
    pub fn abandon(&self) -> Vec<T> {
        let mut pending = self.lock();
        pending.writer = false;
        pending.items.drain(..).collect()
    }

    /// Whether a writer thread is running.
    #[cfg(test)]
    pub fn writer_running(&self) -> bool {
        self.lock().writer
    }
}

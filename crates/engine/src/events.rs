//! The in-process event bus (SPEC section 8).
//!
//! `publish` hands each event to every subscriber in priority order with a non-blocking send.
//! A subscriber whose bounded queue is full misses events; the next one it receives is preceded
//! by a `Lagged { missed }` marker. The publisher (the supervisor) therefore never waits on a
//! subscriber, however slow or stuck.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gitvisor_protocol::{Event, EventKind};
use tokio::sync::mpsc;

/// Subscribers are served in this order (lowest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    CrashReporter = 0,
    Maintenance = 1,
    Timers = 6,
    Propagation = 7,
    Timeline = 8,
    Tray = 2,
    Window = 3,
    Notifications = 4,
    Socket = 5,
}

struct Subscriber {
    priority: Priority,
    id: u64,
    tx: mpsc::Sender<Event>,
    missed: u64,
    /// The events it takes; the others are never queued for it (nor is it woken for them).
    wants: fn(&EventKind) -> bool,
}

/// Every event: for subscribers that pass them on (the socket, the window, the tray).
pub fn everything(_: &EventKind) -> bool {
    true
}

/// Changes of a service's state only.
pub fn state_changes(kind: &EventKind) -> bool {
    matches!(kind, EventKind::State { .. })
}

#[derive(Default)]
struct Inner {
    subscribers: Vec<Subscriber>,
    next_id: u64,
}

#[derive(Clone, Default)]
pub struct EventBus {
    inner: Arc<Mutex<Inner>>,
    seq: Arc<AtomicU64>,
}

pub struct Subscription {
    pub rx: mpsc::Receiver<Event>,
    id: u64,
    bus: EventBus,
}

impl Subscription {
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut inner = self.bus.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.subscribers.retain(|s| s.id != self.id);
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn subscribe(&self, priority: Priority, capacity: usize) -> Subscription {
        self.subscribe_to(priority, capacity, everything)
    }

    /// A subscription to the events `wants` takes: a restart publishes four events, and a
    /// subscriber woken for each of them costs the restart more than the rest of its
    /// bookkeeping. Markers of missed events still come (they say that some of these were
    /// missed).
    pub fn subscribe_to(
        &self,
        priority: Priority,
        capacity: usize,
        wants: fn(&EventKind) -> bool,
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(2));
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let id = inner.next_id;
        inner.next_id += 1;
        let at = inner.subscribers.partition_point(|s| s.priority <= priority);
        inner.subscribers.insert(at, Subscriber { priority, id, tx, missed: 0, wants });
        Subscription { rx, id, bus: self.clone() }
    }

    pub fn publish(&self, kind: EventKind) -> Event {
        let event =
            Event { seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1, at_ms: crate::time::now_ms(), kind };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.subscribers.retain_mut(|s| !(s.wants)(&event.kind) || deliver(s, &event));
        event
    }
}

/// Returns false when the subscriber is gone.
fn deliver(s: &mut Subscriber, event: &Event) -> bool {
    if s.missed > 0 {
        // The marker needs one slot and the event another; keep counting until both fit.
        match s.tx.try_reserve_many(2) {
            Ok(mut permits) => {
                let lag = Event {
                    seq: event.seq,
                    at_ms: event.at_ms,
                    kind: EventKind::Lagged { missed: s.missed },
                };
                permits.next().expect("two permits").send(lag);
                permits.next().expect("two permits").send(event.clone());
                s.missed = 0;
                return true;
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                s.missed += 1;
                return true;
            }
            Err(mpsc::error::TrySendError::Closed(())) => return false,
        }
    }
    match s.tx.try_send(event.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            s.missed += 1;
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopping() -> EventKind {
        EventKind::EngineStopping
    }

    /// Records, in order, which waiting subscriber an event reached: a send wakes the
    /// receiver's waker at once, so the wake order is the delivery order.
    struct Woken {
        priority: Priority,
        log: Arc<Mutex<Vec<Priority>>>,
    }

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.log.lock().unwrap().push(self.priority);
        }
    }

    #[test]
    fn subscribers_receive_in_priority_order() {
        use Priority::*;
        let bus = EventBus::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Subscribed out of order, each waiting for its next event.
        let mut subs: Vec<Subscription> = [Socket, CrashReporter, Window, Tray, Notifications, Maintenance]
            .into_iter()
            .map(|p| bus.subscribe(p, 8))
            .collect();
        for (sub, p) in subs.iter_mut().zip([Socket, CrashReporter, Window, Tray, Notifications, Maintenance])
        {
            let waker = std::task::Waker::from(Arc::new(Woken { priority: p, log: log.clone() }));
            assert!(sub.rx.poll_recv(&mut std::task::Context::from_waker(&waker)).is_pending());
        }
        bus.publish(stopping());
        assert_eq!(*log.lock().unwrap(), [CrashReporter, Maintenance, Tray, Window, Notifications, Socket]);
        for sub in &mut subs {
            assert_eq!(sub.rx.try_recv().unwrap().seq, 1, "each got the event");
        }
    }

    #[tokio::test]
    async fn a_full_subscriber_gets_a_lagged_marker_and_never_blocks_the_publisher() {
        let bus = EventBus::new();
        let mut slow = bus.subscribe(Priority::Socket, 2);
        let mut fast = bus.subscribe(Priority::Tray, 1000);
        for _ in 0..10 {
            bus.publish(stopping());
        }
        // The slow one holds the first two; eight were missed.
        assert_eq!(slow.recv().await.unwrap().seq, 1);
        assert_eq!(slow.recv().await.unwrap().seq, 2);
        bus.publish(stopping());
        let lag = slow.recv().await.unwrap();
        assert_eq!(lag.kind, EventKind::Lagged { missed: 8 });
        assert_eq!(slow.recv().await.unwrap().seq, 11);
        for seq in 1..=11 {
            assert_eq!(fast.recv().await.unwrap().seq, seq);
        }
    }

    #[tokio::test]
    async fn a_filtered_subscriber_gets_only_what_it_wants_and_its_own_lag() {
        let bus = EventBus::new();
        let mut states = bus.subscribe_to(Priority::Timers, 2, state_changes);
        let state = || EventKind::State {
            service: "s".into(),
            from: gitvisor_protocol::ServiceState::Starting,
            to: gitvisor_protocol::ServiceState::Running,
            pid: Some(7),
            reason: None,
        };
        // Other events neither fill its queue nor wake it.
        for _ in 0..10 {
            bus.publish(stopping());
        }
        assert!(states.rx.try_recv().is_err());
        for _ in 0..3 {
            bus.publish(state());
        }
        bus.publish(stopping());
        assert_eq!(states.recv().await.unwrap().kind, state());
        assert_eq!(states.recv().await.unwrap().kind, state());
        bus.publish(state());
        // Of the state changes, one did not fit: that is what its marker counts.
        assert_eq!(states.recv().await.unwrap().kind, EventKind::Lagged { missed: 1 });
        assert_eq!(states.recv().await.unwrap().kind, state());
        assert!(states.rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn dropped_subscriptions_are_removed() {
        let bus = EventBus::new();
        let sub = bus.subscribe(Priority::Window, 4);
        drop(sub);
        bus.publish(stopping());
        assert!(bus.inner.lock().unwrap().subscribers.is_empty());
    }
}

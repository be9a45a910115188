//! The bounded in-memory store of captures: TTL, count cap and byte cap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::blobs::BlobPool;
use crate::capture::{Capture, EntryKind};

/// Default time a capture is kept: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default maximum number of captures kept.
pub const DEFAULT_MAX_CAPTURES: usize = 100;
/// Default maximum bytes of all captures together: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// The store's caps (`[capture] ttl`, `max_captures`, `max_bytes` in `config.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    pub ttl: Duration,
    pub max_captures: usize,
    pub max_bytes: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { ttl: DEFAULT_TTL, max_captures: DEFAULT_MAX_CAPTURES, max_bytes: DEFAULT_MAX_BYTES }
    }
}

impl StoreSettings {
    /// Replaces each zero value (which would evict every capture at once) with its default,
    /// with one warning line for each.
    pub fn sanitized(self) -> (StoreSettings, Vec<String>) {
        let defaults = StoreSettings::default();
        let mut settings = self;
        let mut warnings = Vec::new();
        if settings.ttl.is_zero() {
            settings.ttl = defaults.ttl;
            warnings.push("capture ttl must be more than 0; using 24h".to_owned());
        }
        if settings.max_captures == 0 {
            settings.max_captures = defaults.max_captures;
            warnings
                .push(format!("capture max_captures must be at least 1; using {}", defaults.max_captures));
        }
        if settings.max_bytes == 0 {
            settings.max_bytes = defaults.max_bytes;
            warnings.push("capture max_bytes must be more than 0; using 1G".to_owned());
        }
        (settings, warnings)
    }
}

/// The key of a capture in a [`Store`]; increasing in insertion order, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CaptureId(pub u64);

impl fmt::Display for CaptureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Captures by id, oldest first, with their memory counted once per distinct blob.
///
/// Caps are enforced by [`Store::add`] and [`Store::sweep`]: expired captures go first, then
/// the oldest until the store is within `max_captures` and `max_bytes`. [`Store::add`] never
/// evicts the capture it adds: a capture larger than `max_bytes` on its own is kept (with
/// every other capture evicted) until the next [`Store::sweep`], which evicts it like any
/// other.
///
/// [`Store::total_bytes`] counts what the store holds; a caller still holding an
/// `Arc<Capture>` from [`Store::get`] keeps its blobs alive after eviction without them being
/// counted here.
pub struct Store {
    settings: StoreSettings,
    blobs: BlobPool,
    captures: BTreeMap<CaptureId, Stored>,
    /// Per distinct blob held: its size and how many stored captures hold it.
    held: HashMap<[u8; 32], (u64, usize)>,
    total_bytes: u64,
    next_id: u64,
}

struct Stored {
    capture: Arc<Capture>,
    added: Instant,
}

impl Store {
    pub fn new(settings: StoreSettings) -> Store {
        Store {
            settings,
            blobs: BlobPool::default(),
            captures: BTreeMap::new(),
            held: HashMap::new(),
            total_bytes: 0,
            next_id: 1,
        }
    }

    pub fn settings(&self) -> StoreSettings {
        self.settings
    }

    /// The pool to pass to [`crate::capture_dir`] so captures of this store share bytes.
    pub fn blobs(&self) -> &BlobPool {
        &self.blobs
    }

    /// Stores `capture`, then enforces the caps; returns its id and how many older captures
    /// were evicted to make room.
    pub fn add(&mut self, capture: Capture, now: Instant) -> (CaptureId, usize) {
        let id = CaptureId(self.next_id);
        self.next_id += 1;
        for (sha256, size) in distinct_blobs(&capture) {
            let held = self.held.entry(sha256).or_insert((size, 0));
            if held.1 == 0 {
                self.total_bytes += size;
            }
            held.1 += 1;
        }
        let stored = Stored { capture: Arc::new(capture), added: now };
        self.captures.insert(id, stored);
        let evicted = self.enforce(now, Some(id));
        (id, evicted)
    }

    pub fn get(&self, id: CaptureId) -> Option<Arc<Capture>> {
        self.captures.get(&id).map(|s| Arc::clone(&s.capture))
    }

    /// Drops one capture; false if it was not stored.
    pub fn release(&mut self, id: CaptureId) -> bool {
        self.remove(id)
    }

    /// Evicts expired captures, then the oldest until within the caps; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        self.enforce(now, None)
    }

    pub fn len(&self) -> usize {
        self.captures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.captures.is_empty()
    }

    /// Bytes of the distinct blobs held by stored captures.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Ids of the stored captures, oldest first.
    pub fn ids(&self) -> Vec<CaptureId> {
        self.captures.keys().copied().collect()
    }

    fn enforce(&mut self, now: Instant, keep: Option<CaptureId>) -> usize {
        let ttl = self.settings.ttl;
        let expired: Vec<CaptureId> = self
            .captures
            .iter()
            .filter(|(id, s)| Some(**id) != keep && now.saturating_duration_since(s.added) >= ttl)
            .map(|(id, _)| *id)
            .collect();
        let mut evicted = 0;
        for id in expired {
            evicted += usize::from(self.remove(id));
        }
        while self.over_caps() {
            let oldest = self.captures.keys().copied().find(|id| Some(*id) != keep);
            match oldest {
                Some(id) => evicted += usize::from(self.remove(id)),
                None => break,
            }
        }
        evicted
    }

    fn over_caps(&self) -> bool {
        self.captures.len() > self.settings.max_captures || self.total_bytes > self.settings.max_bytes
    }

    fn remove(&mut self, id: CaptureId) -> bool {
        let Some(stored) = self.captures.remove(&id) else {
            return false;
        };
        for (sha256, _) in distinct_blobs(&stored.capture) {
            if let Some(held) = self.held.get_mut(&sha256) {
                held.1 -= 1;
                if held.1 == 0 {
                    self.total_bytes -= held.0;
                    self.held.remove(&sha256);
                }
            }
        }
        true
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("settings", &self.settings)
            .field("captures", &self.captures.len())
            .field("total_bytes", &self.total_bytes)
            .finish()
    }
}

/// Each distinct blob of a capture once, with its size.
fn distinct_blobs(capture: &Capture) -> Vec<([u8; 32], u64)> {
    let mut seen = HashSet::new();
    capture
        .entries
        .iter()
        .filter_map(|entry| match &entry.kind {
            // Only bytes held count against the store's cap.
            EntryKind::File { sha256, size, content: Some(_), .. } => {
                seen.insert(*sha256).then_some((*sha256, *size))
            }
            _ => None,
        })
        .collect()
}

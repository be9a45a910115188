//! Content-addressed sharing of file bytes between captures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sha2::{Digest, Sha256};

/// Interns file contents by SHA-256 so that an unchanged file captured again shares its bytes
/// with every earlier capture that still holds them.
///
/// The pool only holds weak references: a blob lives as long as some capture holds it. Dead
/// entries are pruned on [`BlobPool::intern`] once the map has grown to twice its size at the
/// last prune, so the map stays within a constant factor of the live blobs. Clones share one
/// pool.
#[derive(Clone, Default)]
pub struct BlobPool {
    inner: Arc<Mutex<Pool>>,
}

#[derive(Default)]
struct Pool {
    blobs: HashMap<[u8; 32], Weak<[u8]>>,
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 64;

impl BlobPool {
    /// Returns the shared bytes for `bytes` and their SHA-256: the existing blob when the same
    /// content is still alive, otherwise a new one.
    pub fn intern(&self, bytes: Vec<u8>) -> (Arc<[u8]>, [u8; 32]) {
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let mut pool = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = pool.blobs.get(&sha256).and_then(Weak::upgrade) {
            return (existing, sha256);
        }
        let blob: Arc<[u8]> = Arc::from(bytes);
        pool.blobs.insert(sha256, Arc::downgrade(&blob));
        if pool.blobs.len() >= pool.prune_at {
            pool.blobs.retain(|_, weak| weak.strong_count() > 0);
            pool.prune_at = (pool.blobs.len() * 2).max(MIN_PRUNE_AT);
        }
        (blob, sha256)
    }

    /// How many distinct blobs are alive (held by at least one capture).
    pub fn len(&self) -> usize {
        let pool = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        pool.blobs.values().filter(|weak| weak.strong_count() > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for BlobPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobPool").field("live", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_shares_one_blob() {
        let pool = BlobPool::default();
        let (a, sha_a) = pool.intern(b"hello".to_vec());
        let (b, sha_b) = pool.intern(b"hello".to_vec());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(sha_a, sha_b);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn dead_blobs_are_not_counted_and_get_pruned() {
        let pool = BlobPool::default();
        for i in 0..1000u32 {
            drop(pool.intern(i.to_le_bytes().to_vec()));
        }
        assert_eq!(pool.len(), 0);
        let map_size = pool.inner.lock().unwrap().blobs.len();
        assert!(map_size <= MIN_PRUNE_AT, "map kept {map_size} dead entries");
    }

    #[test]
    fn a_dropped_blob_is_recreated() {
        let pool = BlobPool::default();
        let (a, _) = pool.intern(b"x".to_vec());
        drop(a);
        let (b, _) = pool.intern(b"x".to_vec());
        assert_eq!(&*b, b"x");
        assert_eq!(pool.len(), 1);
    }
}

//! Test-only injection points, to make races (a file vanishing or being swapped between the
//! directory read and the open) happen on demand.

use std::cell::RefCell;
use std::path::Path;

type Hook = Box<dyn FnMut(&Path)>;

thread_local! {
    static BEFORE_OPEN: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Runs `hook` with each path (relative to the root) just before it is opened, for every
/// capture this thread takes until the returned guard is dropped.
pub(crate) fn set_before_open(hook: impl FnMut(&Path) + 'static) -> HookGuard {
    BEFORE_OPEN.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));
    HookGuard
}

pub(crate) struct HookGuard;

impl Drop for HookGuard {
    fn drop(&mut self) {
        BEFORE_OPEN.with(|slot| *slot.borrow_mut() = None);
    }
}

pub(crate) fn before_open(path: &Path) {
    BEFORE_OPEN.with(|slot| {
        if let Some(hook) = slot.borrow_mut().as_mut() {
            hook(path);
        }
    });
}

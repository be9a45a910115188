//! Test-only injection points, to make races (a file vanishing or being swapped between the
//! directory read and the open, or changing size between its `fstat` and its read) happen on
//! demand.

use std::cell::RefCell;
use std::path::Path;
use std::thread::LocalKey;

type Hook = Box<dyn FnMut(&Path)>;
type Slot = LocalKey<RefCell<Option<Hook>>>;

thread_local! {
    static BEFORE_OPEN: RefCell<Option<Hook>> = const { RefCell::new(None) };
    static BEFORE_READ: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Runs `hook` with each path (relative to the root) just before it is opened, for every
/// capture this thread takes until the returned guard is dropped.
pub(crate) fn set_before_open(hook: impl FnMut(&Path) + 'static) -> HookGuard {
    set(&BEFORE_OPEN, hook)
}

/// Runs `hook` with each regular file's path once it is open and its `fstat` taken, before
/// anything is read from it.
pub(crate) fn set_before_read(hook: impl FnMut(&Path) + 'static) -> HookGuard {
    set(&BEFORE_READ, hook)
}

fn set(slot: &'static Slot, hook: impl FnMut(&Path) + 'static) -> HookGuard {
    slot.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));
    HookGuard(slot)
}

pub(crate) struct HookGuard(&'static Slot);

impl Drop for HookGuard {
    fn drop(&mut self) {
        self.0.with(|slot| *slot.borrow_mut() = None);
    }
}

pub(crate) fn before_open(path: &Path) {
    run(&BEFORE_OPEN, path);
}

pub(crate) fn before_read(path: &Path) {
    run(&BEFORE_READ, path);
}

fn run(slot: &'static Slot, path: &Path) {
    slot.with(|slot| {
        if let Some(hook) = slot.borrow_mut().as_mut() {
            hook(path);
        }
    });
}

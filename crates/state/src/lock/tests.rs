use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use super::*;
use crate::test_support::{ready_then_wait_for_parent, TestChild};

const CHILD_ENV: &str = "GITVISOR_STATE_TEST_LOCK_DIR";

fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Drives a future that never really waits (every `Pending` here is a test's own yield).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(output) = poll_once(fut.as_mut()) {
            return output;
        }
    }
}

/// Returns `Pending` once, like an op waiting on I/O.
#[derive(Default)]
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

fn setup() -> (tempfile::TempDir, Locks) {
    let dir = tempfile::tempdir().unwrap();
    let locks = Locks::local(dir.path().join("locks"));
    (dir, locks)
}

/// Asserts `key` is free both in this process and in its lock file (a second `Locks` on the
/// same directory has its own table, so only the file lock could stop it).
fn assert_free_in(locks: &Locks, dir: &tempfile::TempDir, key: &str) {
    assert_eq!(locks.current(), []);
    assert_eq!(locks.with_lock_sync(key, "check", || 1), Ok(1));
    let other = Locks::local(dir.path().join("locks"));
    assert_eq!(other.with_lock_sync(key, "check", || 2), Ok(2));
}

#[test]
fn the_same_key_twice_is_in_progress_naming_the_running_op() {
    let (_dir, locks) = setup();
    let inner =
        locks.with_lock_sync("web", "stop", || locks.with_lock_sync("web", "start", || "ran")).unwrap();
    let error = inner.unwrap_err();
    assert_eq!(error, LockError::InProgress { key: "web".into(), op: "stop".into() });
    assert_eq!(error.to_string(), "stop in progress on web");
}

#[test]
fn clones_share_what_is_in_progress() {
    let (_dir, locks) = setup();
    let clone = locks.clone();
    locks
        .with_lock_sync("web", "restart", || {
            assert_eq!(clone.current(), [("web".into(), "restart".into())]);
            assert!(matches!(clone.with_lock_sync("web", "stop", || ()), Err(LockError::InProgress { .. })));
        })
        .unwrap();
}

#[test]
fn different_keys_do_not_block_each_other() {
    let (_dir, locks) = setup();
    let both = locks
        .with_lock_sync("web", "stop", || locks.with_lock_sync("db", "start", || locks.current()))
        .unwrap()
        .unwrap();
    assert_eq!(both, [("db".to_owned(), "start".to_owned()), ("web".to_owned(), "stop".to_owned())]);
}

#[test]
fn keys_with_separators_lock_distinct_files() {
    let (dir, locks) = setup();
    locks
        .with_lock_sync("me@host:unit/web", "stop", || {
            assert_eq!(locks.with_lock_sync("me@host:unit", "stop", || 1), Ok(1));
            let names: Vec<String> = std::fs::read_dir(dir.path().join("locks"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(names.contains(&"me%40host%3Aunit%2Fweb.lock".to_owned()));
        })
        .unwrap();
}

#[test]
fn released_after_ok() {
    let (dir, locks) = setup();
    assert_eq!(locks.with_lock_sync("web", "start", || 7), Ok(7));
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn released_after_an_error_value() {
    let (dir, locks) = setup();
    let result: Result<Result<(), String>, LockError> =
        locks.with_lock_sync("web", "start", || Err("exec failed".to_owned()));
    assert_eq!(result, Ok(Err("exec failed".to_owned())));
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn released_after_a_panic() {
    let (dir, locks) = setup();
    let unwound =
        catch_unwind(AssertUnwindSafe(|| locks.with_lock_sync("web", "start", || panic!("op blew up"))));
    assert!(unwound.is_err());
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn async_op_holds_the_lock_across_awaits() {
    let (dir, locks) = setup();
    let mut op = pin!(locks.with_lock("web", "stop", async {
        YieldOnce::default().await;
        "stopped"
    }));
    assert!(poll_once(op.as_mut()).is_pending());
    assert_eq!(locks.current(), [("web".into(), "stop".into())]);
    assert!(matches!(locks.with_lock_sync("web", "start", || ()), Err(LockError::InProgress { .. })));
    assert_eq!(poll_once(op.as_mut()), Poll::Ready(Ok("stopped")));
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn async_released_after_an_error_value() {
    let (dir, locks) = setup();
    let result = block_on(locks.with_lock("web", "start", async {
        YieldOnce::default().await;
        Err::<(), _>("exec failed")
    }));
    assert_eq!(result, Ok(Err("exec failed")));
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn async_released_after_a_panic() {
    let (dir, locks) = setup();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        block_on(locks.with_lock("web", "start", async {
            YieldOnce::default().await;
            panic!("op blew up")
        }))
    }));
    assert!(unwound.is_err());
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn async_released_when_dropped_mid_way() {
    let (dir, locks) = setup();
    {
        let mut op = Box::pin(locks.with_lock("web", "stop", async {
            YieldOnce::default().await;
            unreachable!("the op is cancelled before it resumes")
        }));
        assert!(poll_once(op.as_mut()).is_pending());
        assert_eq!(locks.current().len(), 1);
    }
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn async_refusal_does_not_run_the_op() {
    let (_dir, locks) = setup();
    locks
        .with_lock_sync("web", "stop", || {
            let result =
                block_on(locks.with_lock("web", "start", async { unreachable!("refused ops never run") }));
            assert!(matches!(result, Err(LockError::InProgress { .. })));
        })
        .unwrap();
}

#[test]
fn the_async_op_is_send_when_its_future_is() {
    fn assert_send<T: Send>(_: &T) {}
    let (_dir, locks) = setup();
    let op = locks.with_lock("web", "stop", async { 1 });
    assert_send(&op);
}

/// Runs only as the child of `another_process_is_held_naming_it`.
#[test]
#[ignore = "a helper: its parent test runs it in a child process"]
fn child_holds_web() {
    let dir = crate::test_support::parent_set(CHILD_ENV);
    Locks::local(dir.into()).with_lock_sync("web", "stop", ready_then_wait_for_parent).unwrap();
}

#[test]
fn another_process_is_held_naming_it() {
    let (dir, locks) = setup();
    let lock_dir = dir.path().join("locks");
    let child = TestChild::spawn("lock::tests::child_holds_web", &[(CHILD_ENV, lock_dir.to_str().unwrap())]);
    let error = locks.with_lock_sync("web", "start", || ()).unwrap_err();
    let holder = format!("pid {} (stop)", child.pid());
    assert_eq!(error, LockError::Held { key: "web".into(), holder: holder.clone() });
    assert_eq!(error.to_string(), format!("web is locked by {holder}"));
    // A refusal leaves nothing behind in this process.
    assert_eq!(locks.current(), []);
    assert_eq!(locks.with_lock_sync("db", "start", || 1), Ok(1));

    child.finish();
    assert_free_in(&locks, &dir, "web");
}

#[test]
fn an_unusable_lock_directory_is_a_backend_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let locks = Locks::local(file.clone());
    let error = locks.with_lock_sync("web", "start", || ()).unwrap_err();
    assert!(matches!(error, LockError::Backend(_)));
    assert!(error.to_string().contains("not-a-dir"), "{error}");
    assert_eq!(locks.current(), []);
}

#[test]
fn a_custom_backend_plugs_in() {
    struct Refuses;
    impl LockBackend for Refuses {
        fn try_acquire<'a>(&'a self, key: &'a str, _op: &'a str) -> Acquire<'a> {
            Box::pin(std::future::ready(Err(LockError::Held {
                key: key.to_owned(),
                holder: "node b".into(),
            })))
        }
    }
    let locks = Locks::new(Refuses);
    let error = locks.with_lock_sync("web", "start", || ()).unwrap_err();
    assert_eq!(error.to_string(), "web is locked by node b");
}

/// A backend whose locks are lost when the test says so: stands in for a lease that expires.
struct Losable {
    lose: Arc<Mutex<Option<std::sync::mpsc::Receiver<String>>>>,
}

impl LockBackend for Losable {
    fn try_acquire<'a>(&'a self, _key: &'a str, _op: &'a str) -> Acquire<'a> {
        let rx = self.lose.lock().unwrap().take().expect("one acquisition");
        // Resolves at the first poll after the test sent why (the test polls by hand).
        let lost = std::future::poll_fn(move |_| match rx.try_recv() {
            Ok(why) => Poll::Ready(why),
            Err(_) => Poll::Pending,
        });
        Box::pin(std::future::ready(Ok(Guard::new(()).losable(lost).fenced(42))))
    }
}

#[test]
fn a_lost_lock_cancels_the_op_and_says_why() {
    let (tx, rx) = std::sync::mpsc::channel();
    let locks = Locks::new(Losable { lose: Arc::new(Mutex::new(Some(rx))) });
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let flag = SetOnDrop(dropped.clone());
    let op = async move {
        let _flag = flag;
        std::future::pending::<()>().await
    };
    let mut run = pin!(locks.with_lock("lease:web", "run", op));
    assert!(poll_once(run.as_mut()).is_pending(), "the op runs while the lock holds");
    assert_eq!(locks.current(), [("lease:web".to_owned(), "run".to_owned())]);
    tx.send("lease expired".into()).unwrap();
    match poll_once(run.as_mut()) {
        Poll::Ready(Err(e)) => assert_eq!(e.to_string(), "lost the lock on lease:web: lease expired"),
        other => panic!("expected Lost, got {other:?}"),
    }
    assert!(dropped.load(std::sync::atomic::Ordering::SeqCst), "the op was cancelled");
    assert_eq!(locks.current(), [], "and the lock released");
}

#[test]
fn a_guard_carries_its_fencing_token() {
    let g = Guard::new(()).fenced(7);
    assert_eq!(g.fencing(), Some(7));
    assert_eq!(Guard::new(()).fencing(), None);
}

#[test]
fn in_process_locks_refuse_a_second_op_and_release_on_every_path() {
    let locks = Locks::in_process();
    let inner = locks.with_lock_sync("service:web", "start", || {
        locks.with_lock_sync("service:web", "stop", || ()).unwrap_err()
    });
    assert_eq!(inner.unwrap(), LockError::InProgress { key: "service:web".into(), op: "start".into() });
    assert_eq!(locks.current(), [], "released after the op");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        locks.with_lock_sync("service:web", "start", || panic!("op failed"))
    }));
    assert!(panicked.is_err());
    assert!(locks.with_lock_sync("service:web", "stop", || 1).is_ok(), "released after a panic");
}

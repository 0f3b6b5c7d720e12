//! The drain loop of the threads that take work off the Check path (audit
//! writer, usage tally): everything queued is handled as one batch, then the
//! thread waits [`BATCH_WINDOW`] before it looks again.

use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The wait after each batch. Items queued meanwhile are handled in one go,
/// and a Check's `try_send` finds no sleeping receiver to wake: one thread
/// wake-up per batch rather than per item. Idle, the thread blocks.
pub const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Calls `f` with each batch (at least one item) until every sender is gone.
pub fn drain_in_batches<T>(rx: &Receiver<T>, mut f: impl FnMut(Vec<T>)) {
    while let Ok(first) = rx.recv() {
        f(std::iter::once(first).chain(rx.try_iter()).collect());
        std::thread::sleep(BATCH_WINDOW);
    }
}

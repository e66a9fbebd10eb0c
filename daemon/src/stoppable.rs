//! `StoppableThread`: a named background thread that runs until asked to
//! stop (it watches the flag it is given), and is joined when stopped. The
//! scale monitor and the config follower are two.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct StoppableThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StoppableThread {
    /// Runs `body` on a thread named `name`. A thread that cannot start is
    /// logged with `failure` (what the daemon goes without).
    pub fn spawn(name: &str, failure: &str, body: impl FnOnce(&AtomicBool) + Send + 'static) -> StoppableThread {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(&stopping))
            .map_err(|e| tracing::error!(error = %e, "{failure}"))
            .ok();
        StoppableThread { stop, thread }
    }

    /// Asks the thread to stop and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

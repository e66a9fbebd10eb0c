//! `Signals`: SIGTERM, SIGINT and SIGHUP, caught through `signal-hook` for
//! the daemon's whole life: installed right after it detaches, before the
//! instance lock, the storage and the runtime exist (so a stop requested
//! during a long start-up is honoured, not fatal), and kept until the last
//! flush at shutdown. A thread turns each signal into a message that plain
//! code can poll and async code can await.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tokio::sync::{mpsc, watch};

pub struct Signals {
    stop: watch::Receiver<bool>,
    hangups: Option<mpsc::UnboundedReceiver<()>>,
    handle: signal_hook::iterator::Handle,
}

impl Signals {
    /// Catches the signals from now on: from here a SIGTERM or SIGINT asks
    /// for a stop instead of killing the process.
    pub fn install() -> std::io::Result<Signals> {
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let handle = signals.handle();
        let (stop_tx, stop) = watch::channel(false);
        let (hangup_tx, hangups) = mpsc::unbounded_channel();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => {
                        let _ = hangup_tx.send(());
                    }
                    other => {
                        let name = if other == SIGTERM { "SIGTERM" } else { "SIGINT" };
                        tracing::info!("{name} received");
                        let _ = stop_tx.send(true);
                    }
                }
            }
        })?;
        Ok(Signals { stop, hangups: Some(hangups), handle })
    }

    /// True once SIGTERM or SIGINT has arrived.
    pub fn stop_requested(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves on the first SIGTERM or SIGINT (at once if one came
    /// already).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            // An error means the signal thread is gone: nothing will come.
            if stop.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Each SIGHUP, including those that came before this is called; only
    /// the first call gets them.
    pub fn hangups(&mut self) -> Option<mpsc::UnboundedReceiver<()>> {
        self.hangups.take()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.handle.close();
    }
}

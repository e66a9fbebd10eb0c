//! `ConfigFollower`: a thread that takes in `storage-config.yaml` again
//! within about a second of the file changing, so that an edited threshold,
//! hook or access list applies without SIGHUP. It looks at the file's
//! modification time only, and has a thread of its own so that a long scale
//! monitor cycle (an automatic migration) never holds an edit back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::layout::ProjectLayout;
use crate::service::MilestoneService;
use crate::stoppable::StoppableThread;

/// How often the file's modification time is looked at (a `stat`: cheap),
/// and so also how long stopping the thread can take.
const LOOK: Duration = Duration::from_millis(250);

pub struct ConfigFollower(StoppableThread);

impl ConfigFollower {
    pub fn start(service: Arc<MilestoneService>, layout: ProjectLayout) -> ConfigFollower {
        let failure = "cannot start following storage-config.yaml; SIGHUP applies edits";
        ConfigFollower(StoppableThread::spawn("config-follower", failure, move |stop| follow(&service, &layout, stop)))
    }

    pub fn stop(self) {
        self.0.stop();
    }
}

fn follow(service: &MilestoneService, layout: &ProjectLayout, stop: &AtomicBool) {
    let mut seen = modified(layout);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(LOOK);
        let now = modified(layout);
        if now == seen {
            continue;
        }
        seen = now;
        match service.reload_config() {
            Ok(()) => tracing::info!("storage-config.yaml changed; its settings apply from now on"),
            Err(e) => {
                tracing::warn!(error = %e, "storage-config.yaml changed but does not load; keeping the running settings")
            }
        }
    }
}

fn modified(layout: &ProjectLayout) -> Option<SystemTime> {
    std::fs::metadata(layout.storage_config()).and_then(|m| m.modified()).ok()
}

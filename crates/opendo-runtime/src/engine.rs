//! The Wasm engine shared by every namespace, and the clock that bounds event CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::Engine;

use crate::config::Config;
use crate::error::Error;

/// How often the engine's epoch advances. An event's CPU limit is counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

pub(crate) fn new_engine(settings: &Config) -> Result<Engine, Error> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.max_wasm_stack(settings.max_wasm_stack);
    // Every call gets a deadline in epoch ticks; a guest past it traps (the CPU limit).
    config.epoch_interruption(true);
    Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))
}

/// Number of ticks that make up `limit`, rounded up, plus one for the tick in progress.
pub(crate) fn deadline_ticks(limit: Duration) -> u64 {
    let ticks = limit.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX - 1).saturating_add(1)
}

/// A thread advancing the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("opendo-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up() {
        assert_eq!(deadline_ticks(Duration::from_millis(10)), 2);
        assert_eq!(deadline_ticks(Duration::from_millis(11)), 3);
        assert_eq!(deadline_ticks(Duration::from_secs(30)), 3001);
    }
}

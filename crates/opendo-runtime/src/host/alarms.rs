//! `opendo:durable-object/alarms`: the object's single alarm.

use super::{Host, storage_result};
use crate::bindings::opendo::durable_object::alarms;
use crate::bindings::{ErrorCode, GuestError};

type GuestResult<T> = wasmtime::Result<Result<T, GuestError>>;

impl alarms::Host for Host {
    fn set_alarm(&mut self, scheduled_time: i64) -> GuestResult<()> {
        if scheduled_time < 0 {
            return Ok(Err(GuestError {
                code: ErrorCode::InvalidArgument,
                message: format!("alarm time {scheduled_time} is before the Unix epoch"),
                sqlite_code: None,
            }));
        }
        storage_result(self.db()?.set_alarm(scheduled_time))
    }

    fn get_alarm(&mut self) -> GuestResult<Option<i64>> {
        storage_result(self.db()?.get_alarm().map(|alarm| alarm.map(|a| a.time_ms)))
    }

    fn delete_alarm(&mut self) -> GuestResult<()> {
        storage_result(self.db()?.delete_alarm())
    }
}

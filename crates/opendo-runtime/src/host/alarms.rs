//! `opendo:durable-object/alarms`: the object's single alarm.

use super::store::Host;
use crate::bindings::opendo::durable_object::alarms;
use crate::error::{HostError, Refusal};

impl alarms::Host for Host {
    fn set_alarm(&mut self, scheduled_time: i64) -> Result<(), HostError> {
        if scheduled_time < 0 {
            let message = format!("alarm time {scheduled_time} is before the Unix epoch");
            return Err(Refusal::InvalidArgument(message).into());
        }
        Ok(self.db()?.set_alarm(scheduled_time)?)
    }

    fn get_alarm(&mut self) -> Result<Option<i64>, HostError> {
        Ok(self.db()?.get_alarm()?.map(|alarm| alarm.time_ms))
    }

    fn delete_alarm(&mut self) -> Result<(), HostError> {
        Ok(self.db()?.delete_alarm()?)
    }
}

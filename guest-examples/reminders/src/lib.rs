//! Reminders per object, delivered by the object's single alarm.
//!
//! - `POST /remind?in_ms=N` with the reminder text as body: stores it, due N ms from now, and
//!   sets the alarm to the earliest pending reminder. Answers the due time (epoch ms).
//! - `GET /pending`: the pending reminders' texts, earliest first, as JSON.
//! - `GET /fired`: the fired reminders' texts, in firing order, as JSON.
//!
//! When the alarm fires, every due reminder moves to the fired list and the alarm is set to the
//! next pending one. Alarms are delivered at least once; moving reminders is idempotent (only
//! pending, due ones move), so a repeated run fires nothing twice.

use std::time::{SystemTime, UNIX_EPOCH};

use opendo_sdk::{
    AlarmInfo, DurableObject, Method, Request, Response, Result, ScheduledTime, State, export_durable_object,
};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS reminders (
    id INTEGER PRIMARY KEY,
    due_ms INTEGER NOT NULL,
    text TEXT NOT NULL,
    fired_seq INTEGER
)";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

struct Reminders {
    state: State,
}

impl Reminders {
    fn texts(&self, query: &str) -> Result<Response> {
        let rows = self.state.storage().sql().exec(query, None)?;
        let texts: Vec<String> = rows
            .raw()
            .iter()
            .filter_map(|row| match row.first() {
                Some(opendo_sdk::SqlStorageValue::String(text)) => Some(text.clone()),
                _ => None,
            })
            .collect();
        Response::from_json(&texts)
    }

    /// Sets the alarm to the earliest pending reminder, or deletes it if none is pending.
    fn rearm(&self) -> Result<Option<i64>> {
        let storage = self.state.storage();
        let next = storage.sql().exec("SELECT min(due_ms) FROM reminders WHERE fired_seq IS NULL", None)?;
        match next.raw().first().and_then(|row| row.first()) {
            Some(opendo_sdk::SqlStorageValue::Integer(due)) => {
                storage.set_alarm(ScheduledTime::at_epoch_ms(*due))?;
                Ok(Some(*due))
            }
            _ => {
                storage.delete_alarm()?;
                Ok(None)
            }
        }
    }
}

impl DurableObject for Reminders {
    fn new(state: State) -> Self {
        Reminders { state }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        sql.exec(SCHEMA, None)?;
        match (req.method(), req.path()) {
            (Method::Post, "/remind") => {
                let in_ms =
                    req.query().and_then(|q| q.strip_prefix("in_ms=")).and_then(|v| v.parse::<i64>().ok());
                let (Some(in_ms), Ok(text)) = (in_ms, req.text()) else {
                    return Response::error("use POST /remind?in_ms=N with the reminder text as body", 400);
                };
                if text.trim().is_empty() || in_ms < 0 {
                    return Response::error("the text must be non-empty and in_ms not negative", 400);
                }
                let due = now_ms() + in_ms;
                sql.exec(
                    "INSERT INTO reminders (due_ms, text) VALUES (?, ?)",
                    vec![due.into(), text.into()],
                )?;
                self.rearm()?;
                Response::ok(due.to_string())
            }
            (Method::Get, "/pending") => {
                self.texts("SELECT text FROM reminders WHERE fired_seq IS NULL ORDER BY due_ms, id")
            }
            (Method::Get, "/fired") => {
                self.texts("SELECT text FROM reminders WHERE fired_seq IS NOT NULL ORDER BY fired_seq")
            }
            _ => Response::error("not found", 404),
        }
    }

    fn alarm(&self, _info: AlarmInfo) -> Result<()> {
        let sql = self.state.storage().sql();
        sql.exec(SCHEMA, None)?;
        sql.exec(
            "UPDATE reminders SET fired_seq = due.seq
             FROM (SELECT id,
                          (SELECT coalesce(max(fired_seq), 0) FROM reminders)
                              + row_number() OVER (ORDER BY due_ms, id) AS seq
                   FROM reminders
                   WHERE fired_seq IS NULL AND due_ms <= ?) AS due
             WHERE reminders.id = due.id",
            vec![now_ms().into()],
        )?;
        self.rearm()?;
        Ok(())
    }
}

export_durable_object!(Reminders);

//! The rate limiter of the link shortener: one object per API token (addressed by the token as
//! its name). `POST /take` takes one of the token's 10 links per minute: 204, or 429 with
//! `retry-after` (seconds) when the last minute already has 10.

use std::time::{SystemTime, UNIX_EPOCH};

use opendo_sdk::{DurableObject, Method, Request, Response, Result, State, export_durable_object};

/// Links one token may create in any minute.
const LINKS_PER_MINUTE: usize = 10;
const MINUTE_MS: u64 = 60_000;

struct Limiter {
    state: State,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl DurableObject for Limiter {
    fn new(state: State) -> Self {
        Limiter { state }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        if (req.method(), req.path()) != (Method::Post, "/take") {
            return Response::error("not found", 404);
        }
        let storage = self.state.storage();
        let now = now_ms();
        // The times of the links taken in the last minute, oldest first.
        let mut taken: Vec<u64> = storage.get("taken")?.unwrap_or_default();
        taken.retain(|at| now.saturating_sub(*at) < MINUTE_MS);
        if taken.len() >= LINKS_PER_MINUTE {
            let wait_s = (MINUTE_MS - now.saturating_sub(taken[0])).div_ceil(1000);
            return Ok(Response::error(format!("at most {LINKS_PER_MINUTE} links per minute"), 429)?
                .with_header("retry-after", &wait_s.to_string()));
        }
        taken.push(now);
        storage.put("taken", &taken)?;
        Response::empty()
    }
}

export_durable_object!(Limiter);

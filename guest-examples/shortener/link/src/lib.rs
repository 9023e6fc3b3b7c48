//! One short link of the link shortener, created with a new unique id by the front:
//! - `PUT /` with the URL as body: stores it (201; 409 if the link exists already).
//! - `POST /visit`: counts a visit and answers the URL (404 if there is no link here).
//! - `GET /stats`: `{"url": ..., "visits": N}` (404 if there is no link here).

use opendo_sdk::{DurableObject, Method, Request, Response, Result, State, export_durable_object};

struct Link {
    state: State,
}

impl DurableObject for Link {
    fn new(state: State) -> Self {
        Link { state }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let url: Option<String> = storage.get("url")?;
        match (req.method(), req.path(), url) {
            (Method::Put, "/", None) => {
                storage.put("url", req.text()?)?;
                storage.put("visits", &0u64)?;
                Ok(Response::empty()?.with_status(201))
            }
            (Method::Put, "/", Some(_)) => Response::error("this link exists already", 409),
            (_, "/visit" | "/stats", None) => Response::error("no such link", 404),
            (Method::Post, "/visit", Some(url)) => {
                let visits = storage.get::<u64>("visits")?.unwrap_or(0) + 1;
                storage.put("visits", &visits)?;
                Response::ok(url)
            }
            (Method::Get, "/stats", Some(url)) => {
                let visits = storage.get::<u64>("visits")?.unwrap_or(0);
                Response::from_json(&serde_json::json!({ "url": url, "visits": visits }))
            }
            _ => Response::error("not found", 404),
        }
    }
}

export_durable_object!(Link);

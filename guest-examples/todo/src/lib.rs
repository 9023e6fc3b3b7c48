//! A todo list per object, kept in SQL.
//!
//! - `POST /todos` with the title as body: 201 and the new todo `{"id", "title", "done"}`
//!   (400 if the title is empty).
//! - `GET /todos`: every todo, in id order.
//! - `PATCH /todos/{id}`: toggles `done`, answers the todo.
//! - `DELETE /todos/{id}`: 204.
//! - An unknown id: 404. Anything else: 404.
//!
//! The schema is created on first use and versioned in KV (`schema_version`), so later versions
//! of this object can migrate existing lists.

use std::cell::Cell;

use opendo_sdk::{DurableObject, Method, Request, Response, Result, State, export_durable_object};
use serde::{Deserialize, Serialize};

/// Schema migrations, in order; `schema_version` in KV counts how many have run.
const MIGRATIONS: &[&str] = &["CREATE TABLE todos (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    )"];

#[derive(Deserialize)]
struct Row {
    id: i64,
    title: String,
    done: i64,
}

#[derive(Serialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
}

impl From<Row> for Todo {
    fn from(row: Row) -> Self {
        Todo { id: row.id, title: row.title, done: row.done != 0 }
    }
}

struct TodoList {
    state: State,
    migrated: Cell<bool>,
}

impl TodoList {
    fn migrate(&self) -> Result<()> {
        if self.migrated.get() {
            return Ok(());
        }
        let storage = self.state.storage();
        let version = storage.get::<usize>("schema_version")?.unwrap_or(0);
        if version < MIGRATIONS.len() {
            storage.transaction(|txn| {
                for migration in &MIGRATIONS[version..] {
                    txn.sql().exec(migration, None)?;
                }
                txn.put("schema_version", &MIGRATIONS.len())
            })?;
        }
        self.migrated.set(true);
        Ok(())
    }

    fn find(&self, id: i64) -> Result<Option<Todo>> {
        let cursor = self
            .state
            .storage()
            .sql()
            .exec("SELECT id, title, done FROM todos WHERE id = ?", vec![id.into()])?;
        Ok(cursor.to_array::<Row>()?.into_iter().next().map(Todo::from))
    }

    fn create(&self, req: &Request) -> Result<Response> {
        let title = match req.text() {
            Ok(title) if !title.trim().is_empty() => title,
            _ => return Response::error("the title (the request body) must be non-empty text", 400),
        };
        let cursor = self
            .state
            .storage()
            .sql()
            .exec("INSERT INTO todos (title) VALUES (?) RETURNING id, title, done", vec![title.into()])?;
        let todo = Todo::from(cursor.one::<Row>()?);
        Ok(Response::from_json(&todo)?.with_status(201))
    }

    fn list(&self) -> Result<Response> {
        let cursor =
            self.state.storage().sql().exec("SELECT id, title, done FROM todos ORDER BY id", None)?;
        let todos: Vec<Todo> = cursor.to_array::<Row>()?.into_iter().map(Todo::from).collect();
        Response::from_json(&todos)
    }

    fn toggle(&self, id: i64) -> Result<Response> {
        self.state.storage().sql().exec("UPDATE todos SET done = 1 - done WHERE id = ?", vec![id.into()])?;
        match self.find(id)? {
            Some(todo) => Response::from_json(&todo),
            None => Response::error("no such todo", 404),
        }
    }

    fn delete(&self, id: i64) -> Result<Response> {
        let cursor = self.state.storage().sql().exec("DELETE FROM todos WHERE id = ?", vec![id.into()])?;
        if cursor.rows_written() == 0 {
            return Response::error("no such todo", 404);
        }
        Response::empty()
    }
}

impl DurableObject for TodoList {
    fn new(state: State) -> Self {
        TodoList { state, migrated: Cell::new(false) }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        self.migrate()?;
        let path = req.path().to_string();
        match (req.method(), path.as_str()) {
            (Method::Post, "/todos") => self.create(&req),
            (Method::Get, "/todos") => self.list(),
            (method, path) => {
                let Some(id) = path.strip_prefix("/todos/") else {
                    return Response::error("not found", 404);
                };
                let Ok(id) = id.parse::<i64>() else {
                    return Response::error("no such todo", 404);
                };
                match method {
                    Method::Patch => self.toggle(id),
                    Method::Delete => self.delete(id),
                    _ => Response::error("method not allowed", 405),
                }
            }
        }
    }
}

export_durable_object!(TodoList);

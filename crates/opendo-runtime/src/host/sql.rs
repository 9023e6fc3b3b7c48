//! `opendo:durable-object/sql`: guest SQL on the object's database.

use opendo_storage::SqlValue;

use super::store::Host;
use crate::bindings::opendo::durable_object::sql;
use crate::error::HostError;

fn to_storage(value: sql::Value) -> SqlValue {
    match value {
        sql::Value::Null => SqlValue::Null,
        sql::Value::Integer(i) => SqlValue::Integer(i),
        sql::Value::Real(r) => SqlValue::Real(r),
        sql::Value::Text(t) => SqlValue::Text(t),
        sql::Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn to_guest(value: SqlValue) -> sql::Value {
    match value {
        SqlValue::Null => sql::Value::Null,
        SqlValue::Integer(i) => sql::Value::Integer(i),
        SqlValue::Real(r) => sql::Value::Real(r),
        SqlValue::Text(t) => sql::Value::Text(t),
        SqlValue::Blob(b) => sql::Value::Blob(b),
    }
}

impl sql::Host for Host {
    fn exec(&mut self, query: String, params: Vec<sql::Value>) -> Result<sql::QueryResult, HostError> {
        let params: Vec<SqlValue> = params.into_iter().map(to_storage).collect();
        let result = self.db()?.exec(&query, &params)?;
        Ok(sql::QueryResult {
            columns: result.columns,
            rows: result.rows.into_iter().map(|row| row.into_iter().map(to_guest).collect()).collect(),
            rows_read: result.rows_read,
            rows_written: result.rows_written,
        })
    }

    fn database_size(&mut self) -> Result<u64, HostError> {
        Ok(self.db()?.database_size()?)
    }
}

//! Which object names are acceptable.

use crate::error::EventError;

/// Longest object name, in bytes.
pub const MAX_OBJECT_NAME_BYTES: usize = 256;

/// Checks an object name: 1 to 256 bytes of UTF-8 with no control characters, and not `.` or `..`
/// (which HTTP clients rewrite away).
pub fn validate_object_name(name: &str) -> Result<(), EventError> {
    let problem = if name.is_empty() {
        "object name is empty"
    } else if name.len() > MAX_OBJECT_NAME_BYTES {
        "object name is longer than 256 bytes"
    } else if name.chars().any(char::is_control) {
        "object name contains a control character"
    } else if name == "." || name == ".." {
        "object name `.` and `..` are reserved"
    } else {
        return Ok(());
    };
    Err(EventError::BadObjectName(problem.into()))
}

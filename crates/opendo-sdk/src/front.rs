//! [`Front`]: the stateless component in front of a project's objects.

use crate::{Request, Response, Result};

/// A project's front: receives every HTTP request the server gets (when the project file has a
/// `[front]`), and reaches objects through [`ObjectNamespace`](crate::ObjectNamespace) and
/// [`Stub`](crate::Stub), as a Worker in front of Durable Objects does. It has no storage: an
/// instance may be made or thrown away between any two requests, and several serve requests at
/// once.
///
/// ```no_run
/// use opendo_sdk::{Front, Method, ObjectNamespace, Request, Response, Result, export_front};
///
/// /// `/count/{page}` counts a visit in the `counter` object of that page.
/// struct Site;
///
/// impl Front for Site {
///     fn new() -> Self {
///         Site
///     }
///
///     fn fetch(&self, req: Request) -> Result<Response> {
///         let Some(page) = req.path().strip_prefix("/count/") else {
///             return Response::error("not found", 404);
///         };
///         let counter = ObjectNamespace::new("counter").get_by_name(page)?;
///         counter.fetch_with_request(Request::new("/increment", Method::Post))
///     }
/// }
///
/// export_front!(Site);
/// ```
pub trait Front: 'static {
    /// Creates an instance's value, before its first request.
    fn new() -> Self;

    /// Handles one HTTP request: `req.path()` is the whole path the client asked for. An `Err`
    /// becomes a 500 response carrying the error's message.
    fn fetch(&self, req: Request) -> Result<Response>;
}

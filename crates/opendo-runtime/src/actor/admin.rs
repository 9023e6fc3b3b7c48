//! Admin calls in the actor: run between batches, on the object's open database if it is active,
//! after closing it for those that replace or remove its files.

use super::instance::{Active, Closing};
use super::object::ObjectCtx;
use crate::admin::ops::{self, AdminOp, AdminReply, Place};
use crate::error::AdminError;

/// Runs `op` on the object (on a blocking thread: it may checkpoint, sync and read a whole
/// database). Returns the object, still active unless `op` closed it.
pub(super) fn run_admin(
    ctx: &ObjectCtx,
    mut active: Option<Active>,
    op: AdminOp,
) -> (Option<Active>, Result<AdminReply, AdminError>) {
    if op.closes_database()
        && let Some(object) = active.take()
    {
        object.close(ctx, Closing::Checkpointed);
        if matches!(op, AdminOp::Hibernate) {
            ctx.context.stats.hibernations.inc();
            return (None, Ok(AdminReply::Done(true)));
        }
    }
    match op {
        AdminOp::Hibernate => return (None, Ok(AdminReply::Done(false))),
        AdminOp::Delete => ctx.sockets.close_all(1001, "object deleted"),
        _ => {}
    }
    let place = Place {
        path: &ctx.db_path,
        settings: ctx.context.object_settings(ctx.namespace.limits.storage_cap),
        id: ctx.identity.id,
        name: ctx.identity.name(),
        alarm_index: ctx.namespace.alarm_index(),
        cpu_limit: ctx.namespace.limits.cpu_limit,
    };
    let open = match &mut active {
        Some(object) => match object.db() {
            Ok(db) => Some(db),
            Err(err) => return (active, Err(err.into())),
        },
        None => None,
    };
    let reply = ops::run(&place, op, open);
    if let Ok(AdminReply::Name(Some(name))) = &reply {
        ctx.identity.learn_name(name);
    }
    (active, reply)
}

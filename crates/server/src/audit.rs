//! The audit trail of authorization decisions: who asked to do what, where, and which assignment allowed it (or
//! that none did). Requests hand events to a channel and go on; one background task writes them in batches, so
//! auditing adds no database round trip to a request's latency.

use berth_db::{AuditEvent, Db};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Events waiting to be written, at most; beyond that new events are dropped (and counted in the log) rather
/// than slowing requests down.
const QUEUE: usize = 65_536;
/// Events written per transaction, at most.
const BATCH: usize = 512;

/// Where requests send their decisions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    sender: mpsc::Sender<AuditEvent>,
}

/// What one decision was about.
pub struct Audited<'a> {
    pub principal_id: &'a str,
    pub surface: &'static str,
    pub action: &'a str,
    pub scope: &'a str,
    pub repository: Option<&'a str>,
    pub decision: &'a berth_authz::Decision,
}

impl AuditLog {
    /// Start the writer task on the current runtime; it ends when every [`AuditLog`] is dropped.
    pub fn start(db: Db) -> AuditLog {
        let (sender, mut receiver) = mpsc::channel::<AuditEvent>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while receiver.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = db.insert_audit_events(&batch).await {
                    tracing::warn!(error = %e, events = batch.len(), "writing audit events failed");
                }
                batch.clear();
            }
        });
        AuditLog { sender }
    }

    pub fn record(&self, event: Audited<'_>) {
        let (allowed, assignment_id, role_name) = match event.decision {
            berth_authz::Decision::Allowed { assignment_id, role_name } => {
                (true, Some(assignment_id.clone()), Some(role_name.clone()))
            }
            berth_authz::Decision::Denied => (false, None, None),
        };
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let row = AuditEvent {
            id: Uuid::new_v4().to_string(),
            at,
            principal_id: event.principal_id.to_string(),
            surface: event.surface.to_string(),
            action: event.action.to_string(),
            scope: event.scope.to_string(),
            repository: event.repository.map(str::to_string),
            allowed,
            assignment_id,
            role_name,
        };
        if self.sender.try_send(row).is_err() {
            tracing::warn!("audit queue full or closed: an authorization decision was not audited");
        }
    }
}

//! The approvals table through sqlx's `Any` driver: one set of portable
//! queries for SQLite and PostgreSQL (`$N` placeholders, BIGINT times).

use std::sync::Once;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use super::ApprovalError;
use crate::config::ApprovalsConfig;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
    Used,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Used => "used",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Status::Pending,
            Status::Approved,
            Status::Rejected,
            Status::Expired,
            Status::Used,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One held call and what became of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApprovalRequest {
    pub id: String,
    /// Binding digest (hex): the exact call a grant is for.
    pub binding: String,
    /// User id (or SPIFFE id) of whoever made the call.
    pub requester: String,
    pub issuer: String,
    pub surface: String,
    pub server: String,
    pub tool: String,
    /// Canonical JSON of the call's arguments.
    pub arguments: String,
    pub arguments_digest: String,
    pub policy_digest: String,
    pub status: Status,
    /// A rejection or expiry was reported to the caller.
    pub reported: bool,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub expires_ms: i64,
    pub decided_ms: Option<i64>,
    pub approver: Option<String>,
    pub comment: Option<String>,
    pub used_ms: Option<i64>,
}

const COLUMNS: &str = "id, binding, requester, issuer, surface, server, tool, arguments, \
     arguments_digest, policy_digest, status, reported, created_ms, expires_ms, decided_ms, \
     approver, comment, used_ms";

fn from_row(r: &AnyRow) -> Result<ApprovalRequest, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(ApprovalRequest {
        id: r.try_get("id")?,
        binding: r.try_get("binding")?,
        requester: r.try_get("requester")?,
        issuer: r.try_get("issuer")?,
        surface: r.try_get("surface")?,
        server: r.try_get("server")?,
        tool: r.try_get("tool")?,
        arguments: r.try_get("arguments")?,
        arguments_digest: r.try_get("arguments_digest")?,
        policy_digest: r.try_get("policy_digest")?,
        status: Status::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown approval status `{status}`").into())
        })?,
        reported: r.try_get::<i64, _>("reported")? != 0,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        decided_ms: r.try_get("decided_ms")?,
        approver: r.try_get("approver")?,
        comment: r.try_get("comment")?,
        used_ms: r.try_get("used_ms")?,
    })
}

pub(super) struct Store {
    pool: AnyPool,
}

static DRIVERS: Once = Once::new();

impl Store {
    pub(super) async fn connect(cfg: &ApprovalsConfig) -> Result<Self, ApprovalError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let url = String::from_utf8_lossy(&cfg.database_url.0).into_owned();
        let pool = AnyPoolOptions::new()
            .max_connections(if cfg.postgres { 8 } else { 1 })
            .acquire_timeout(std::time::Duration::from_millis(400))
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Marks pending requests and approved grants of `binding` past their
    /// expiry as expired.
    pub(super) async fn expire(&self, binding: &str, now: i64) -> Result<(), ApprovalError> {
        sqlx::query(
            "UPDATE approvals SET status = 'expired' \
             WHERE binding = $1 AND status IN ('pending', 'approved') AND expires_ms <= $2",
        )
        .bind(binding)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn expire_all(&self, now: i64) -> Result<(), ApprovalError> {
        sqlx::query(
            "UPDATE approvals SET status = 'expired' \
             WHERE status IN ('pending', 'approved') AND expires_ms <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest request of `binding`.
    pub(super) async fn latest(
        &self,
        binding: &str,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE binding = $1 \
             ORDER BY created_ms DESC, id DESC LIMIT 1"
        ))
        .bind(binding)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Uses an approved, unexpired, unused grant: true for exactly one caller.
    pub(super) async fn use_grant(&self, id: &str, now: i64) -> Result<bool, ApprovalError> {
        let done = sqlx::query(
            "UPDATE approvals SET status = 'used', used_ms = $2 \
             WHERE id = $1 AND status = 'approved' AND expires_ms > $2",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a rejection or expiry as reported: true for exactly one caller
    /// (concurrent retries race for it; the others ask again).
    pub(super) async fn mark_reported(&self, id: &str) -> Result<bool, ApprovalError> {
        let done = sqlx::query("UPDATE approvals SET reported = 1 WHERE id = $1 AND reported = 0")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a pending request; when another replica made one for the same
    /// binding at the same time, returns that one's id.
    pub(super) async fn insert_pending(
        &self,
        r: &ApprovalRequest,
    ) -> Result<String, ApprovalError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO approvals ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(&r.id)
        .bind(&r.binding)
        .bind(&r.requester)
        .bind(&r.issuer)
        .bind(&r.surface)
        .bind(&r.server)
        .bind(&r.tool)
        .bind(&r.arguments)
        .bind(&r.arguments_digest)
        .bind(&r.policy_digest)
        .bind(r.status.as_str())
        .bind(i64::from(r.reported))
        .bind(r.created_ms)
        .bind(r.expires_ms)
        .bind(r.decided_ms)
        .bind(r.approver.clone())
        .bind(r.comment.clone())
        .bind(r.used_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(r.id.clone()),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                let row = sqlx::query(
                    "SELECT id FROM approvals WHERE binding = $1 AND status = 'pending'",
                )
                .bind(&r.binding)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(row) => Ok(row.try_get("id")?),
                    None => Err(ApprovalError::Database(e)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Approves or rejects a pending, unexpired request: true when it was.
    pub(super) async fn decide(
        &self,
        id: &str,
        approver: &str,
        approve: bool,
        comment: &str,
        now: i64,
        grant_expires: i64,
    ) -> Result<bool, ApprovalError> {
        let status = if approve { "approved" } else { "rejected" };
        let done = sqlx::query(
            "UPDATE approvals SET status = $2, approver = $3, comment = $4, decided_ms = $5, \
             expires_ms = CASE WHEN $2 = 'approved' THEN $6 ELSE expires_ms END \
             WHERE id = $1 AND status = 'pending' AND expires_ms > $5",
        )
        .bind(id)
        .bind(status)
        .bind(approver)
        .bind(comment)
        .bind(now)
        .bind(grant_expires)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Pending requests of `requester` not past their expiry.
    pub(super) async fn pending_of(&self, requester: &str, now: i64) -> Result<i64, ApprovalError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM approvals \
             WHERE status = 'pending' AND requester = $1 AND expires_ms > $2",
        )
        .bind(requester)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Pending requests not past their expiry.
    pub(super) async fn count_pending(&self, now: i64) -> Result<i64, ApprovalError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_ms > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    pub(super) async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Requests with `status` (any when `None`); pending oldest first, else newest first.
    pub(super) async fn by_status(
        &self,
        status: Option<Status>,
        limit: i64,
    ) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM approvals WHERE status = $1 \
                     ORDER BY created_ms ASC, id ASC LIMIT $2"
                ))
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM approvals ORDER BY created_ms DESC, id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }
}

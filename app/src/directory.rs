//! The directory of accounts admins see, read from the `users` read model.

use chrono::{DateTime, Utc};
use domain::user::Profile;
use infrastructure::database::Database;
use infrastructure::personal_data::PersonalDataVault;
use projections::sql::{Value, fetch_all};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

/// Accounts per page when the caller does not say.
pub const DEFAULT_PAGE: usize = 50;
/// The most accounts a page holds.
pub const MAX_PAGE: usize = 200;

/// Which accounts by standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Can sign in.
    Active,
    /// Deactivated by an admin.
    Deactivated,
    /// Their personal data was erased.
    Erased,
}

/// What a page of the directory holds.
#[derive(Debug, Clone, Default)]
pub struct DirectoryFilter {
    /// One role (`customer`, `agent`, `admin`, `auditor`).
    pub role: Option<&'static str>,
    /// One standing.
    pub standing: Option<Standing>,
    /// Part of the name, email or username, in any case (searched in the opened
    /// profiles: they are sealed in the database).
    pub search: Option<String>,
}

/// Who created an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegisteredBy {
    /// `self_sign_up`, `admin` or `operator`.
    pub kind: String,
    /// The admin, when an admin did.
    pub user_id: Option<Uuid>,
}

/// One account as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DirectoryEntry {
    /// The account.
    pub user_id: Uuid,
    /// `customer`, `agent`, `admin` or `auditor`.
    pub role: String,
    /// `None` once erased.
    pub name: Option<String>,
    /// `None` once erased.
    pub email: Option<String>,
    /// When given, and until erased.
    pub mobile: Option<String>,
    /// Agents' sign-in name, until erased.
    pub username: Option<String>,
    /// False while deactivated.
    pub active: bool,
    /// True once the person's personal data was erased.
    pub erased: bool,
    /// Who created it.
    pub registered_by: RegisteredBy,
    /// When.
    pub registered_at: DateTime<Utc>,
    /// The last password change, if any.
    pub password_changed_at: Option<DateTime<Utc>>,
}

/// A page of the directory, newest accounts first.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct DirectoryPage {
    /// The accounts.
    pub items: Vec<DirectoryEntry>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

type Row = (
    String,
    String,
    Option<String>,
    i64,
    i64,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

fn instant(micros: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| anyhow::anyhow!("{micros} is not an instant"))
}

/// Opens a sealed profile of the directory: `None` when there is none, or its owner was
/// erased.
///
/// # Errors
/// When the sealed value is damaged or the vault's store fails.
pub async fn open_profile(
    vault: &PersonalDataVault,
    sealed: Option<&str>,
) -> anyhow::Result<Option<Profile>> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let opened = vault
        .unseal(&RawValue::from_string(sealed.to_owned())?)
        .await?;
    Ok(serde_json::from_str(opened.get())?)
}

/// The profile of `user_id` from the directory, opened: `None` when there is no such
/// account, or its person was erased.
///
/// # Errors
/// When the database fails or the sealed profile is damaged.
pub async fn profile_of(
    database: &Database,
    vault: &PersonalDataVault,
    user_id: &str,
) -> anyhow::Result<Option<Profile>> {
    let rows: Vec<(Option<String>,)> = fetch_all(
        database,
        "SELECT profile FROM rm_users WHERE user_id = $1",
        &[user_id.into()],
    )
    .await?;
    let sealed = rows.into_iter().next().and_then(|(sealed,)| sealed);
    open_profile(vault, sealed.as_deref()).await
}

async fn entry(vault: &PersonalDataVault, row: Row) -> anyhow::Result<DirectoryEntry> {
    let (user_id, role, sealed, active, erased, by, by_id, at, _, changed) = row;
    let profile = open_profile(vault, sealed.as_deref()).await?;
    Ok(DirectoryEntry {
        user_id: Uuid::parse_str(&user_id)?,
        role,
        name: profile.as_ref().map(|p| p.name.to_string()),
        email: profile.as_ref().map(|p| p.email.to_string()),
        mobile: profile
            .as_ref()
            .and_then(|p| p.mobile.as_ref())
            .map(ToString::to_string),
        username: profile
            .as_ref()
            .and_then(|p| p.username.as_ref())
            .map(ToString::to_string),
        active: active != 0,
        // Erased, or registered with data that no longer opens.
        erased: erased != 0 || profile.is_none(),
        registered_by: RegisteredBy {
            kind: by,
            user_id: by_id.as_deref().map(Uuid::parse_str).transpose()?,
        },
        registered_at: instant(at)?,
        password_changed_at: changed.map(instant).transpose()?,
    })
}

impl DirectoryEntry {
    /// Whether `needle` (lower-case) is part of the name, email or username.
    fn matches(&self, needle: &str) -> bool {
        [&self.name, &self.email, &self.username]
            .into_iter()
            .flatten()
            .any(|text| text.to_lowercase().contains(needle))
    }
}

/// Rows read at a time while searching: the profiles are sealed, so a search opens them
/// here, a slice at a time, until the page is full.
const SEARCH_SLICE: usize = 500;

/// The accounts `filter` admits, newest first, `limit` of them registered before the
/// cursor `before` (an earlier page's `next_cursor`).
///
/// # Errors
/// When the database fails or a sealed profile is damaged.
pub async fn page(
    database: &Database,
    vault: &PersonalDataVault,
    filter: &DirectoryFilter,
    limit: usize,
    before: Option<i64>,
) -> anyhow::Result<DirectoryPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut sql = String::from(
        "SELECT user_id, role, profile, active, erased, registered_by, registered_by_id, \
         registered_at_us, registered_at, password_changed_at_us FROM rm_users WHERE registered_at < $1",
    );
    let mut args: Vec<Value> = vec![Value::Int(0)];
    if let Some(role) = filter.role {
        args.push(role.into());
        sql.push_str(&format!(" AND role = ${}", args.len()));
    }
    sql.push_str(match filter.standing {
        Some(Standing::Active) => " AND active = 1 AND erased = 0",
        Some(Standing::Deactivated) => " AND active = 0 AND erased = 0",
        Some(Standing::Erased) => " AND erased = 1",
        None => "",
    });
    let slice = if filter.search.is_some() {
        SEARCH_SLICE
    } else {
        limit + 1
    };
    sql.push_str(&format!(" ORDER BY registered_at DESC LIMIT {slice}"));
    let needle = filter.search.as_deref().map(str::to_lowercase);
    let mut found: Vec<(i64, DirectoryEntry)> = Vec::new();
    let mut after = before.unwrap_or(i64::MAX);
    loop {
        args[0] = Value::Int(after);
        let rows: Vec<Row> = fetch_all(database, &sql, &args).await?;
        let exhausted = rows.len() < slice;
        for row in rows {
            let position = row.8;
            after = position;
            let entry = entry(vault, row).await?;
            if needle.as_deref().is_none_or(|needle| entry.matches(needle)) {
                found.push((position, entry));
            }
            if found.len() > limit {
                break;
            }
        }
        if exhausted || found.len() > limit {
            break;
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let next_cursor = found
        .last()
        .filter(|_| more)
        .map(|(position, _)| position.to_string());
    Ok(DirectoryPage {
        items: found.into_iter().map(|(_, entry)| entry).collect(),
        next_cursor,
    })
}

/// Reads a `next_cursor`.
///
/// # Errors
/// When it is not one.
pub fn cursor(raw: &str) -> Result<i64, &'static str> {
    raw.parse::<i64>()
        .ok()
        .filter(|at| *at > 0)
        .ok_or("must be the next_cursor of an earlier page")
}

//! Operator packages: the hub's package repository. Each version keeps its archive as
//! uploaded, so a download is byte for byte what was verified and what `digest` names.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Store, StoreError, audited, on_pool, violated_constraint};

/// A version to store.
#[derive(Debug, Clone)]
pub struct NewPackage {
    pub name: String,
    pub app_version: String,
    pub operator_version: String,
    /// KUDO's file name, unique in the repository.
    pub archive_name: String,
    pub description: String,
    pub digest: String,
    pub archive: Vec<u8>,
    /// Parameters, plans and maintainers, for listings.
    pub summary: Value,
}

/// A stored version, without its archive.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPackage {
    pub name: String,
    pub app_version: String,
    pub operator_version: String,
    pub archive_name: String,
    pub description: String,
    pub digest: String,
    pub size: i64,
    pub summary: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PackageRow {
    name: String,
    app_version: String,
    operator_version: String,
    archive_name: String,
    description: String,
    digest: String,
    size: i64,
    summary: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<PackageRow> for StoredPackage {
    type Error = StoreError;
    fn try_from(row: PackageRow) -> Result<Self, StoreError> {
        Ok(StoredPackage {
            name: row.name,
            app_version: row.app_version,
            operator_version: row.operator_version,
            archive_name: row.archive_name,
            description: row.description,
            digest: row.digest,
            size: row.size,
            summary: serde_json::from_str(&row.summary)?,
            created_at: row.created_at,
        })
    }
}

const COLUMNS: &str = "name, app_version, operator_version, archive_name, description, digest, \
                       CAST(LENGTH(archive) AS BIGINT) AS size, CAST(summary AS TEXT) AS summary, created_at";
const KEY: &str = "name = $1 AND app_version = $2 AND operator_version = $3";

impl Store {
    /// Stores a version. The same archive again is accepted as it is (an upload retried);
    /// another archive for a stored version is a conflict: versions are immutable.
    pub async fn put_package(&self, new: &NewPackage) -> Result<StoredPackage, StoreError> {
        let summary = super::bundles::json_arg(self.dialect(), 8);
        let sql = format!(
            "INSERT INTO operator_packages (name, app_version, operator_version, archive_name, description, digest, \
             archive, summary, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, {summary}, $9) RETURNING {COLUMNS}"
        );
        let inserted = {
            let _turn = self.write_turn().await;
            on_pool!(self, pool => sqlx::query_as::<_, PackageRow>(audited(&sql))
                .bind(&new.name)
                .bind(&new.app_version)
                .bind(&new.operator_version)
                .bind(&new.archive_name)
                .bind(&new.description)
                .bind(&new.digest)
                .bind(&new.archive)
                .bind(new.summary.to_string())
                .bind(maestro_model::now())
                .fetch_one(pool)
                .await)
        };
        match inserted {
            Ok(row) => row.try_into(),
            Err(err) if matches!(violated_constraint(&err), Some((sqlx::error::ErrorKind::UniqueViolation, _))) => {
                let stored = self.get_package(&new.name, &new.app_version, &new.operator_version).await;
                match stored {
                    Ok(stored) if stored.digest == new.digest => Ok(stored),
                    _ => Err(StoreError::Conflict {
                        message: format!(
                            "{} is stored with other content; a version cannot change: publish a new operatorVersion",
                            new.archive_name
                        ),
                        current_version: None,
                    }),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Every stored version, by name then newest upload first.
    pub async fn list_packages(&self) -> Result<Vec<StoredPackage>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM operator_packages ORDER BY name, created_at DESC");
        let rows = on_pool!(self, pool => sqlx::query_as::<_, PackageRow>(audited(&sql)).fetch_all(pool).await)?;
        rows.into_iter().map(StoredPackage::try_from).collect()
    }

    pub async fn get_package(&self, name: &str, app: &str, operator: &str) -> Result<StoredPackage, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM operator_packages WHERE {KEY}");
        let row = on_pool!(self, pool => sqlx::query_as::<_, PackageRow>(audited(&sql))
            .bind(name).bind(app).bind(operator).fetch_optional(pool).await)?;
        row.ok_or_else(|| StoreError::NotFound(format!("operator package {name} {app} {operator}")))?.try_into()
    }

    /// The archive stored under KUDO's file name.
    pub async fn package_archive(&self, archive_name: &str) -> Result<Vec<u8>, StoreError> {
        let sql = "SELECT archive FROM operator_packages WHERE archive_name = $1";
        let archive: Option<Vec<u8>> =
            on_pool!(self, pool => sqlx::query_scalar(sql).bind(archive_name).fetch_optional(pool).await)?;
        archive.ok_or_else(|| StoreError::NotFound(format!("operator package archive '{archive_name}'")))
    }

    pub async fn delete_package(&self, name: &str, app: &str, operator: &str) -> Result<(), StoreError> {
        let sql = format!("DELETE FROM operator_packages WHERE {KEY}");
        let _turn = self.write_turn().await;
        let deleted = on_pool!(self, pool => sqlx::query(audited(&sql))
            .bind(name).bind(app).bind(operator).execute(pool).await.map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("operator package {name} {app} {operator}")));
        }
        Ok(())
    }
}

//! Wake-ups for the tasks that act on what the database holds: the outbox dispatcher, the
//! policy reloads and, through [`StatusFeed`], whatever follows agents' statuses (the operator
//! and rollout engines). One mechanism for all of them, three sources:
//!
//! - this process's writes: an in-process [`Notify`];
//! - other hubs' writes: PostgreSQL `LISTEN` on the channels the triggers notify;
//! - a poll, the fallback when a notification is lost (a listener reconnecting) and all there is
//!   for another process writing the same SQLite file.
//!
//! A wake-up says only "look again": every task re-reads the database when woken, so a lost,
//! duplicate or late wake-up costs at most one poll interval, never a change.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, broadcast};

use super::{Db, Store, StoreError};

/// The channel the outbox and policy-outbox triggers notify.
pub const OUTBOX_CHANNEL: &str = "maestro_outbox";
/// The channel the `plugin_policies` trigger notifies.
pub const POLICY_CHANNEL: &str = "maestro_plugin_policies";
/// The channel a recorded status notifies, with the bundle id as payload.
pub const STATUS_CHANNEL: &str = "maestro_status";

/// Why [`Wakeup::wait`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Woken {
    /// This process wrote.
    Local,
    /// Another connection notified one of the channels (the payload as sent).
    Notified(String),
    /// Nothing came within the poll interval, or the listener was (re)connected and may have
    /// missed notifications meanwhile.
    Poll,
}

/// Waits for the next reason to look at the database again.
pub struct Wakeup {
    channels: Vec<&'static str>,
    local: Option<Arc<Notify>>,
    listener: Option<PgListener>,
    postgres: bool,
    poll: Duration,
}

impl Wakeup {
    /// Listens on `channels` (PostgreSQL) and waits on `local` when given. A listener that
    /// cannot be opened now is retried on every later wait; polling covers the gap.
    pub async fn new(store: &Store, channels: &[&'static str], local: Option<Arc<Notify>>, poll: Duration) -> Self {
        let mut wakeup = Wakeup {
            channels: channels.to_vec(),
            local,
            listener: None,
            postgres: matches!(store.db, Db::Postgres(_)),
            poll,
        };
        wakeup.listen(store).await;
        wakeup
    }

    async fn listen(&mut self, store: &Store) {
        if !self.postgres || self.channels.is_empty() || self.listener.is_some() {
            return;
        }
        match store.listener(&self.channels).await {
            Ok(listener) => self.listener = listener,
            Err(err) => tracing::warn!(error = %err, channels = ?self.channels, "cannot LISTEN; polling instead"),
        }
    }

    /// The next wake-up. After a lost listener it re-listens and answers [`Woken::Poll`], since
    /// notifications may have been missed meanwhile.
    pub async fn wait(&mut self, store: &Store) -> Woken {
        if self.postgres && !self.channels.is_empty() && self.listener.is_none() {
            self.listen(store).await;
            if self.listener.is_some() {
                return Woken::Poll;
            }
        }
        let local = async {
            match &self.local {
                Some(notify) => notify.notified().await,
                None => std::future::pending().await,
            }
        };
        let notified = async {
            match self.listener.as_mut() {
                Some(pg) => match pg.recv().await {
                    Ok(notification) => Some(notification.payload().to_string()),
                    Err(err) => {
                        tracing::debug!(error = %err, "LISTEN connection lost; reconnecting");
                        None
                    }
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = local => Woken::Local,
            payload = notified => match payload {
                Some(payload) => Woken::Notified(payload),
                None => {
                    self.listener = None;
                    // Don't spin while the database is away.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Woken::Poll
                }
            },
            () = tokio::time::sleep(self.poll) => Woken::Poll,
        }
    }
}

/// What [`StatusFeed::next`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// A status of this bundle was recorded (by any hub).
    Recorded(String),
    /// Changes may have been missed (the feed lagged or its listener reconnected): re-read what
    /// you follow.
    Missed,
}

/// Agents' statuses as hubs record them, for engines that wait on them. On PostgreSQL every
/// hub's recordings arrive (`NOTIFY maestro_status`, payload the bundle id); on SQLite, this
/// process's.
pub struct StatusFeed {
    store: Arc<Store>,
    local: Option<broadcast::Receiver<String>>,
    wakeup: Option<Wakeup>,
}

impl StatusFeed {
    /// The next change, or [`StatusChange::Missed`] after `poll` without one (PostgreSQL) so a
    /// follower re-reads at least that often.
    pub async fn next(&mut self) -> StatusChange {
        if let Some(local) = self.local.as_mut() {
            return match local.recv().await {
                Ok(id) => StatusChange::Recorded(id),
                Err(_) => StatusChange::Missed,
            };
        }
        match self.wakeup.as_mut() {
            Some(wakeup) => match wakeup.wait(&self.store).await {
                Woken::Notified(id) if !id.is_empty() => StatusChange::Recorded(id),
                _ => StatusChange::Missed,
            },
            None => std::future::pending().await,
        }
    }
}

impl Store {
    /// A PostgreSQL listener on `channels`; `None` on SQLite.
    pub(crate) async fn listener(&self, channels: &[&str]) -> Result<Option<PgListener>, StoreError> {
        match &self.db {
            Db::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen_all(channels.iter().copied()).await?;
                Ok(Some(listener))
            }
            Db::Sqlite(_) => Ok(None),
        }
    }

    /// Follows recorded statuses; see [`StatusFeed`]. On PostgreSQL the feed holds one of the
    /// pool's connections for its `LISTEN` until dropped: drop it before [`Store::close`].
    pub async fn status_feed(self: &Arc<Self>, poll: Duration) -> StatusFeed {
        match &self.db {
            Db::Postgres(_) => StatusFeed {
                store: self.clone(),
                local: None,
                wakeup: Some(Wakeup::new(self, &[STATUS_CHANNEL], None, poll).await),
            },
            Db::Sqlite(_) => {
                StatusFeed { store: self.clone(), local: Some(self.status_recorded.subscribe()), wakeup: None }
            }
        }
    }

    /// Tells this process's [`StatusFeed`]s (SQLite; PostgreSQL's trigger tells every hub's).
    pub(crate) fn announce_status(&self, id: &str) {
        if matches!(self.db, Db::Sqlite(_)) {
            let _ = self.status_recorded.send(id.to_string());
        }
    }
}

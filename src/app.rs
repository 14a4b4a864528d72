//! Wiring: from a [`Config`] to a running server, shared by the binary and the tests.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::set::SetSigner;
use crate::events::{EventsHandle, EventsRunner};
use crate::http::{self, AppState, Settings};
use crate::identity::Directory;
use crate::provisioning::{Context, Engine, EngineHandle, Target};
use crate::scim::discovery::{BulkLimits, Capabilities};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// What this build of the server supports, as `/ServiceProviderConfig` announces it.
pub fn capabilities(config: &Config) -> Capabilities {
    Capabilities {
        patch: true,
        bulk: Some(bulk_limits(config)),
        filter_max_results: Some(config.max_page_size),
        change_password: false,
        sort: true,
        etag: true,
        documentation_uri: None,
        default_page_size: config.default_page_size,
        max_page_size: config.max_page_size,
        security_events: config.events.set.as_ref().map(|_| {
            crate::events::set::EVENT_URIS
                .iter()
                .map(|u| u.to_string())
                .collect()
        }),
    }
}

pub fn bulk_limits(config: &Config) -> BulkLimits {
    BulkLimits {
        max_operations: config.bulk_max_operations,
        max_payload_size: config.bulk_max_payload_bytes,
    }
}

/// The provisioning engine for the config file's targets and those created through the admin
/// API, or `None` when the workers are disabled.
pub fn engine(config: &Config, directory: Context) -> Result<Option<Engine>, StartError> {
    check_reconcile_settings(config)?;
    if !config.worker.enabled {
        return Ok(None);
    }
    let targets = config
        .targets
        .iter()
        .map(|t| Target::from_config(t).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    // Scheduled full syncs start from the engine's rounds, with the targets it serves.
    let scheduler = Arc::new(crate::reconcile::schedule::Scheduler::default());
    let engine = Engine::new(directory, targets, config.worker.clone()).each_round(Arc::new(
        move |directory, targets| scheduler.tick(directory, targets),
    ));
    Ok(Some(engine))
}

/// Opens the database (running migrations), binds the listener and builds the server, and
/// starts the provisioning workers on the current actix runtime. The returned server must be
/// awaited (or spawned) to run.
pub fn start(config: &Config) -> Result<Started, StartError> {
    start_with_clock(config, Clock::system())
}

/// [`start`], with every timestamp read from `clock` (tests move it forward).
pub fn start_with_clock(config: &Config, clock: Clock) -> Result<Started, StartError> {
    let metrics =
        crate::metrics::Metrics::new(config.targets.iter().map(|t| t.name.clone()).collect());
    let db = config
        .open_database(config.pool_size)?
        .with_clock(clock)
        .with_observer(Arc::new(metrics.clone()));
    crate::extensions::start(&db, &config.schema_extensions)
        .map_err(|e| crate::config::ConfigError::from_message(format!("schema_extensions: {e}")))?;
    refresh_extensions(db.clone(), config.schema_extensions.clone());
    let listener = TcpListener::bind(&config.listen).map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.clone(),
        source,
    })?;
    let base_url = config.base_url_for(bound);
    let directory = Directory::new(db.clone(), &base_url);
    let context = Context::new(directory.clone(), db.clone());
    let workers =
        engine(config, context.clone())?.map(|engine| engine.observed_by(metrics.clone()).spawn());
    let inbound = Arc::new(crate::load::Inbound::new(
        config.events.yield_at_requests_in_flight,
    ));
    let (events, signer) = events(config, &db, &inbound)?;
    let state = AppState {
        directory,
        authenticator: Authenticator::new(db.clone(), &config.auth)?,
        inbound,
        settings: Settings {
            base_url,
            default_page_size: config.default_page_size,
            max_page_size: config.max_page_size,
            max_payload_bytes: config.max_payload_bytes,
            patch_returns_no_content: config.patch_returns_no_content,
            bulk: bulk_limits(config),
            capabilities: capabilities(config),
        },
        connection_rates: Default::default(),
    };
    let admin = crate::admin::AdminState {
        db: db.clone(),
        directory: context,
        targets: config.targets.clone(),
        events: Arc::new(config.events.clone()),
        schema_extensions: Arc::new(config.schema_extensions.clone()),
    };
    let polls = http::set_poll::PollState {
        db: db.clone(),
        signer,
        long_poll: std::time::Duration::from_secs(config.events.long_poll_seconds),
    };
    let observed = http::observe::Observed {
        metrics,
        db: db.clone(),
        scrape_enabled: config.metrics.enabled,
        scrape_token: config.metrics.bearer_token()?,
        access_log: config.access_log,
    };
    let (server, addr) =
        http::serve(listener, state, admin, polls, observed).map_err(|source| {
            StartError::Listen {
                addr: config.listen.clone(),
                source,
            }
        })?;
    Ok(Started {
        server,
        addr,
        db: db.clone(),
        workers,
        events,
    })
}

/// Serves, within [`crate::extensions::REFRESH_EVERY`], the extension schemas other instances
/// declare, for as long as the runtime runs.
fn refresh_extensions(
    db: crate::storage::Db,
    file: Vec<crate::scim::schema::declaration::ExtensionDeclaration>,
) {
    let file = Arc::new(file);
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(crate::extensions::REFRESH_EVERY).await;
            let (db, file) = (db.clone(), file.clone());
            let refreshed =
                actix_web::rt::task::spawn_blocking(move || crate::extensions::refresh(&db, &file))
                    .await;
            if let Ok(Err(e)) = refreshed {
                tracing::warn!(error = %e, "could not re-read the extension schemas");
            }
        }
    });
}

/// Loads the SET signing key, brings the config file's subscriptions into the database, and
/// starts fan-out and delivery (unless `events.enabled` is off).
fn events(
    config: &Config,
    db: &crate::storage::Db,
    inbound: &Arc<crate::load::Inbound>,
) -> Result<(Option<EventsHandle>, Option<Arc<SetSigner>>), StartError> {
    let signer = match &config.events.set {
        Some(set) => Some(Arc::new(
            SetSigner::load(set).map_err(crate::config::ConfigError::from_message)?,
        )),
        None => None,
    };
    crate::events::service::sync_config(db, &config.events).map_err(|e| {
        crate::config::ConfigError::from_message(format!("events.subscriptions: {e}"))
    })?;
    let handle = config.events.enabled.then(|| {
        EventsRunner::new(
            db.clone(),
            Arc::new(config.events.clone()),
            signer.clone(),
            inbound.clone(),
        )
        .spawn()
    });
    Ok((handle, signer))
}

/// A started scimgate: the HTTP server (await it to run) and the provisioning workers.
pub struct Started {
    pub server: Server,
    pub addr: SocketAddr,
    /// The server's database handle.
    pub db: crate::storage::Db,
    /// Stop these after the server, so in-flight deliveries finish or are released.
    pub workers: Option<EngineHandle>,
    /// Event fan-out and delivery.
    pub events: Option<EventsHandle>,
}

/// The config file's targets' `[targets.reconcile]` sections, checked before anything starts.
fn check_reconcile_settings(config: &Config) -> Result<(), StartError> {
    for target in &config.targets {
        crate::reconcile::check_settings(&target.reconcile).map_err(|e| {
            crate::config::ConfigError::from_message(format!("target {:?}: {e}", target.name))
        })?;
    }
    Ok(())
}

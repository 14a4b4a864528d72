//! The `scimgate` command line: run the server, manage API tokens, migrate the database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scimgate::auth::{api_token, Role};
use scimgate::config::Config;
use scimgate::scim::output::format_time;
use scimgate::storage::tokens;

#[derive(Parser)]
#[command(name = "scimgate", version, about = "SCIM 2.0 provisioning server")]
struct Cli {
    /// TOML configuration file (default: ./scimgate.toml when present).
    #[arg(long, global = true, env = "SCIMGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server (migrates the database first).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Run only the provisioning workers (no HTTP server).
    Worker,
    /// Read every account and group of a target and correlate them to identities.
    Aggregate {
        #[arg(long)]
        target: String,
    },
    /// Full sync of a target: aggregate, compare with the identities, emit corrective orders
    /// (delivered by the workers) and print the drift summary.
    Sync {
        #[arg(long)]
        target: String,
        /// Compute and report the corrections without emitting any.
        #[arg(long)]
        dry_run: bool,
    },
    /// Manage API bearer tokens.
    /// Secrets stored in the database (sealed target credentials).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Seal every stored secret with a new key: written to KEYFILE.next, the secrets re-sealed
    /// in one transaction, then it becomes KEYFILE (the old one kept as KEYFILE.previous).
    /// Restart the servers afterwards (on PostgreSQL, give them the new key file first).
    RotateKey,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token; it is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// A token for the admin API instead of the SCIM API (the same as `--role admin`).
        #[arg(long, conflicts_with = "role")]
        admin: bool,
        /// `scim` (the default: an identity provider), or an admin-API role: `viewer` (reads),
        /// `operator` (also retries, cancels, approves, declines, syncs) or `admin` (also
        /// changes targets).
        #[arg(long)]
        role: Option<String>,
        /// Stops working after this long, e.g. `90d`, `12h`, `30m` (default: never, only when
        /// revoked). For rotation: issue the next token before this one runs out.
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<humantime::Duration>,
        /// Stops working at this time (RFC 3339, e.g. `2027-03-01T00:00:00Z`).
        #[arg(long)]
        expires_at: Option<humantime::Timestamp>,
        /// The connection an identity provider's token serves (its endpoint is
        /// `/scim/{connection}/v2`; create it with `POST /admin/connections`). Default: the
        /// default connection, at `/scim/v2`.
        #[arg(long, default_value = "default")]
        connection: String,
    },
    /// List tokens: name, state (active, expired or revoked), role, connection, when created,
    /// when it expires and when it was last used; never the tokens.
    List,
    /// Revoke every active token with this name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

/// A duration in microseconds, the store's unit of time.
fn micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scimgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(cli.config.as_deref())?;
    scimgate::logging::init(config.log_format);
    match cli.command {
        Command::Serve => serve(&config),
        Command::Worker => {
            let db = config.open_database(config.pool_size)?;
            let base_url = config
                .base_url
                .clone()
                .unwrap_or_else(|| format!("http://{}/scim/v2", config.listen));
            let directory = scimgate::identity::Directory::new(db.clone(), &base_url);
            let context = scimgate::provisioning::Context::new(directory, db);
            let Some(engine) = scimgate::app::engine(&config, context)? else {
                return Err(
                    "the workers are disabled (worker.enabled = false): nothing to do".into(),
                );
            };
            tracing::info!(
                config_targets = config.targets.len(),
                "provisioning workers running (targets created through the admin API join too)"
            );
            actix_web::rt::System::new().block_on(engine.spawn().run_until_process_ends());
            Ok(())
        }
        Command::Aggregate { target } => {
            let report = scimgate::reconcile::command::aggregate(&config, &target)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Sync { target, dry_run } => {
            let report = scimgate::reconcile::command::sync(&config, &target, dry_run)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Migrate => {
            config.open_database(1)?;
            eprintln!("database is up to date");
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::RotateKey,
        } => {
            let db = config.open_database(1)?;
            let resealed = scimgate::storage::secrets::rotate(db.secrets(), |both| {
                db.write(|tx| {
                    let targets = scimgate::storage::targets::reseal(
                        tx,
                        both,
                        &scimgate::targets::TargetAuth::SECRET_FIELDS,
                    )?;
                    let passwords = scimgate::storage::passwords::reseal(tx, both)?;
                    Ok::<_, scimgate::storage::StoreError>((targets, passwords))
                })
            })?;
            let (targets, passwords) = resealed;
            eprintln!(
                "secrets of {targets} stored target(s) and {passwords} user password(s) sealed \
                 with the new key; restart the servers"
            );
            Ok(())
        }
        Command::Token { command } => {
            let db = config.open_database(1)?;
            match command {
                TokenCommand::Create {
                    name,
                    admin,
                    role,
                    expires_in,
                    expires_at,
                    connection,
                } => {
                    let role = match (admin, role.as_deref()) {
                        (true, _) => Role::Admin,
                        (false, None) => Role::Scim,
                        (false, Some(text)) => Role::parse(text).ok_or_else(|| {
                            format!("unknown role '{text}': scim, viewer, operator or admin")
                        })?,
                    };
                    let now = db.clock().now_micros();
                    let expires = match (expires_in, expires_at) {
                        (Some(after), _) => Some(now.saturating_add(micros(after.into()))),
                        (None, Some(at)) => {
                            let at: std::time::SystemTime = at.into();
                            let since_epoch = at
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_err(|_| "--expires-at is before 1970")?;
                            Some(micros(since_epoch))
                        }
                        (None, None) => None,
                    };
                    if expires.is_some_and(|at| at <= now) {
                        return Err("the token would have expired already".into());
                    }
                    if role == Role::Scim
                        && db
                            .read(|c| scimgate::storage::connections::find(c, &connection))?
                            .is_none()
                    {
                        return Err(format!(
                            "no connection named '{connection}'; create it with POST /admin/connections"
                        )
                        .into());
                    }
                    let token = api_token::issue_for(&db, &name, role, &connection, expires)?;
                    if let Some(at) = expires {
                        eprintln!("It expires at {}.", format_time(at));
                    }
                    eprintln!("Token '{name}' created. It is shown only now; store it safely:");
                    println!("{token}");
                }
                TokenCommand::List => {
                    let now = db.clock().now_micros();
                    let when = |at: Option<i64>, otherwise: &str| {
                        at.map_or_else(|| otherwise.to_string(), format_time)
                    };
                    for t in db.read(tokens::list)? {
                        println!(
                            "{}\t{}\t{}\tconnection {}\tcreated {}\texpires {}\tlast used {}",
                            t.name,
                            t.state(now),
                            t.role,
                            t.connection.as_deref().unwrap_or("-"),
                            format_time(t.created_at),
                            when(t.expires_at, "never"),
                            when(t.last_used_at, "never"),
                        );
                    }
                }
                TokenCommand::Revoke { name } => {
                    let n = db.read(|conn| {
                        tokens::revoke_by_name(conn, &name, db.clock().now_micros())
                    })?;
                    if n == 0 {
                        return Err(format!("no active token named '{name}'").into());
                    }
                    eprintln!("revoked {n} token(s) named '{name}'");
                }
            }
            Ok(())
        }
    }
}

fn serve(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let started = scimgate::app::start(config)?;
        tracing::info!(addr = %started.addr, database = %redact(&config.database_url), "scimgate listening");
        first_run_hint(&started);
        // The server returns after SIGINT/SIGTERM once open requests are answered; then the
        // workers stop claiming and finish (or release) what they hold.
        started.server.await?;
        if let Some(workers) = started.workers {
            workers.shutdown(std::time::Duration::from_secs(30)).await;
        }
        if let Some(events) = started.events {
            events.shutdown(std::time::Duration::from_secs(10)).await;
        }
        Ok(())
    })
}

/// On a database without a single active token nothing can use the server yet: say, once,
/// how to make one and where the APIs are.
fn first_run_hint(started: &scimgate::app::Started) {
    let active = started
        .db
        .read(tokens::list)
        .map(|all| all.iter().any(|t| t.revoked_at.is_none()));
    if let Ok(false) = active {
        let root = format!("http://{}", started.addr);
        tracing::warn!(
            "no API token exists yet. Create one for an identity provider with \
             `scimgate token create --name okta` (SCIM API at {root}/scim/v2), and one for \
             operators with `scimgate token create --name ops --role admin` (admin API at \
             {root}/admin, metrics at {root}/metrics)"
        );
    }
}

/// The database URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

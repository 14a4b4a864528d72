//! One connection to the broker and its confirm-mode channel, opened on first use, shared by
//! every delivery to the target, and opened again when the broker closed either.

use lapin::options::{
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::errors::from_lapin;
use crate::connectors::ConnectorError;
use crate::targets::amqp::{AmqpSettings, ExchangeType};

/// How long a close waits for the broker's answer.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    pub uri: AMQPUri,
    pub tls: Option<String>,
    pub settings: AmqpSettings,
}

pub struct Session {
    connection: Connection,
    pub channel: Channel,
}

impl Session {
    /// Whether messages can still go out on it.
    pub fn usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    /// Whether the broker told the connection to stop publishing (`connection.blocked`:
    /// memory or disk alarm).
    pub fn blocked(&self) -> bool {
        self.connection.status().blocked()
    }

    /// Connects, opens a channel in confirm mode, and declares what the settings ask for.
    pub async fn open(endpoint: &Endpoint, declare: bool) -> Result<Session, ConnectorError> {
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: endpoint.tls.clone(),
        };
        let runtime = lapin::runtime::default_runtime()
            .map_err(|e| from_lapin("starting the AMQP client", &e))?;
        let properties = ConnectionProperties::default().with_connection_name("scimgate".into());
        let connection =
            Connection::connect_uri_with_config(endpoint.uri.clone(), properties, tls, runtime)
                .await
                .map_err(|e| from_lapin("connecting to the broker", &e))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| from_lapin("opening a channel", &e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| from_lapin("turning on publisher confirms", &e))?;
        if declare {
            declare_topology(&channel, &endpoint.settings).await?;
        }
        Ok(Session {
            connection,
            channel,
        })
    }

    /// Closes it politely, waiting a moment at most: a broker that blocks the connection no
    /// longer reads from it, so its answer to the close may never come.
    pub async fn close(&self) {
        let closing = self.connection.close(200, "scimgate reconnects".into());
        let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
    }
}

/// A name or key as AMQP carries it; one over 255 bytes is a setting to fix, not a broker to
/// wait for.
pub fn short(text: &str) -> Result<ShortString, ConnectorError> {
    ShortString::try_new(text.to_string()).map_err(|_| ConnectorError::Permanent {
        message: format!("{text:?} is longer than AMQP's 255 bytes"),
        status: None,
    })
}

/// The durable exchange, and the queue bound to it when one is configured.
async fn declare_topology(
    channel: &Channel,
    settings: &AmqpSettings,
) -> Result<(), ConnectorError> {
    let kind = match settings.exchange_type {
        ExchangeType::Topic => ExchangeKind::Topic,
        ExchangeType::Direct => ExchangeKind::Direct,
        ExchangeType::Fanout => ExchangeKind::Fanout,
        ExchangeType::Headers => ExchangeKind::Headers,
    };
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            short(&settings.exchange)?,
            kind,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(|e| from_lapin(&format!("declaring exchange {:?}", settings.exchange), &e))?;
    let Some(queue) = &settings.queue else {
        return Ok(());
    };
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(settings.queue_type.as_str().into()),
    );
    channel
        .queue_declare(short(queue)?, QueueDeclareOptions::durable(), arguments)
        .await
        .map_err(|e| from_lapin(&format!("declaring queue {queue:?}"), &e))?;
    channel
        .queue_bind(
            short(queue)?,
            short(&settings.exchange)?,
            short(&settings.binding_key)?,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| from_lapin(&format!("binding queue {queue:?}"), &e))?;
    Ok(())
}

/// Checks that the exchange exists without creating it (a passive declare), on a channel of
/// its own: the broker closes a channel whose passive declare fails.
pub async fn exchange_exists(
    session: &Session,
    settings: &AmqpSettings,
) -> Result<(), ConnectorError> {
    let channel = session
        .connection
        .create_channel()
        .await
        .map_err(|e| from_lapin("opening a channel", &e))?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let found = channel
        .exchange_declare(
            short(&settings.exchange)?,
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await;
    match found {
        Ok(()) => {
            let _ = channel.close(200, "checked".into()).await;
            Ok(())
        }
        Err(e) => Err(from_lapin(
            &format!("looking for exchange {:?}", settings.exchange),
            &e,
        )),
    }
}

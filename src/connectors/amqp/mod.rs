//! Targets of kind `amqp`: a RabbitMQ (AMQP 0-9-1) broker. Each order becomes one persistent
//! message on the configured exchange, published `mandatory` on a channel in confirm mode: an
//! order is executed when the broker confirms it, and a message no queue would take comes back
//! as an error instead of vanishing. There is nothing to read back: `executed` is final.

mod errors;
mod session;

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Confirmation};
use serde_json::{json, Value};

use super::publisher::{Message, Publisher};
use super::{BoxFuture, Connector, ConnectorError, Delivered, ObjectKind, PageSink};
use crate::targets::amqp::AmqpSettings;
use errors::{from_lapin, retryable};
use session::{short, Endpoint, Session};

/// AMQP's persistent delivery mode: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

pub struct AmqpConnector {
    endpoint: Endpoint,
    timeout: Duration,
    /// The connection every delivery shares; `None` until first use and after a failure.
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
}

impl AmqpConnector {
    /// A connector for the broker at `url` (no credentials in it), logging in with
    /// `credentials` when given.
    pub fn new(
        url: &str,
        settings: &AmqpSettings,
        credentials: Option<(String, String)>,
        timeout: Duration,
    ) -> Result<AmqpConnector, String> {
        let mut uri: AMQPUri = url.parse().map_err(|e| format!("url {url:?}: {e}"))?;
        if let Some((username, password)) = credentials {
            uri.authority.userinfo = AMQPUserInfo { username, password };
        }
        uri.query.connection_timeout = Some(timeout.as_millis() as u64);
        let tls = match &settings.ca_cert_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("amqp.ca_cert_file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(AmqpConnector {
            endpoint: Endpoint {
                uri,
                tls,
                settings: settings.clone(),
            },
            timeout,
            session: tokio::sync::Mutex::new(None),
        })
    }

    fn settings(&self) -> &AmqpSettings {
        &self.endpoint.settings
    }

    /// The shared session, opened (again) when there is none or the broker closed it.
    async fn session(&self) -> Result<Arc<Session>, ConnectorError> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref() {
            if session.usable() {
                return Ok(session.clone());
            }
        }
        if let Some(broken) = slot.take() {
            broken.close().await;
        }
        let declare = self.settings().declare;
        let opened = tokio::time::timeout(self.timeout, Session::open(&self.endpoint, declare))
            .await
            .map_err(|_| {
                retryable(format!(
                    "no connection to the broker within {:?}",
                    self.timeout
                ))
            })??;
        let session = Arc::new(opened);
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Forgets `session` (when it is still the shared one), so the next delivery reconnects.
    async fn discard(&self, session: &Arc<Session>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
            slot.take();
            drop(slot);
            session.close().await;
        }
    }

    async fn publish_confirmed(&self, message: &Message) -> Result<Delivered, ConnectorError> {
        let session = self.session().await?;
        if session.blocked() {
            return Err(retryable(
                "the broker blocks publishing (connection.blocked: a memory or disk alarm)",
            ));
        }
        let settings = self.settings();
        let exchange = short(&settings.exchange)?;
        let routing_key = short(&message.routing_key)?;
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirmed = tokio::time::timeout(self.timeout, async {
            session
                .channel
                .basic_publish(
                    exchange,
                    routing_key,
                    mandatory,
                    &message.body,
                    properties(message),
                )
                .await?
                .await
        })
        .await;
        let confirmation = match confirmed {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(error)) => {
                if !session.usable() {
                    self.discard(&session).await;
                }
                return Err(from_lapin("publishing", &error));
            }
            Err(_) => {
                // A broker that blocks after the check, or one that hangs: start afresh.
                self.discard(&session).await;
                return Err(retryable(format!(
                    "the broker did not confirm the message within {:?}{}",
                    self.timeout,
                    if session.blocked() {
                        " (connection.blocked)"
                    } else {
                        ""
                    }
                )));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(Delivered::default()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(ConnectorError::Permanent {
                    message: format!(
                        "the broker returned the message: {} {} (exchange {:?}, routing key {:?}: no queue is bound for it)",
                        returned.reply_code,
                        returned.reply_text,
                        settings.exchange,
                        message.routing_key
                    ),
                    status: None,
                })
            }
            Confirmation::Nack(None) => Err(retryable(
                "the broker refused the message (basic.nack): it could not take responsibility for it",
            )),
            Confirmation::NotRequested => Err(retryable(
                "the channel is not in confirm mode; the message may not have been stored",
            )),
        }
    }
}

fn properties(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in &message.headers {
        headers.insert(
            (*name).into(),
            AMQPValue::LongString(LongString::from(value.as_str())),
        );
    }
    let property = |text: &str| ShortString::try_new(text.to_string()).unwrap_or_default();
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_message_id(property(&message.message_id))
        .with_type(property(&message.kind))
        .with_timestamp(message.timestamp)
        .with_app_id("scimgate".into())
        .with_headers(headers)
}

impl Publisher for AmqpConnector {
    fn publish<'a>(
        &'a self,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(self.publish_confirmed(message))
    }
}

fn no_objects(what: &str) -> ConnectorError {
    ConnectorError::Unsupported {
        message: format!("an amqp target takes messages; it cannot {what}"),
        status: None,
    }
}

impl Connector for AmqpConnector {
    fn find<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Option<String>, ConnectorError>> {
        Box::pin(async { Err(no_objects("look objects up")) })
    }
    fn create<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Err(no_objects("create objects")) })
    }
    fn update<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
        _: &'a Value,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Err(no_objects("update objects")) })
    }
    fn aggregate<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a [String],
        _: &'a PageSink,
    ) -> BoxFuture<'a, Result<u64, ConnectorError>> {
        Box::pin(async { Err(no_objects("be read back (aggregated)")) })
    }
    fn read<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>, ConnectorError>> {
        Box::pin(async { Err(no_objects("be read back")) })
    }
    fn deactivate<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Err(no_objects("deactivate objects")) })
    }
    fn delete<'a>(
        &'a self,
        _: ObjectKind,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Delivered, ConnectorError>> {
        Box::pin(async { Err(no_objects("delete objects")) })
    }
    /// Connects (declaring what the settings ask for) and checks that the exchange exists.
    fn check(&self) -> BoxFuture<'_, Result<Value, ConnectorError>> {
        Box::pin(async move {
            let session = self.session().await?;
            let settings = self.settings();
            session::exchange_exists(&session, settings).await?;
            Ok(json!({
                "exchange": settings.exchange,
                "exchangeExists": true,
                "declares": settings.declare,
                "queue": settings.queue,
                "blocked": session.blocked(),
            }))
        })
    }
}

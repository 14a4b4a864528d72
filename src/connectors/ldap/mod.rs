//! The LDAP target connector (OpenLDAP, Active Directory): users and groups as directory
//! entries. Remote ids are DNs; an update that changes a DN renames the entry and reports the
//! new DN, which the engine records as the new link.

mod aggregate;
mod connector;
mod entry;
mod errors;
mod pool;
mod tree;
// The directory's layout settings are the target's: `crate::targets::ldap`.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use ldap3::controls::{ControlType, PostRead, PostReadResp};
use ldap3::{LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use self::aggregate::entry_json;
use self::entry::{Attributes, DnTemplate};
use self::pool::Pool;
use super::batch::Lookups;
use super::{
    AttributeDrift, BoxFuture, Connector, ConnectorError, Delivered, ObjectKind, PageSink,
    RemoteObject,
};
use crate::targets::ldap::{GroupClass, LdapSettings};

/// Entries per page of an aggregation's paged search.
const AGGREGATION_PAGE: usize = 2_000;

/// Most correlation values one directory search asks for.
const LOOKUP_BATCH: usize = 200;

pub use crate::targets::ldap::Preset;

pub struct LdapConnector {
    pool: Pool,
    /// The connection is encrypted (ldaps:// or StartTLS): passwords may be sent.
    tls: bool,
    base_dn: String,
    user_dn: DnTemplate,
    group_dn: DnTemplate,
    user_classes: Vec<String>,
    correlation: String,
    group_class: GroupClass,
    placeholder: String,
    disabled_container: Option<String>,
    disable_mark: Option<(String, String)>,
    posix: bool,
    /// The next uidNumber / gidNumber to hand out, learnt from the directory on first use.
    next_uid_number: Mutex<Option<u64>>,
    /// Correlation lookups in flight, per kind, shared into batched searches.
    user_lookups: Lookups<String>,
    group_lookups: Lookups<String>,
    next_gid_number: Mutex<Option<u64>>,
    uid_number_start: u64,
    gid_number_start: u64,
}

fn permanent(message: String) -> ConnectorError {
    ConnectorError::Permanent {
        message,
        status: None,
    }
}

fn at(dn: &str, status: u16) -> Delivered {
    Delivered {
        remote_id: Some(dn.to_string()),
        status: Some(status),
        read_back: None,
    }
}

/// Attributes that carry a password: written only over TLS, never compared.
const PASSWORD_ATTRIBUTES: [&str; 2] = ["userPassword", "unicodePwd"];

/// Active Directory's password format: the password in double quotes, UTF-16LE.
fn unicode_password(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(|unit| unit.to_le_bytes())
        .collect()
}

/// The entry a post-read control returned (RFC 4527), if the server sent one. A malformed
/// control makes the parser panic; that is treated as no control (the entry is read instead).
fn post_read(result: &LdapResult) -> Option<Attributes> {
    let control = result
        .ctrls
        .iter()
        .find(|c| matches!(c.0, Some(ControlType::PostReadResp)))?;
    let raw = control.1.clone();
    std::panic::catch_unwind(move || raw.parse::<PostReadResp>())
        .ok()
        .map(|entry| entry.attrs.into_iter().collect())
}

impl LdapConnector {
    /// `bind` is the service DN and its password; `None` binds anonymously.
    pub fn new(
        url: &str,
        settings: &LdapSettings,
        bind: Option<(String, String)>,
        timeout: Duration,
    ) -> Result<LdapConnector, String> {
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return Err(format!("{url:?} is not an ldap:// or ldaps:// URL"));
        }
        if settings.base_dn.trim().is_empty() {
            return Err("ldap.base_dn is required (e.g. \"dc=example,dc=org\")".into());
        }
        let mut connection = LdapConnSettings::new().set_starttls(settings.starttls);
        if let Some(ca) = &settings.ca_cert_file {
            connection = connection.set_config(pool::tls_config(ca)?);
        }
        let placeholder = settings
            .empty_group_member
            .clone()
            .or_else(|| bind.as_ref().map(|(dn, _)| dn.clone()))
            .unwrap_or_else(|| settings.base_dn.clone());
        Ok(LdapConnector {
            pool: Pool::new(
                url,
                connection,
                bind,
                settings.pool_size.unwrap_or(4),
                timeout,
            ),
            tls: url.starts_with("ldaps://") || settings.starttls,
            base_dn: settings.base_dn.clone(),
            user_dn: DnTemplate::new(&settings.user_dn_template(), &settings.base_dn)?,
            group_dn: DnTemplate::new(&settings.group_dn_template(), &settings.base_dn)?,
            user_classes: settings.user_classes(),
            correlation: settings.correlation(),
            group_class: settings.groups(),
            placeholder,
            disabled_container: settings.disabled_container.clone(),
            disable_mark: settings.disable_mark(),
            posix: settings.posix,
            next_uid_number: Mutex::new(None),
            user_lookups: Lookups::new(LOOKUP_BATCH),
            group_lookups: Lookups::new(LOOKUP_BATCH),
            next_gid_number: Mutex::new(None),
            uid_number_start: settings.uid_number_start.unwrap_or(10_000),
            gid_number_start: settings.gid_number_start.unwrap_or(10_000),
        })
    }

    /// Runs one directory operation within the target's timeout.
    async fn call<T>(
        &self,
        doing: &str,
        operation: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, ConnectorError> {
        match tokio::time::timeout(self.pool.timeout(), operation).await {
            Ok(result) => result.map_err(|e| errors::from_error(e, doing)),
            Err(_) => Err(errors::timed_out(doing)),
        }
    }

    /// Entries under `base` matching `filter`; a missing base is no entries.
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: Vec<String>,
    ) -> Result<Vec<SearchEntry>, ConnectorError> {
        let mut ldap = self.pool.get().await?;
        let doing = format!("searching {base} for {filter}");
        let found = self
            .call(&doing, async {
                ldap.search(base, scope, filter, attributes)
                    .await?
                    .success()
            })
            .await;
        match found {
            Ok((entries, _)) => Ok(entries.into_iter().map(SearchEntry::construct).collect()),
            Err(ConnectorError::Permanent {
                status: Some(404), ..
            }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The entry's attributes (all user attributes when `names` is empty).
    async fn entry(
        &self,
        dn: &str,
        names: Vec<String>,
    ) -> Result<Option<Attributes>, ConnectorError> {
        let names = if names.is_empty() {
            vec!["*".to_string()]
        } else {
            names
        };
        let found = self
            .search(dn, Scope::Base, "(objectClass=*)", names)
            .await?;
        Ok(found
            .into_iter()
            .next()
            .map(|e| e.attrs.into_iter().collect()))
    }

    async fn modify(&self, dn: &str, mods: Vec<Mod<String>>) -> Result<(), ConnectorError> {
        self.modify_and_read(dn, mods, Vec::new()).await.map(|_| ())
    }

    /// Modifies the entry; with `read_back` attribute names, also returns those attributes as
    /// they are right after the change (post-read control), when the server supports it.
    async fn modify_and_read(
        &self,
        dn: &str,
        mods: Vec<Mod<String>>,
        read_back: Vec<String>,
    ) -> Result<Option<Attributes>, ConnectorError> {
        if mods.is_empty() {
            return Ok(None);
        }
        let mut ldap = self.pool.get().await?;
        if !read_back.is_empty() {
            ldap.with_controls(PostRead::new(read_back));
        }
        let doing = format!("modifying {dn}");
        let result = self
            .call(&doing, async { ldap.modify(dn, mods).await?.success() })
            .await?;
        Ok(post_read(&result))
    }

    /// Adds the entry and returns it as stored (post-read), when the server supports that.
    async fn add(
        &self,
        dn: &str,
        attributes: &Attributes,
    ) -> Result<Option<Attributes>, ConnectorError> {
        let mut values: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = Vec::with_capacity(attributes.len());
        for (name, held) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            let secret = PASSWORD_ATTRIBUTES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name));
            if secret && !self.tls {
                return Err(permanent(format!(
                    "{name} is only sent over TLS (ldaps:// or starttls)"
                )));
            }
            let encoded = held
                .iter()
                .map(|v| {
                    if name.eq_ignore_ascii_case("unicodePwd") {
                        unicode_password(v)
                    } else {
                        v.clone().into_bytes()
                    }
                })
                .collect();
            values.push((name.clone().into_bytes(), encoded));
        }
        let names: Vec<String> = attributes.keys().cloned().collect();
        let mut ldap = self.pool.get().await?;
        let doing = format!("adding {dn}");
        let first = self
            .call(&doing, async {
                ldap.with_controls(PostRead::new(names.clone()))
                    .add(dn, values.clone())
                    .await?
                    .success()
            })
            .await;
        match first {
            // The container is missing: create it (organizational units only), then retry.
            Err(ConnectorError::Permanent {
                status: Some(404), ..
            }) if self.ensure_container(entry::split_dn(dn).1).await? => self
                .call(&doing, async {
                    ldap.with_controls(PostRead::new(names))
                        .add(dn, values)
                        .await?
                        .success()
                })
                .await
                .map(|r| post_read(&r)),
            other => other.map(|r| post_read(&r)),
        }
    }

    fn user_attributes(&self, object: &Value) -> Attributes {
        entry::attributes_of(object)
    }

    /// A SCIM group as the entry's attributes: its name and its members (DNs, or user ids
    /// for `posixGroup`); a group that needs a member keeps the placeholder while empty.
    fn group_attributes(&self, object: &Value) -> Attributes {
        let member_dns: Vec<String> = entry::values_of(&object["members"]);
        let mut members: Vec<String> = if self.group_class == GroupClass::PosixGroup {
            member_dns.iter().map(|dn| entry::rdn_value(dn)).collect()
        } else {
            member_dns
        };
        if members.is_empty() && self.group_class.needs_a_member() {
            members.push(self.placeholder.clone());
        }
        let mut attributes = Attributes::new();
        attributes.insert("cn".into(), entry::values_of(&object["displayName"]));
        attributes.insert(self.group_class.member_attribute().into(), members);
        attributes
    }

    fn attributes(&self, kind: ObjectKind, object: &Value) -> Attributes {
        match kind {
            ObjectKind::User => self.user_attributes(object),
            ObjectKind::Group => self.group_attributes(object),
        }
    }

    fn dn_of(&self, kind: ObjectKind, attributes: &Attributes) -> Result<String, ConnectorError> {
        let template = match kind {
            ObjectKind::User => &self.user_dn,
            ObjectKind::Group => &self.group_dn,
        };
        template.render(attributes).map_err(permanent)
    }

    fn members(&self, kind: ObjectKind) -> Option<&'static str> {
        (kind == ObjectKind::Group).then(|| self.group_class.member_attribute())
    }

    async fn find_entry(
        &self,
        kind: ObjectKind,
        object: &Value,
    ) -> Result<Option<String>, ConnectorError> {
        let attributes = self.attributes(kind, object);
        let (attribute, class) = match kind {
            ObjectKind::User => (
                self.correlation.as_str(),
                self.user_classes
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "person".into()),
            ),
            ObjectKind::Group => ("cn", self.group_class.object_classes()[1].to_string()),
        };
        let Some(value) = entry::get(&attributes, attribute).and_then(|v| v.first()) else {
            return Err(permanent(format!(
                "the mapping gives no '{attribute}' to find the entry by"
            )));
        };
        let lookups = match kind {
            ObjectKind::User => &self.user_lookups,
            ObjectKind::Group => &self.group_lookups,
        };
        let search = |values: Vec<String>| {
            let class = class.clone();
            async move {
                let any: String = values
                    .iter()
                    .map(|v| format!("({attribute}={})", ldap3::ldap_escape(v.as_str())))
                    .collect();
                let filter = format!("(&(objectClass={class})(|{any}))");
                let found = self
                    .search(
                        &self.base_dn,
                        Scope::Subtree,
                        &filter,
                        vec![attribute.to_string()],
                    )
                    .await?;
                Ok(found
                    .into_iter()
                    .map(|e| {
                        let held = e
                            .attrs
                            .into_iter()
                            .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
                            .flat_map(|(_, values)| values)
                            .collect();
                        (e.dn, held)
                    })
                    .collect())
            }
        };
        let found = lookups.find(value, search).await?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => Err(permanent(format!(
                "{} entries have {attribute}={value}: not guessing which one is meant",
                many.len()
            ))),
        }
    }

    async fn create_entry(
        &self,
        kind: ObjectKind,
        object: &Value,
    ) -> Result<Delivered, ConnectorError> {
        let mut attributes = self.attributes(kind, object);
        let dn = self.dn_of(kind, &attributes)?;
        let classes = match kind {
            ObjectKind::User => self.user_classes.clone(),
            ObjectKind::Group => self
                .group_class
                .object_classes()
                .iter()
                .map(|c| c.to_string())
                .collect(),
        };
        let numbered = match kind {
            ObjectKind::User if self.posix => Some("uidNumber"),
            ObjectKind::Group if self.group_class == GroupClass::PosixGroup => Some("gidNumber"),
            _ => None,
        };
        if let Some(number) = numbered {
            if entry::get(&attributes, number).is_none_or(|v| v.is_empty()) {
                attributes.insert(number.into(), vec![self.allocate(number).await?]);
            }
            if kind == ObjectKind::User {
                for (required, fallback) in [
                    ("gidNumber", self.gid_number_start.to_string()),
                    ("homeDirectory", format!("/home/{}", entry::rdn_value(&dn))),
                ] {
                    if entry::get(&attributes, required).is_none_or(|v| v.is_empty()) {
                        attributes.insert(required.into(), vec![fallback]);
                    }
                }
            }
        }
        attributes.insert("objectClass".into(), classes);
        let stored = self.add(&dn, &attributes).await?;
        Ok(Delivered {
            read_back: stored.map(|held| entry_json(&dn, held)),
            ..at(&dn, 201)
        })
    }

    async fn update_entry(
        &self,
        kind: ObjectKind,
        dn: &str,
        object: &Value,
    ) -> Result<Delivered, ConnectorError> {
        let desired = self.attributes(kind, object);
        let mut names: Vec<String> = desired.keys().cloned().collect();
        if let Some((attribute, _)) = &self.disable_mark {
            names.push(attribute.clone());
        }
        let Some(current) = self.entry(dn, names).await? else {
            return Err(ConnectorError::Permanent {
                message: format!("{dn} is not in the directory"),
                status: Some(404),
            });
        };
        let wanted_dn = self.dn_of(kind, &desired)?;
        let dn = if entry::same_dn(dn, &wanted_dn) {
            dn.to_string()
        } else {
            self.rename(dn, &wanted_dn, kind).await?;
            wanted_dn
        };
        let mut mods = entry::changes(&current, &desired, self.members(kind));
        // An entry deactivated by a mark comes back to life when it is provisioned again.
        if let Some((attribute, value)) = &self.disable_mark {
            let managed = entry::get(&desired, attribute).is_some();
            let marked = entry::get(&current, attribute).is_some_and(|v| v.contains(value));
            if kind == ObjectKind::User && !managed && marked {
                mods.push(Mod::Delete(
                    attribute.clone(),
                    HashSet::from([value.clone()]),
                ));
            }
        }
        // Unchanged attributes were just read: they are the read-back.
        let held = if mods.is_empty() {
            Some(current)
        } else {
            let names = desired.keys().cloned().collect();
            self.modify_and_read(&dn, mods, names).await?
        };
        Ok(Delivered {
            read_back: held.map(|held| entry_json(&dn, held)),
            ..at(&dn, 200)
        })
    }

    async fn deactivate_entry(&self, dn: &str) -> Result<Delivered, ConnectorError> {
        if let Some(container) = &self.disabled_container {
            if entry::same_dn(entry::split_dn(dn).1, container) {
                return Ok(at(dn, 200));
            }
            let moved = format!("{},{container}", entry::split_dn(dn).0);
            self.rename(dn, &moved, ObjectKind::User).await?;
            return Ok(at(&moved, 200));
        }
        let Some((attribute, value)) = &self.disable_mark else {
            return Err(permanent(
                "deactivation needs ldap.disabled_container or ldap.disable_attribute".into(),
            ));
        };
        self.modify(
            dn,
            vec![Mod::Replace(
                attribute.clone(),
                HashSet::from([value.clone()]),
            )],
        )
        .await?;
        Ok(at(dn, 200))
    }

    async fn delete_entry(&self, kind: ObjectKind, dn: &str) -> Result<Delivered, ConnectorError> {
        let mut ldap = self.pool.get().await?;
        let doing = format!("deleting {dn}");
        match self
            .call(&doing, async { ldap.delete(dn).await?.success() })
            .await
        {
            Ok(_) => {}
            // Already gone counts as done.
            Err(ConnectorError::Permanent {
                status: Some(404), ..
            }) => return Ok(at(dn, 404)),
            Err(e) => return Err(e),
        }
        if kind == ObjectKind::User {
            self.repoint_members(dn, None).await?;
        }
        Ok(at(dn, 200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_directory_passwords_are_quoted_utf16le() {
        assert_eq!(
            unicode_password("aé"),
            vec![0x22, 0, 0x61, 0, 0xe9, 0, 0x22, 0]
        );
    }
}

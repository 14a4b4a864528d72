//! How an LDAP target is laid out (`[targets.ldap]`), and the presets for OpenLDAP and Active
//! Directory that fill in what a configuration leaves out.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::mapping::MappingRule;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The directory flavour whose conventions fill the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    #[default]
    Openldap,
    ActiveDirectory,
}

/// How groups are represented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupClass {
    /// `member` holds user DNs (the default).
    #[default]
    #[serde(rename = "groupOfNames")]
    GroupOfNames,
    /// `uniqueMember` holds user DNs.
    #[serde(rename = "groupOfUniqueNames")]
    GroupOfUniqueNames,
    /// `memberUid` holds user ids (the member DN's RDN value); needs a `gidNumber`.
    #[serde(rename = "posixGroup")]
    PosixGroup,
    /// Active Directory's `group` (`member` holds DNs, empty groups allowed).
    #[serde(rename = "group")]
    AdGroup,
}

impl GroupClass {
    pub fn object_classes(self) -> &'static [&'static str] {
        match self {
            GroupClass::GroupOfNames => &["top", "groupOfNames"],
            GroupClass::GroupOfUniqueNames => &["top", "groupOfUniqueNames"],
            GroupClass::PosixGroup => &["top", "posixGroup"],
            GroupClass::AdGroup => &["top", "group"],
        }
    }

    /// The attribute that lists members.
    pub fn member_attribute(self) -> &'static str {
        match self {
            GroupClass::GroupOfUniqueNames => "uniqueMember",
            GroupClass::PosixGroup => "memberUid",
            GroupClass::GroupOfNames | GroupClass::AdGroup => "member",
        }
    }

    /// Classes whose schema requires at least one member.
    pub fn needs_a_member(self) -> bool {
        matches!(
            self,
            GroupClass::GroupOfNames | GroupClass::GroupOfUniqueNames
        )
    }
}

/// `[targets.ldap]`. The bind DN and password are the target's `auth` (`type = "simple"`,
/// `username`, `password` or `password_file`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapSettings {
    pub preset: Preset,
    /// The directory's naming context, e.g. `dc=example,dc=org`; `{base_dn}` in DN templates.
    pub base_dn: String,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// PEM file with the CA certificate(s) that sign the server's certificate; unset: the
    /// system's trust store.
    pub ca_cert_file: Option<PathBuf>,
    /// Connections kept open to the directory; each carries several operations at once.
    pub pool_size: Option<usize>,
    /// DN of a user entry; `{attr}` is any mapped attribute (RFC 4514-escaped).
    /// Default: `uid={uid},ou=people,{base_dn}` (AD: `CN={cn},CN=Users,{base_dn}`).
    pub user_dn: Option<String>,
    /// Object classes of new user entries. Default `inetOrgPerson` (AD: `user`).
    pub user_object_classes: Vec<String>,
    /// Attribute that finds an existing entry for a user before one is created.
    /// Default `uid` (AD: `sAMAccountName`).
    pub user_correlation: Option<String>,
    /// Also make users `posixAccount`s, allocating `uidNumber` from `uid_number_start` upwards
    /// when the mapping supplies none (`gidNumber` and `homeDirectory` come from the mapping).
    pub posix: bool,
    pub uid_number_start: Option<u64>,
    /// DN of a group entry; `{cn}` is the group's displayName.
    /// Default: `cn={cn},ou=groups,{base_dn}` (AD: `CN={cn},CN=Users,{base_dn}`).
    pub group_dn: Option<String>,
    pub group_class: Option<GroupClass>,
    /// For `posixGroup`: where `gidNumber`s are allocated from.
    pub gid_number_start: Option<u64>,
    /// The member a `groupOfNames` keeps while it has no real member (the schema requires
    /// one). Default: the bind DN.
    pub empty_group_member: Option<String>,
    /// Deprovisioning with `deactivate` moves the entry under this DN (OpenLDAP has no
    /// disabled flag of its own)...
    pub disabled_container: Option<String>,
    /// ...or sets this attribute to `disable_value` (AD: `userAccountControl` = `514`).
    pub disable_attribute: Option<String>,
    pub disable_value: Option<String>,
}

fn source(target: &str, source: &str) -> MappingRule {
    MappingRule {
        target: target.into(),
        source: Some(source.into()),
        ..MappingRule::default()
    }
}

fn with_fallback(mut rule: MappingRule, fallback: &[&str]) -> MappingRule {
    rule.fallback = fallback.iter().map(|f| f.to_string()).collect();
    rule
}

impl LdapSettings {
    fn ad(&self) -> bool {
        self.preset == Preset::ActiveDirectory
    }

    pub fn user_dn_template(&self) -> String {
        self.user_dn.clone().unwrap_or_else(|| {
            if self.ad() {
                "CN={cn},CN=Users,{base_dn}".into()
            } else {
                "uid={uid},ou=people,{base_dn}".into()
            }
        })
    }

    pub fn group_dn_template(&self) -> String {
        self.group_dn.clone().unwrap_or_else(|| {
            if self.ad() {
                "CN={cn},CN=Users,{base_dn}".into()
            } else {
                "cn={cn},ou=groups,{base_dn}".into()
            }
        })
    }

    pub fn user_classes(&self) -> Vec<String> {
        let mut classes = if !self.user_object_classes.is_empty() {
            self.user_object_classes.clone()
        } else if self.ad() {
            ["top", "person", "organizationalPerson", "user"]
                .map(String::from)
                .to_vec()
        } else {
            ["top", "person", "organizationalPerson", "inetOrgPerson"]
                .map(String::from)
                .to_vec()
        };
        if self.posix
            && !classes
                .iter()
                .any(|c| c.eq_ignore_ascii_case("posixAccount"))
        {
            classes.push("posixAccount".into());
        }
        classes
    }

    pub fn correlation(&self) -> String {
        self.user_correlation.clone().unwrap_or_else(|| {
            if self.ad() {
                "sAMAccountName".into()
            } else {
                "uid".into()
            }
        })
    }

    pub fn groups(&self) -> GroupClass {
        self.group_class.unwrap_or(if self.ad() {
            GroupClass::AdGroup
        } else {
            GroupClass::GroupOfNames
        })
    }

    /// `(attribute, value)` that marks a deactivated entry, if deactivation sets one.
    pub fn disable_mark(&self) -> Option<(String, String)> {
        match (&self.disable_attribute, &self.disable_value) {
            (Some(a), Some(v)) => Some((a.clone(), v.clone())),
            _ if self.ad() && self.disabled_container.is_none() => {
                Some(("userAccountControl".into(), "514".into()))
            }
            _ => None,
        }
    }

    /// The user mapping used when a target names none: SCIM attributes to the directory's.
    /// Over an encrypted connection the Active Directory preset also sets the initial
    /// password (`unicodePwd`) of accounts it creates.
    pub fn default_mapping(&self, encrypted: bool) -> Vec<MappingRule> {
        let cn = with_fallback(
            source("cn", "displayName"),
            &[
                "name.formatted",
                "{name.givenName} {name.familyName}",
                "userName",
            ],
        );
        let common = [
            cn,
            with_fallback(source("sn", "name.familyName"), &["userName"]),
            source("givenName", "name.givenName"),
            source("displayName", "displayName"),
            with_fallback(
                source("mail", "emails[primary].value"),
                &["emails[type eq \"work\"].value"],
            ),
            source("telephoneNumber", "phoneNumbers[type eq \"work\"].value"),
            source("mobile", "phoneNumbers[type eq \"mobile\"].value"),
            source("title", "title"),
            source("employeeNumber", &format!("{ENTERPRISE}:employeeNumber")),
        ];
        let mut rules = Vec::from(common);
        if self.ad() {
            rules.push(source("sAMAccountName", "userName"));
            rules.push(source("userPrincipalName", "userName"));
            rules.push(source("department", &format!("{ENTERPRISE}:department")));
            rules.push(source("company", &format!("{ENTERPRISE}:organization")));
            let mut control = source("userAccountControl", "active");
            control.values = [("true", "512"), ("false", "514")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            rules.push(control);
            if encrypted {
                rules.push(source("unicodePwd", "password"));
            }
        } else {
            rules.insert(0, source("uid", "userName"));
            rules.push(source(
                "departmentNumber",
                &format!("{ENTERPRISE}:department"),
            ));
            rules.push(source("o", &format!("{ENTERPRISE}:organization")));
            rules.push(source("employeeType", "userType"));
            rules.push(source("preferredLanguage", "preferredLanguage"));
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::mapping::Mapping;
    use serde_json::json;

    fn user() -> serde_json::Value {
        json!({
            "userName": "bjensen@example.com", "active": false,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bj@example.com", "type": "work"}],
            ENTERPRISE: {"department": "Tours", "employeeNumber": "7"}
        })
    }

    #[test]
    fn the_active_directory_preset_speaks_active_directory() {
        let settings = LdapSettings {
            preset: Preset::ActiveDirectory,
            base_dn: "DC=corp,DC=example".into(),
            ..LdapSettings::default()
        };
        let mapping = Mapping::for_directory(&settings.default_mapping(true)).expect("preset");
        assert_eq!(mapping.secret_targets(), vec!["unicodePwd".to_string()]);
        let plain = Mapping::for_directory(&settings.default_mapping(false)).expect("preset");
        assert!(plain.secret_targets().is_empty(), "no password without TLS");
        let entry = mapping.user(&user(), "src");
        assert_eq!(entry["sAMAccountName"], "bjensen@example.com");
        assert_eq!(entry["userPrincipalName"], "bjensen@example.com");
        assert_eq!(
            entry["userAccountControl"], "514",
            "inactive: disabled account"
        );
        assert_eq!(entry["cn"], "Barbara Jensen");
        assert_eq!(
            entry["mail"], "bj@example.com",
            "the work e-mail when none is primary"
        );
        assert_eq!(entry["department"], "Tours");
        assert!(entry.get("uid").is_none());
        assert_eq!(settings.user_dn_template(), "CN={cn},CN=Users,{base_dn}");
        assert_eq!(settings.groups(), GroupClass::AdGroup);
        assert_eq!(settings.correlation(), "sAMAccountName");
        assert_eq!(
            settings.disable_mark(),
            Some(("userAccountControl".into(), "514".into()))
        );
        assert!(settings.user_classes().contains(&"user".to_string()));
    }

    #[test]
    fn the_openldap_preset_fills_inet_org_person() {
        let settings = LdapSettings {
            base_dn: "dc=example,dc=org".into(),
            posix: true,
            ..LdapSettings::default()
        };
        let mapping = Mapping::for_directory(&settings.default_mapping(true)).expect("preset");
        let entry = mapping.user(&user(), "src");
        assert_eq!(entry["uid"], "bjensen@example.com");
        assert_eq!(entry["sn"], "Jensen");
        assert_eq!(entry["departmentNumber"], "Tours");
        assert_eq!(entry["employeeNumber"], "7");
        assert!(entry.get("userAccountControl").is_none());
        assert_eq!(
            settings.disable_mark(),
            None,
            "OpenLDAP has no disabled flag"
        );
        assert!(settings
            .user_classes()
            .contains(&"posixAccount".to_string()));
        assert_eq!(settings.groups().member_attribute(), "member");
    }
}

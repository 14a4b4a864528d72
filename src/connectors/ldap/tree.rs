//! Keeping the directory tree in order: `ou=` containers created above new entries, renames
//! with the group references that follow them, and numeric ids allocated for posix entries.

use super::*;

impl LdapConnector {
    /// Creates the `ou=` containers above an entry; `false` when the missing one is not an
    /// organizational unit (scimgate does not guess what else it should be).
    pub(super) async fn ensure_container(&self, dn: &str) -> Result<bool, ConnectorError> {
        let mut missing = Vec::new();
        let mut current = dn;
        while !current.is_empty() && !entry::same_dn(current, &self.base_dn) {
            if self.entry(current, vec!["1.1".into()]).await?.is_some() {
                break;
            }
            let rdn = entry::split_dn(current).0;
            if !rdn.to_ascii_lowercase().starts_with("ou=") {
                return Ok(false);
            }
            missing.push(current);
            current = entry::split_dn(current).1;
        }
        let mut ldap = self.pool.get().await?;
        for container in missing.into_iter().rev() {
            let ou = entry::rdn_value(container);
            let attributes = vec![
                (
                    "objectClass".to_string(),
                    HashSet::from(["top".to_string(), "organizationalUnit".to_string()]),
                ),
                ("ou".to_string(), HashSet::from([ou])),
            ];
            let doing = format!("adding container {container}");
            match self
                .call(&doing, async {
                    ldap.add(container, attributes).await?.success()
                })
                .await
            {
                Ok(_) => {}
                // Another worker made it first.
                Err(ConnectorError::Permanent {
                    status: Some(409), ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Renames or moves `from` to `to`, and points groups that listed `from` at `to`.
    pub(super) async fn rename(
        &self,
        from: &str,
        to: &str,
        kind: ObjectKind,
    ) -> Result<(), ConnectorError> {
        let (rdn, parent) = entry::split_dn(to);
        let moves = !entry::same_dn(entry::split_dn(from).1, parent);
        if moves {
            self.ensure_container(parent).await?;
        }
        let mut ldap = self.pool.get().await?;
        let doing = format!("renaming {from} to {to}");
        self.call(&doing, async {
            ldap.modifydn(from, rdn, true, moves.then_some(parent))
                .await?
                .success()
        })
        .await?;
        if kind == ObjectKind::User || self.group_class != GroupClass::PosixGroup {
            self.repoint_members(from, Some(to)).await?;
        }
        Ok(())
    }

    /// Groups that list `old` as a member list `new` instead (or lose it, for `None`).
    pub(super) async fn repoint_members(
        &self,
        old: &str,
        new: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let attribute = self.group_class.member_attribute();
        if self.group_class == GroupClass::PosixGroup {
            return Ok(());
        }
        let filter = format!("({attribute}={})", ldap3::ldap_escape(old));
        let groups = self
            .search(&self.base_dn, Scope::Subtree, &filter, vec!["1.1".into()])
            .await?;
        for group in groups {
            let mut mods = Vec::new();
            if let Some(new) = new {
                mods.push(Mod::Add(
                    attribute.to_string(),
                    HashSet::from([new.to_string()]),
                ));
            }
            mods.push(Mod::Delete(
                attribute.to_string(),
                HashSet::from([old.to_string()]),
            ));
            match self.modify(&group.dn, mods.clone()).await {
                Ok(()) => {}
                // The last member of a group that needs one: the placeholder takes its place.
                Err(ConnectorError::Permanent { message, .. })
                    if new.is_none() && message.contains("LDAP 65 ") =>
                {
                    mods.insert(
                        0,
                        Mod::Add(
                            attribute.to_string(),
                            HashSet::from([self.placeholder.clone()]),
                        ),
                    );
                    self.modify(&group.dn, mods).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next free number of `attribute` (`uidNumber`, `gidNumber`), starting above what
    /// the directory already uses.
    pub(super) async fn allocate(&self, attribute: &str) -> Result<String, ConnectorError> {
        let (counter, start) = if attribute == "uidNumber" {
            (&self.next_uid_number, self.uid_number_start)
        } else {
            (&self.next_gid_number, self.gid_number_start)
        };
        let mut next = counter.lock().await;
        let value = match *next {
            Some(n) => n,
            None => {
                let used = self
                    .search(
                        &self.base_dn,
                        Scope::Subtree,
                        &format!("({attribute}=*)"),
                        vec![attribute.to_string()],
                    )
                    .await?;
                used.iter()
                    .flat_map(|e| &e.attrs)
                    .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
                    .flat_map(|(_, values)| values)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .map(|n| n + 1)
                    .max()
                    .unwrap_or(start)
                    .max(start)
            }
        };
        *next = Some(value + 1);
        Ok(value.to_string())
    }
}
